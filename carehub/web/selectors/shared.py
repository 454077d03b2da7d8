"""What the staff pages share: the open enrolment statuses, the caseload's overdue and missed
windows, page sizes, the severity order, keyset pages and the track cells of an enrolment."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.core import signing
from django.db.models import (
    Case,
    IntegerField,
    Model,
    Q,
    QuerySet,
    Value,
    When,
)

from carehub.core.exceptions import InvalidInput
from carehub.pathways.models import (
    Enrolment,
    EnrolmentStatus,
)
from carehub.pathways.registry import definition_get
from carehub.patients.models import Patient
from carehub.web.presentation import (
    short_track_title,
    state_title,
    track_title,
)
from carehub.worklists.models import Severity

M = TypeVar("M", bound=Model)

OPEN_ENROLMENT = (EnrolmentStatus.ACTIVE, EnrolmentStatus.PAUSED)
# A check-in still open this long after it was due counts as overdue on the caseload.
OVERDUE_AFTER = timedelta(hours=24)
# Missed check-ins counted on the caseload (a rolling window).
MISSED_WINDOW = timedelta(days=28)
PAGE_SIZES = (10, 25, 50, 100)
MAX_PAGE_SIZE = 100

SEVERITY_RANK = Case(
    When(severity=Severity.URGENT, then=Value(0)),
    When(severity=Severity.WARNING, then=Value(1)),
    default=Value(2),
    output_field=IntegerField(),
)


@dataclass(frozen=True)
class TrackCell:
    track: str
    title: str
    state: str
    state_title: str
    stage: str
    final: bool
    short_title: str = ""

    @property
    def chip(self) -> str:
        """The state's title without its parenthesis ("Skill building (sessions 4-10)")."""
        return self.state_title.split(" (")[0]


def _after(keys: Sequence[str], values: Sequence[Any]) -> Q:
    """Rows strictly after `values` in the ascending order of `keys` (lexicographic)."""
    condition = Q()
    for position in range(len(keys) - 1, -1, -1):
        step = Q(**{f"{keys[position]}__gt": values[position]})
        equal = Q(**{keys[i]: values[i] for i in range(position)})
        condition = (equal & step) | condition if condition else equal & step
    return condition


@dataclass(frozen=True)
class Keyset:
    """A keyset-paged list: its order (`keys`, ascending, the last one unique) and its cursor,
    the signed values of the last row shown (`dated`: the keys holding a date and time). A page
    runs one query whatever its position."""

    keys: tuple[str, ...]
    salt: str
    dated: frozenset[str] = frozenset()

    def after(self, cursor: str) -> list[Any] | None:
        """The position a cursor names (None: the first page); InvalidInput for a cursor this
        list did not issue."""
        if not cursor:
            return None
        try:
            values = list(signing.loads(cursor, salt=self.salt))
        except signing.BadSignature as exc:
            raise InvalidInput(
                "That page link is no longer valid.", extra={"field": "cursor"}
            ) from exc
        for index, key in enumerate(self.keys):
            if key in self.dated:
                values[index] = datetime.fromisoformat(values[index])
        return values

    def page(self, rows: QuerySet[M], cursor: str, size: int) -> tuple[list[M], str]:
        """At most `size` rows after the cursor's position, and the next page's cursor ("" on
        the last page)."""
        after = self.after(cursor)
        if after is not None:
            rows = rows.filter(_after(self.keys, after))
        page = list(rows.order_by(*self.keys)[: size + 1])
        if len(page) <= size:
            return page, ""
        last = [getattr(page[size - 1], key) for key in self.keys]
        plain = [v.isoformat() if isinstance(v, datetime) else v for v in last]
        return page[:size], signing.dumps(plain, salt=self.salt, compress=True)


def track_cells(enrolment: Enrolment) -> list[TrackCell]:
    definition = definition_get(enrolment.definition_key, enrolment.definition_version)
    cells = []
    for name, track in definition.tracks.items():  # the definition's order of tracks
        item = enrolment.configuration.get(name)
        if item is None:
            continue
        state = track.states.get(item["state"])
        cells.append(
            TrackCell(
                track=name,
                title=track_title(definition, name),
                short_title=short_track_title(definition, name),
                state=item["state"],
                state_title=state_title(definition, name, item["state"]),
                stage=(state.stage or "") if state else "",
                final=bool(state and state.final),
            )
        )
    return cells


@dataclass
class CaseloadRow:
    patient: Patient
    tracks: list[TrackCell] = field(default_factory=list)
    paused: bool = False
    next_due_at: datetime | None = None
    next_due_label: str = ""
    stalled: bool = False
    urgent_flags: int = 0
    open_flags: int = 0
    pending_proposals: int = 0
    overdue_checkins: int = 0
    last_progress_at: datetime | None = None
    top_flag_message: str = ""
    pending_summary: str = ""
    # What the page prints, prepared once per row (the template only places it).
    url: str = ""
    name: str = ""
    next_due_iso: str = ""  # `|date:"c"`
    next_due_date: str = ""  # `|date:"j M Y"`
    overdue: bool = False
    progress_iso: str = ""
    progress_date: str = ""
    progress_text: str = ""  # what last moved, in words ("Now Interventional review")
    peg_text: str = ""  # "6.9"
    peg_change_text: str = ""  # "12 % better than baseline"
    peg_change_class: str = ""  # better / worse / same
    contact_problem: str = ""  # the latest dead message's error
    html: str = ""  # the row's markup (`carehub.web.caseload_rows.row_html`)
