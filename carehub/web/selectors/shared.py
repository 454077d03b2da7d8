"""What the staff pages share: the open enrolment statuses, the caseload's overdue and missed
windows, page sizes, the severity order, keyset conditions and the track cells of an enrolment."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db.models import (
    Case,
    IntegerField,
    Q,
    Value,
    When,
)

from carehub.pathways.models import (
    Enrolment,
    EnrolmentStatus,
)
from carehub.pathways.registry import definition_get
from carehub.web.presentation import (
    short_track_title,
    state_title,
    track_title,
)
from carehub.worklists.models import Severity

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
