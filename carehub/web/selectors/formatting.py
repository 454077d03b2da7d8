"""Words and links of the caseload's rows: dates as shown, the next due item, the last
progress and PEG in words, event titles."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.urls import reverse
from django.utils import timezone
from django.utils.dates import MONTHS_3

from carehub.instruments.catalogue import entry, improvement_pct
from carehub.pathways.models import (
    Enrolment,
)
from carehub.pathways.registry import definition_get, registry
from carehub.web.presentation import (
    event_title,
    humanise,
    instrument_title,
    show_value,
    state_title,
)
from carehub.web.selectors.shared import CaseloadRow
from workflows import PathwayDefinition

_URL_MARK = 987654321987654321  # stands for the patient id in a reversed URL

if TYPE_CHECKING:
    from carehub.web.selectors.row_details import RowDetails


def _patient_url_maker() -> Any:
    """`reverse("web:patient", ...)` for many patients at the cost of one reverse."""
    head, tail = reverse("web:patient", args=[_URL_MARK]).split(str(_URL_MARK))
    return lambda pk: f"{head}{pk}{tail}"


def _shown_date(at: datetime) -> tuple[str, str]:
    """`at` as the templates' `|date:"c"` and `|date:"j M Y"` show it (in local time)."""
    local = timezone.localtime(at)
    return local.isoformat(), f"{local.day} {MONTHS_3[local.month].title()} {local.year}"


def _next_due(patient: Any) -> tuple[datetime | None, str]:
    options = [
        (patient.next_task_due, f"Task: {patient.next_task_title}"),
        (patient.next_timer_due, f"Pathway: {any_event_title(patient.next_timer_event or '')}"),
        (
            patient.next_checkin_due,
            f"Check-in: {instrument_title(patient.next_checkin_instrument or '')}",
        ),
    ]
    present = [(at, label) for at, label in options if at is not None]
    if not present:
        return None, ""
    return min(present, key=lambda item: item[0])


def _humanise(name: str) -> str:
    return humanise(name)


def _describe_progress(
    row: CaseloadRow, detail: RowDetails, enrolments: Sequence[Enrolment], now: datetime
) -> None:
    """What last moved the patient's pathway and how long ago, in words."""
    at = detail.last_progress_at
    if at is None:
        row.progress_text = "No progress recorded"
        return
    moves = detail.last_progress_transitions or []
    definition = None
    if enrolments:
        first = enrolments[0]
        definition = definition_get(first.definition_key, first.definition_version)
    moved = [m for m in moves if not m.get("internal") and m.get("source") != m.get("target")]
    days = max(0, (now - at).days)
    ago = "today" if days == 0 else ("yesterday" if days == 1 else _ago(days))
    if moved:
        move = moved[0]
        row.progress_text = (
            f"{state_title(definition, move['track'], move['target'])}, reached {ago}"
        )
    else:
        row.progress_text = f"Pathway started {ago}"
    if row.stalled:
        row.progress_text = f"No change for {days // 7} weeks: {row.progress_text}"


def _ago(days: int) -> str:
    if days < 14:
        return f"{days} days ago"
    if days < 70:
        return f"{days // 7} weeks ago"
    return f"{days // 30} months ago"


def _describe_peg(row: CaseloadRow, detail: RowDetails) -> None:
    """The last PEG and its change from the baseline (better or worse as the catalogue says)."""
    if detail.last_peg is None:
        return
    row.peg_text = show_value(detail.last_peg)
    baseline = detail.baseline_peg
    if baseline is None or not baseline or detail.last_peg_at is None:
        return
    improvement = improvement_pct(entry("peg"), baseline, detail.last_peg)
    if improvement is None:
        return
    pct = round(improvement)
    if pct == 0:
        row.peg_change_text, row.peg_change_class = "same as baseline", "same"
    elif pct > 0:
        row.peg_change_text, row.peg_change_class = f"{pct} % better than baseline", "better"
    else:
        row.peg_change_text, row.peg_change_class = f"{-pct} % worse than baseline", "worse"


def event_label(definition: PathwayDefinition, event: str) -> str:
    return event_title(definition, event)


def any_event_title(event: str) -> str:
    """An event by its title in the latest published definition that declares it."""
    for definition in reversed(list(registry())):
        if event in definition.events:
            return event_title(definition, event)
    return _humanise(event)
