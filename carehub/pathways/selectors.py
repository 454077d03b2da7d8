"""Reads of pathway enrolments, steps and proposals, within the user's scope
(carehub.care_access): anything outside it is NotFound."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from django.db.models import QuerySet

from carehub.accounts.models import User
from carehub.core.exceptions import NotFound
from carehub.core.selectors import one_or_not_found
from carehub.pathways.access import enrolments_visible_to, proposals_visible_to
from carehub.pathways.dispatch.codec import configuration_from_json
from carehub.pathways.models import (
    Enrolment,
    EnrolmentStatus,
    PathwayStep,
    PathwayTimer,
    Proposal,
    ProposalStatus,
    TimerStatus,
)
from carehub.pathways.registry import definition_get
from carehub.patients.models import Patient
from workflows import Snapshot, available_events

if TYPE_CHECKING:
    from carehub.worklists.models import CareTask


@dataclass(frozen=True)
class TrackView:
    track: str
    title: str
    state: str
    entered_at: datetime
    final: bool


@dataclass(frozen=True)
class EnrolmentView:
    enrolment: Enrolment
    title: str
    tracks: list[TrackView]
    pending_proposals: list[Proposal]
    available_events: dict[str, list[str]]


def enrolment_list_for_patient(*, patient: Patient) -> QuerySet[Enrolment]:
    return Enrolment.objects.filter(patient=patient)


def enrolment_get_for_user(*, user: User, public_id: uuid.UUID | str) -> Enrolment:
    enrolment = (
        enrolments_visible_to(user).select_related("patient").filter(public_id=public_id).first()
    )
    if enrolment is None:
        raise NotFound("No such pathway enrolment.")
    return enrolment


def enrolment_view(*, enrolment: Enrolment, user: User | None = None) -> EnrolmentView:
    """State per track, pending proposals and the events a person may send now: with a `user`,
    only those the definition lets the user's role send."""
    definition = definition_get(enrolment.definition_key, enrolment.definition_version)
    configuration = configuration_from_json(enrolment.configuration)
    tracks = [
        TrackView(
            track=name,
            title=definition.tracks[name].title or name,
            state=state.state,
            entered_at=state.entered_at,
            final=definition.tracks[name].states[state.state].final,
        )
        for name, state in configuration.items()
    ]
    pending = list(
        Proposal.objects.filter(enrolment=enrolment, status=ProposalStatus.PENDING).order_by("pk")
    )
    events: dict[str, list[str]] = {}
    if enrolment.status == EnrolmentStatus.ACTIVE:
        events = available_events(
            definition,
            Snapshot(configuration=configuration),
            role=user.role if user is not None else None,
        )
    return EnrolmentView(
        enrolment=enrolment,
        title=definition.title,
        tracks=tracks,
        pending_proposals=pending,
        available_events=events,
    )


def enrolment_timeline(*, enrolment: Enrolment) -> QuerySet[PathwayStep]:
    """The enrolment's step log with the actors (ordering is the caller's: pagination)."""
    return PathwayStep.objects.filter(enrolment=enrolment).select_related("actor")


def proposal_list_for_user(*, user: User, status: str | None = None) -> QuerySet[Proposal]:
    proposals = proposals_visible_to(user).select_related("enrolment__patient", "decided_by")
    if status:
        proposals = proposals.filter(status=status)
    return proposals


def proposal_get_for_user(*, user: User, proposal_id: int) -> Proposal:
    visible = proposals_visible_to(user).select_related("enrolment__patient")
    return one_or_not_found(visible, "proposal", pk=proposal_id)


# --- what a pathway reads and waits for (the API's integration reads) ---------------------------

NEXT_DUE_LIMIT = 100


@dataclass(frozen=True)
class FactView:
    name: str
    value: object
    type: str
    description: str


@dataclass(frozen=True)
class ThresholdReading:
    name: str
    value: object
    source: str
    set_by_clinic: bool


@dataclass(frozen=True)
class EnrolmentFacts:
    as_of: datetime
    facts: list[FactView]
    thresholds: list[ThresholdReading]  # the clinic's value, else the definition's default
    not_computed: dict[str, str]


