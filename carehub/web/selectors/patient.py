"""One patient: the patient page's record and the items a page about one patient acts on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import (
    Case,
    Count,
    F,
    IntegerField,
    Value,
    When,
)

from carehub.accounts.models import User
from carehub.care_access import (
    enrolments_visible_to,
    messages_visible_to,
    patients_visible_to,
)
from carehub.checkins.models import Checkin
from carehub.core.exceptions import InvalidInput
from carehub.core.selectors import one_or_not_found
from carehub.messaging.models import Message, MessageStatus
from carehub.observations.models import Kind, Observation
from carehub.observations.selectors import observation_history
from carehub.pathways.models import (
    Enrolment,
    PathwayStep,
    PathwayTimer,
    Proposal,
    ProposalStatus,
    TimerStatus,
)
from carehub.patients.models import Patient

# --- one patient ----------------------------------------------------------------------------
from carehub.web.selectors.shared import OPEN_ENROLMENT, SEVERITY_RANK
from carehub.worklists.models import CareTask, Flag, FlagStatus, Severity, TaskStatus


def patient_for_user(*, user: User, patient_id: int) -> Patient:
    return one_or_not_found(patients_visible_to(user), "patient", pk=patient_id)


# --- the patient page -----------------------------------------------------------------------

TIMELINE_LIMIT = 60
CHECKIN_LIMIT = 40
MESSAGE_LIMIT = 40
FLAG_LIMIT = 60  # unresolved ones first: only the oldest resolved ones can be left out
DECISION_LIMIT = 20


@dataclass
class PatientRecord:
    """What the patient page reads, each list in one query."""

    patient: Patient
    enrolments: list[Enrolment]
    steps: list[PathwayStep]
    scores: list[Observation]
    procedures: list[Observation]
    sessions: list[Observation]
    checkins: list[Checkin]
    checkin_counts: dict[str, int]
    messages: list[Message]
    tasks: list[CareTask]
    flags: Sequence[Flag]  # unresolved first (urgent first), then resolved ones, newest first
    failed_treatments: list[Observation] = field(default_factory=list)  # newest first
    decisions: list[Proposal] = field(default_factory=list)  # decided escalations, newest first
    timers: list[PathwayTimer] = field(default_factory=list)  # pending, soonest first

    @property
    def unresolved_flags(self) -> list[Flag]:
        return [f for f in self.flags if f.status != FlagStatus.RESOLVED]

    @property
    def contact_problems(self) -> list[Message]:
        """Messages to the patient that could not be delivered (dead), newest first."""
        return [m for m in self.messages if m.status == MessageStatus.DEAD and not m.to_staff_id]

    @property
    def urgent_flags(self) -> list[Flag]:
        """The unresolved urgent flags: the banner at the top of the patient's pages."""
        return [
            f
            for f in self.flags
            if f.severity == Severity.URGENT and f.status != FlagStatus.RESOLVED
        ]


def patient_record(*, user: User, patient: Patient) -> PatientRecord:
    enrolments = list(
        enrolments_visible_to(user).filter(patient=patient).order_by("-started_at", "-pk")
    )
    steps = list(
        PathwayStep.objects.filter(enrolment__in=enrolments)
        .select_related("actor", "enrolment")
        .order_by("-at", "-pk")[:TIMELINE_LIMIT]
    )
    observations = list(
        observation_history(patient=patient).filter(
            kind__in=(Kind.SCORE, Kind.PROCEDURE, Kind.SESSION, Kind.FAILED_TREATMENT)
        )
    )
    checkins = list(
        Checkin.objects.filter(patient=patient).order_by("-due_at", "-pk")[:CHECKIN_LIMIT]
    )
    checkin_counts = dict(
        Checkin.objects.filter(patient=patient)
        .order_by()
        .values_list("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    messages = list(
        messages_visible_to(user)
        .filter(patient=patient)
        .select_related("to_staff")
        .prefetch_related("events")
        .order_by("-created_at", "-pk")[:MESSAGE_LIMIT]
    )
    tasks = list(
        CareTask.objects.filter(patient=patient, status=TaskStatus.OPEN).order_by(
            F("due_at").asc(nulls_last=True), "pk"
        )
    )
    flags = list(
        Flag.objects.filter(patient=patient)
        .select_related("acknowledged_by", "resolved_by")
        .annotate(
            severity_rank=SEVERITY_RANK,
            resolved_rank=Case(
                When(status=FlagStatus.RESOLVED, then=Value(1)),
                default=Value(0),
                output_field=IntegerField(),
            ),
        )
        .order_by("resolved_rank", "severity_rank", "-raised_at", "-pk")[:FLAG_LIMIT]
    )
    decisions = list(
        Proposal.objects.filter(enrolment__in=enrolments)
        .exclude(status=ProposalStatus.PENDING)
        .select_related("decided_by", "enrolment")
        .order_by(F("decided_at").desc(nulls_last=True), "-pk")[:DECISION_LIMIT]
    )
    timers = list(
        PathwayTimer.objects.filter(
            enrolment__in=[e for e in enrolments if e.status in OPEN_ENROLMENT],
            status=TimerStatus.PENDING,
        )
        .select_related("enrolment")
        .order_by("due_at", "pk")[:5]
    )
    return PatientRecord(
        patient=patient,
        enrolments=enrolments,
        steps=steps,
        scores=[o for o in observations if o.kind == Kind.SCORE],
        procedures=[o for o in observations if o.kind == Kind.PROCEDURE],
        sessions=[o for o in observations if o.kind == Kind.SESSION],
        checkins=checkins,
        checkin_counts=checkin_counts,
        messages=messages,
        tasks=tasks,
        flags=flags,
        failed_treatments=[o for o in observations if o.kind == Kind.FAILED_TREATMENT],
        decisions=decisions,
        timers=timers,
    )


def pending_proposals_exist(*, enrolments: Sequence[Enrolment]) -> bool:
    return Proposal.objects.filter(
        enrolment__in=[e.pk for e in enrolments], status=ProposalStatus.PENDING
    ).exists()


def proposal_for_patient(*, user: User, patient: Patient, proposal_id: int) -> Proposal:
    enrolments = enrolments_visible_to(user).filter(patient=patient)
    proposals = Proposal.objects.filter(enrolment__in=enrolments).select_related("enrolment")
    return one_or_not_found(proposals, "escalation", pk=proposal_id)


def enrolment_for_patient(*, user: User, patient: Patient, public_id: Any) -> Enrolment:
    visible = enrolments_visible_to(user)
    return one_or_not_found(visible, "pathway enrolment", patient=patient, public_id=public_id)


def procedure_for_patient(*, patient: Patient, observation_id: int) -> Observation:
    procedure = (
        observation_history(patient=patient, kind=Kind.PROCEDURE).filter(pk=observation_id).first()
    )
    if procedure is None:
        raise InvalidInput("Choose one of this patient's procedures.", extra={"field": "procedure"})
    return procedure
