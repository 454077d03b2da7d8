"""The therapists' workspace: their track's patients, what is due this week, tasks, messages."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import (
    Case,
    Exists,
    IntegerField,
    OuterRef,
    Value,
    When,
)
from django.db.models.functions import Coalesce

from carehub.accounts.models import User
from carehub.care_access import (
    messages_visible_to,
    patients_visible_to,
    tasks_visible_to,
)
from carehub.core import clock
from carehub.messaging.models import Message
from carehub.pathways.models import (
    Enrolment,
    PathwayTimer,
    TimerStatus,
)
from carehub.patients.models import Patient
from carehub.web.presentation import humanise
from carehub.web.selectors.shared import (
    MAX_PAGE_SIZE,
    OPEN_ENROLMENT,
    Keyset,
    TrackCell,
    track_cells,
)
from carehub.worklists.models import CareTask, Flag, FlagStatus, Severity, TaskStatus

# --- the therapists' workspace ----------------------------------------------------------------

WEEK = timedelta(days=7)
DUE_LIMIT = 100  # "due this week" rows shown (the soonest)
INBOX_LIMIT = 20
_FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)  # a task without a due date sorts last
# The two keyset pages: the patients (urgent first, by name) and the open tasks (soonest due).
_PATIENT_PAGES = Keyset(("calm_urgent", "family_name", "given_name", "id"), "web.workspace")
_TASK_PAGES = Keyset(("due_key", "id"), "web.workspace.tasks", dated=frozenset({"due_key"}))


@dataclass
class WorkspaceRow:
    patient: Patient
    enrolment: Enrolment | None
    track: TrackCell | None
    due: list[tuple[datetime, str]] = field(default_factory=list)
    urgent_flags: list[Flag] = field(default_factory=list)  # unresolved: the row comes first


@dataclass
class Workspace:
    rows: list[WorkspaceRow]
    due_this_week: list[tuple[datetime, Patient, str]]  # overdue ones included
    tasks: Sequence[CareTask]
    messages: list[Message]
    now: datetime
    next_cursor: str = ""  # the next page of patients ("" on the last)
    tasks_next_cursor: str = ""  # the next page of open tasks
    paged: bool = False  # this is not the first page of patients
    tasks_paged: bool = False


def workspace_for_user(
    *,
    user: User,
    track: str,
    now: datetime | None = None,
    cursor: str = "",
    tasks_cursor: str = "",
    page_size: int | None = None,
) -> Workspace:
    """One page of the user's care-team patients with an open pathway (their track's state),
    those with an unresolved urgent flag first; what falls due on their track or worklist in
    the next 7 days; one page of their open tasks (soonest due first); their latest messages.

    Both lists are keyset pages (`cursor`, `tasks_cursor`: the sort key of the last row shown),
    so the page runs the same number of queries whatever its size or position."""
    now = now or clock.now()
    size = max(1, min(page_size or settings.WEB_WORKSPACE_PAGE_SIZE, MAX_PAGE_SIZE))
    urgent = Flag.objects.filter(severity=Severity.URGENT).exclude(status=FlagStatus.RESOLVED)
    mine = patients_visible_to(user).filter(
        Exists(Enrolment.objects.filter(patient=OuterRef("pk"), status__in=OPEN_ENROLMENT))
    )
    rows_query = mine.annotate(
        calm_urgent=Case(
            When(Exists(urgent.filter(patient=OuterRef("pk"))), then=Value(0)),
            default=Value(1),
            output_field=IntegerField(),
        )
    )
    patients, next_cursor = _PATIENT_PAGES.page(rows_query, cursor, size)
    ids = [p.pk for p in patients]
    urgent_by_patient: dict[int, list[Flag]] = {}
    for flag in urgent.filter(patient_id__in=ids).order_by("-raised_at", "-pk"):
        urgent_by_patient.setdefault(flag.patient_id, []).append(flag)
    enrolments = Enrolment.objects.filter(patient_id__in=ids, status__in=OPEN_ENROLMENT).order_by(
        "patient_id", "pk"
    )
    first: dict[int, Enrolment] = {}
    for open_enrolment in enrolments:
        first.setdefault(open_enrolment.patient_id, open_enrolment)

    # Due this week, over all my patients (not only this page): my track's timers and my
    # worklist's tasks, the soonest first.
    timers = (
        PathwayTimer.objects.filter(
            enrolment__patient__in=mine.values("pk"),
            enrolment__status__in=OPEN_ENROLMENT,
            status=TimerStatus.PENDING,
            track=track,
            due_at__lt=now + WEEK,
        )
        .select_related("enrolment__patient")
        .order_by("due_at", "pk")[:DUE_LIMIT]
    )
    my_tasks = tasks_visible_to(user).filter(status=TaskStatus.OPEN, discipline=user.role)
    due_tasks = my_tasks.filter(due_at__lt=now + WEEK).select_related("patient")
    due: list[tuple[datetime, Patient, str]] = [
        (t.due_at, t.enrolment.patient, humanise(t.event)) for t in timers
    ]
    due += [
        (t.due_at, t.patient, f"Task: {t.title}")
        for t in due_tasks.order_by("due_at", "pk")[:DUE_LIMIT]
        if t.due_at is not None
    ]
    due.sort(key=lambda item: item[0])
    due = due[:DUE_LIMIT]

    tasks_query = my_tasks.select_related("patient").annotate(
        due_key=Coalesce("due_at", Value(_FAR_FUTURE))
    )
    tasks, tasks_next_cursor = _TASK_PAGES.page(tasks_query, tasks_cursor, size)

    rows = []
    for patient in patients:
        enrolment = first.get(patient.pk)
        cells = [c for c in track_cells(enrolment) if c.track == track] if enrolment else []
        row = WorkspaceRow(patient=patient, enrolment=enrolment, track=cells[0] if cells else None)
        row.due = [(at, label) for at, p, label in due if p.pk == patient.pk]
        row.urgent_flags = urgent_by_patient.get(patient.pk, [])
        rows.append(row)
    inbox = list(
        messages_visible_to(user)
        .filter(to_staff=user)
        .select_related("patient")
        .order_by("-created_at", "-pk")[:INBOX_LIMIT]
    )
    return Workspace(
        rows=rows,
        due_this_week=due,
        tasks=tasks,
        messages=inbox,
        now=now,
        next_cursor=next_cursor,
        tasks_next_cursor=tasks_next_cursor,
        paged=bool(cursor),
        tasks_paged=bool(tasks_cursor),
    )
