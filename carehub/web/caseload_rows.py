"""The caseload's table rows as HTML, built in one function per row.

A page shows up to 100 rows of six cells; through the template language each row was about 50
nodes (loops, conditions, filters), which made rendering the largest part of the page's time.
`row_html` writes the same markup the row template wrote, every value escaped as the template's
autoescaping did (`django.utils.html.escape`); `caseload_results.html` places the rows.
"""

from __future__ import annotations

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from carehub.web.selectors.shared import CaseloadRow

_INDENT = "\n          "


def _s(count: int) -> str:
    """`|pluralize`."""
    return "" if count == 1 else "s"


def _chips(row: CaseloadRow) -> str:
    items = []
    for cell in row.tracks:
        final = " chip-final" if cell.final else ""
        title = escape(cell.title)
        items.append(
            f'<li class="chip{final}" title="{title}: {escape(cell.state_title)}">'
            f'<span class="chip-track">{escape(cell.short_title)}'
            f'<span class="visually-hidden"> ({title})</span>:</span> {escape(cell.chip)}</li>'
        )
    return "".join(items)


def _peg(row: CaseloadRow) -> str:
    if not row.peg_text:
        return '<span class="muted">No score</span>'
    html = f'<span class="peg">{escape(row.peg_text)}</span>'
    if row.peg_change_text:
        html += (
            f' <span class="small change-{escape(row.peg_change_class)}">'
            f"{escape(row.peg_change_text)}</span>"
        )
    return html


def _next_due(row: CaseloadRow) -> str:
    if not row.next_due_at:
        return '<span class="muted">Nothing scheduled</span>'
    html = f'<time datetime="{escape(row.next_due_iso)}">{escape(row.next_due_date)}</time>'
    if row.overdue:
        html += ' <span class="badge badge-warning">overdue</span>'
    return html + f' <span class="small">{escape(row.next_due_label)}</span>'


def _attention(row: CaseloadRow) -> str:
    """The "Needs attention" cell's lines (each on its own line, as the template had them)."""
    lines = [
        f'<span class="badge badge-urgent">{row.urgent_flags} urgent</span>'
        if row.urgent_flags
        else "",
        f'<span class="small">{row.open_flags} flag{_s(row.open_flags)}: '
        f"{escape(row.top_flag_message)}</span>"
        if row.open_flags
        else "",
        f'<span class="badge badge-approval">{row.pending_proposals} to approve</span> '
        f'<span class="small">{escape(row.pending_summary)}</span>'
        if row.pending_proposals
        else "",
        f'<span class="badge badge-warning">{row.overdue_checkins} check-in'
        f"{_s(row.overdue_checkins)} overdue or missed</span>"
        if row.overdue_checkins
        else "",
        '<span class="badge badge-contact">Cannot reach</span> '
        f'<span class="small">{escape(row.contact_problem)}</span>'
        if row.contact_problem
        else "",
        ""
        if row.open_flags or row.pending_proposals or row.overdue_checkins or row.contact_problem
        else '<span class="muted">Nothing</span>',
    ]
    return _INDENT + _INDENT.join(lines)


def row_html(row: CaseloadRow) -> SafeString:
    """One `<tr>` of the caseload, with the whitespace the template loop gave it."""
    urgent = " row-urgent" if row.urgent_flags else ""
    paused = '<span class="badge badge-paused">Paused</span>' if row.paused else ""
    stalled = '<span class="badge badge-stalled">Stalled</span> ' if row.stalled else ""
    return mark_safe(  # noqa: S308 (every value above is escaped)
        f'\n      <tr class="caseload-row{urgent}">'
        f'\n        <th scope="row">'
        f'\n          <a href="{escape(row.url)}">{escape(row.name)}</a>'
        f' <span class="mrn">{escape(row.patient.mrn)}</span>'
        f"\n          {paused}"
        f"\n        </th>"
        f'\n        <td data-label="Where they are"><ul class="chips">{_chips(row)}</ul></td>'
        f'\n        <td data-label="Last PEG">{_peg(row)}</td>'
        f'\n        <td data-label="Next due">{_next_due(row)}</td>'
        f'\n        <td data-label="Needs attention" class="attention">{_attention(row)}'
        f"\n        </td>"
        f'\n        <td data-label="Progress">{stalled}'
        f'<span class="small">{escape(row.progress_text)}</span></td>'
        f"\n      </tr>\n    "
    )
