/* Check-in forms (link page and portal): progressive enhancement of a form that works without
   JavaScript.

   - On a narrow screen, one question at a time: Back / Next, "Question 3 of 9" and a progress
     bar; Next asks for an answer to a required question before moving on. The last step sends
     the whole form (the server checks every answer again). On a wide screen the whole form
     shows, as it does without JavaScript.
   - Enter never sends a partial form: on a narrow screen it moves to the next question, on a
     wide one to the next question still to answer; with every answer given it sends the form.
     (Without JavaScript, Enter presses the form's hidden "continue" button and the server
     shows the form again with the questions still to answer, none marked as an error.)
   - Help at once: when an answer meets a red-flag rule that carries crisis or emergency texts
     (e.g. PHQ-9 item 9 answered 1 or more), those texts appear under the question before the
     answers are sent. The confirmation page shows them too (the no-JavaScript path).

   No inline code: the CSP allows scripts and styles from our origin only. */
(function () {
  "use strict";

  var NARROW = "(max-width: 47.99rem)";

  function answerOf(fieldset) {
    var checked = fieldset.querySelector("input[type=radio]:checked");
    if (checked) return checked.value;
    var input = fieldset.querySelector("input[type=number], input[type=text]");
    return input ? input.value.trim() : "";
  }

  function meets(section, value) {
    if (value === "" || isNaN(Number(value))) return false;
    var number = Number(value);
    if (section.hasAttribute("data-at-least")) {
      return number >= Number(section.getAttribute("data-at-least"));
    }
    if (section.hasAttribute("data-equals")) {
      return number === Number(section.getAttribute("data-equals"));
    }
    return false;
  }

  /* Show the help for an answer at once; it stays shown (resources are never harmful). */
  function setUpHelp(form) {
    var announcer = document.getElementById("help-announcer");
    form.querySelectorAll("fieldset.question").forEach(function (fieldset) {
      var sections = fieldset.querySelectorAll(".help-now");
      if (!sections.length) return;
      function check() {
        var value = answerOf(fieldset);
        sections.forEach(function (section) {
          if (section.hidden && meets(section, value)) {
            section.hidden = false;
            if (announcer) {
              announcer.textContent = section.textContent.replace(/\s+/g, " ").trim();
            }
          }
        });
      }
      fieldset.addEventListener("change", check);
      check();
    });
  }

  function setUpStepper(form) {
    var questions = Array.prototype.slice.call(form.querySelectorAll("fieldset.question"));
    if (questions.length < 2) return;
    var total = questions.length;
    var progress = form.querySelector(".stepper-progress");
    var count = progress.querySelector(".stepper-count");
    var bar = progress.querySelector("progress");
    var actions = form.querySelector(".actions");
    var submit = actions.querySelector(".submit");

    var back = document.createElement("button");
    back.type = "button";
    back.className = "secondary back";
    back.textContent = form.getAttribute("data-label-back") || "Back";
    var next = document.createElement("button");
    next.type = "button";
    next.className = "next";
    next.textContent = form.getAttribute("data-label-next") || "Next";
    actions.insertBefore(back, submit);
    actions.insertBefore(next, submit);

    var current = 0;
    var firstError = form.querySelector("fieldset.question.has-error");
    var start = form.getAttribute("data-start");
    if (firstError) {
      current = questions.indexOf(firstError);
    } else if (start && document.getElementById(start)) {
      current = Math.max(questions.indexOf(document.getElementById(start)), 0);
    }
    var countLabel = form.getAttribute("data-label-count") || "Question {number} of {total}";

    function show(index, moveFocus) {
      current = index;
      questions.forEach(function (q, i) { q.hidden = i !== index; });
      count.textContent = countLabel.replace("{number}", index + 1).replace("{total}", total);
      bar.value = index + 1;
      back.hidden = index === 0;
      next.hidden = index === total - 1;
      submit.hidden = index !== total - 1;
      if (moveFocus) {
        var legend = questions[index].querySelector("legend");
        questions[index].setAttribute("tabindex", "-1");
        questions[index].focus({ preventScroll: true });
        window.scrollTo(0, form.offsetTop - 8);
        if (legend) legend.scrollIntoView({ block: "nearest" });
      }
    }

    function answered(index) {
      var q = questions[index];
      var ok = q.getAttribute("data-required") !== "yes" || answerOf(q) !== "";
      var message = q.querySelector(".step-error");
      if (message) message.hidden = ok;
      if (!ok) {
        q.classList.add("has-error");
        q.setAttribute("aria-invalid", "true");
        q.setAttribute("aria-describedby", message ? message.id : "");
      }
      return ok;
    }

    function enable() {
      form.classList.add("stepping");
      progress.hidden = false;
      back.hidden = false;
      next.hidden = false;
      show(current, false);
    }

    function disable() {
      form.classList.remove("stepping");
      progress.hidden = true;
      back.hidden = true;
      next.hidden = true;
      submit.hidden = false;
      questions.forEach(function (q) { q.hidden = false; });
    }

    next.addEventListener("click", function () {
      if (!answered(current)) {
        var first = questions[current].querySelector("input");
        if (first) first.focus();
        return;
      }
      show(Math.min(current + 1, total - 1), true);
    });
    back.addEventListener("click", function () { show(Math.max(current - 1, 0), true); });
    questions.forEach(function (q, index) {
      q.addEventListener("change", function () {
        var message = q.querySelector(".step-error");
        if (message && answerOf(q) !== "") message.hidden = true;
      });
      /* Enter in a field (a radio button too) moves on instead of sending the form early. */
      q.addEventListener("keydown", function (event) {
        if (event.key !== "Enter" || event.target.tagName !== "INPUT") return;
        if (form.classList.contains("stepping")) {
          if (index < total - 1) {
            event.preventDefault();
            next.click();
          }
          return;
        }
        var missing = questions.filter(function (other) {
          return other.getAttribute("data-required") === "yes" && answerOf(other) === "";
        });
        if (!missing.length) return;  /* every answer given: Enter sends the form */
        event.preventDefault();
        var after = missing.filter(function (other) { return questions.indexOf(other) > index; });
        var target = (after.length ? after : missing)[0];
        var input = target.querySelector("input");
        target.scrollIntoView({ block: "start" });
        if (input) input.focus({ preventScroll: true });
      });
    });
    /* An error-summary link jumps to its question. */
    document.querySelectorAll(".error-summary a[href^='#q-']").forEach(function (link) {
      link.addEventListener("click", function (event) {
        var target = document.getElementById(link.getAttribute("href").slice(1));
        var index = questions.indexOf(target);
        if (form.classList.contains("stepping") && index >= 0) {
          event.preventDefault();
          show(index, true);
        }
      });
    });

    var media = window.matchMedia(NARROW);
    function apply() { if (media.matches) { enable(); } else { disable(); } }
    if (media.addEventListener) { media.addEventListener("change", apply); }
    apply();
  }

  function start() {
    var summary = document.getElementById("error-summary") ||
      document.getElementById("continue-summary");
    if (summary) summary.focus();
    document.querySelectorAll("form.checkin-form").forEach(function (form) {
      setUpHelp(form);
      setUpStepper(form);
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
