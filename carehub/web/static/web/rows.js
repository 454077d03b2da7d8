/* Row actions (htmx replaces the row with the server's answer): keep keyboard focus in the row.
   The button that had focus is gone with the old row, so focus would fall back to the page;
   it moves to the first field the answer refused, else to the row's result message. */
document.addEventListener("htmx:load", function (event) {
  var row = event.detail && event.detail.elt;
  if (!row || !row.matches || !row.matches("tr[id]")) {
    return;
  }
  var target = row.querySelector('[aria-invalid="true"]') || row.querySelector(".row-result");
  if (target) {
    target.focus();
  }
});