def enrolment_facts(*, enrolment: Enrolment, now: datetime) -> EnrolmentFacts:
    """The derived facts the enrolment's guards read now (improvement %, responder, MME, pain
    months, ...), exactly as a dispatch would read them, with the thresholds it compares them
    with (the clinic's value or the definition's default, each with its source)."""
    from carehub.observations.selectors import NOT_COMPUTED, facts_for_patient
    from carehub.pathways.dispatch.codec import thresholds_for
    from workflows.facts import STANDARD_FACTS

    values = facts_for_patient(patient=enrolment.patient, now=now)
    facts = []
    for name in sorted(values):
        spec = STANDARD_FACTS[name]
        facts.append(
            FactView(
                name=name, value=values[name], type=str(spec.type), description=spec.description
            )
        )
    definition = definition_get(enrolment.definition_key, enrolment.definition_version)
    clinic = thresholds_for(enrolment)
    thresholds = []
    for name, threshold in sorted(definition.thresholds.items()):
        override = clinic.get(name)
        if override is not None:
            thresholds.append(ThresholdReading(name, override.value, override.source, True))
        else:
            thresholds.append(ThresholdReading(name, threshold.default, threshold.source, False))
    return EnrolmentFacts(
        as_of=now, facts=facts, thresholds=thresholds, not_computed=dict(NOT_COMPUTED)
    )


def enrolment_timers_pending(*, enrolment: Enrolment) -> QuerySet[PathwayTimer]:
    """The enrolment's timers still to fire: pending, or suspended while it is paused (one per
    timer of the definition at most), soonest first."""
    return PathwayTimer.objects.filter(
        enrolment=enrolment, status__in=[TimerStatus.PENDING, TimerStatus.SUSPENDED]
    ).order_by("due_at", "pk")


@dataclass(frozen=True)
class NextDueItem:
    kind: str  # timer, checkin, task
    at: datetime | None  # when it is due (an open check-in: when its window closes)
    id: int
    title: str
    status: str
    track: str
    detail: dict[str, object]


# Kind → reader of what else comes next for an enrolment: at most `limit` items of its kind,
# soonest first, in one query. Each app with rows that fall due for an enrolment registers its
# reader from its AppConfig.ready() (ADR 0032): check-ins `checkin` (scheduled, open and
# suspended check-ins). Without one the list shows the pathway's timers and tasks only.
NextDueReader = Callable[[Enrolment, int], list[NextDueItem]]
NEXT_DUE_READERS: dict[str, NextDueReader] = {}


def register_next_due_reader(kind: str, reader: NextDueReader) -> None:
    """The reader of an enrolment's next items of this kind (registering again replaces it)."""
    NEXT_DUE_READERS[kind] = reader


def _pathway_item(
    kind: str, row: PathwayTimer | CareTask, title: str, **detail: object
) -> NextDueItem:
    """A timer or a task of the pathway (due at `due_at`, on a track) as an item of the list."""
    return NextDueItem(
        kind=kind,
        at=row.due_at,
        id=row.pk,
        title=title,
        status=row.status,
        track=row.track,
        detail=detail,
    )


def enrolment_next_due(*, enrolment: Enrolment) -> list[NextDueItem]:
    """What comes next for the enrolment, soonest first (undated tasks last): its pending
    timers (the pathway's own reviews and deadlines), what the registered readers list (its
    check-ins scheduled or open), and its open tasks. One query each, whatever the history; at
    most NEXT_DUE_LIMIT of each."""
    from carehub.worklists.models import CareTask, TaskStatus

    timers = enrolment_timers_pending(enrolment=enrolment)[:NEXT_DUE_LIMIT]
    items = [
        _pathway_item(
            "timer", timer, timer.event, key=timer.key, state=timer.state, event=timer.event
        )
        for timer in timers
    ]
    for reader in NEXT_DUE_READERS.values():
        items += reader(enrolment, NEXT_DUE_LIMIT)
    tasks = CareTask.objects.filter(enrolment=enrolment, status=TaskStatus.OPEN).order_by(
        "due_at", "pk"
    )[:NEXT_DUE_LIMIT]
    items += [
        _pathway_item(
            "task",
            task,
            task.title,
            discipline=task.discipline,
            priority=task.priority,
            state=task.state,
        )
        for task in tasks
    ]
    items.sort(key=lambda item: (item.at is None, item.at or enrolment.started_at, item.kind))
    return items
