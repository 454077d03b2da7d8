"""Which enrolments an event goes to, and the checks every door shares before dispatching it:
an event sent to one pathway by a person, to every active pathway of a patient, or told by the
system (a result recorded, a session logged)."""

from __future__ import annotations

from datetime import datetime

from carehub.accounts.models import User
from carehub.core.exceptions import InvalidInput
from carehub.pathways.dispatch.service import DispatchResult, event_refusal, pathway_dispatch
from carehub.pathways.models import Enrolment, EnrolmentStatus
from carehub.pathways.registry import definition_get
from carehub.patients.models import Patient
from workflows import APPROVE, REJECT, EventNotPermitted, PathwayDefinition, check_sender


def patient_event_dispatch(
    *,
    patient: Patient,
    event: str,
    idempotency_key: str,
    user: User | None = None,
    at: datetime | None = None,
) -> list[DispatchResult]:
    """Tell every open pathway of the patient that something happened (a result was recorded,
    a session logged), when its definition knows the event. Each enrolment gets its own key."""
    results = []
    enrolments = Enrolment.objects.filter(patient=patient, status=EnrolmentStatus.ACTIVE)
    for enrolment in enrolments.order_by("pk"):
        definition = definition_get(enrolment.definition_key, enrolment.definition_version)
        if event not in definition.events:
            continue
        results.append(
            pathway_dispatch(
                enrolment_id=enrolment.pk,
                event=event,
                idempotency_key=f"{idempotency_key}:{enrolment.public_id}",
                user=user,
                at=at,
            )
        )
    return results


def event_is_declared(definition: PathwayDefinition, event: str) -> bool:
    """An event people may name: declared by the definition, and not `approve` / `reject`
    (decided through the proposal). Whether this person may send it is the dispatch's check."""
    return event in definition.events and event not in (APPROVE, REJECT)


def pathway_event_send(
    *,
    enrolment: Enrolment,
    event: str,
    idempotency_key: str,
    user: User,
    expected_version: int | None = None,
    reason: str = "",
    reason_label: str = "Reason",
) -> DispatchResult:
    """A person sends an event to a pathway. Undeclared events and `approve`/`reject` are
    invalid input; the definition decides who may send the rest (403 naming the roles that may,
    none for the pathway's own timer and internal events). An event that `requires_reason`
    (a discharge) needs `reason`, kept in the step's explanation after `reason_label`."""
    definition = definition_get(enrolment.definition_key, enrolment.definition_version)
    if not event_is_declared(definition, event):
        raise InvalidInput(
            f"'{event}' is not an event that can be sent to this pathway.",
            extra={"field": "event"},
        )
    reason = reason.strip()[:500] if isinstance(reason, str) else ""
    return pathway_dispatch(
        enrolment_id=enrolment.pk,
        event=event,
        idempotency_key=idempotency_key,
        user=user,
        expected_version=expected_version,
        reason=reason,
        note=f"{reason_label}: {reason}" if reason else "",
    )


def enrolments_accepting(*, patient: Patient, event: str, user: User) -> list[Enrolment]:
    """The patient's active enrolments to which `user` may send `event`. NotPermitted (naming
    the roles that may) when some active pathway takes the event from people, but not from this
    user's role."""
    accepting: list[Enrolment] = []
    refused: EventNotPermitted | None = None
    enrolments = Enrolment.objects.filter(patient=patient, status=EnrolmentStatus.ACTIVE)
    for enrolment in enrolments.order_by("pk"):
        definition = definition_get(enrolment.definition_key, enrolment.definition_version)
        if not event_is_declared(definition, event):
            continue
        try:
            check_sender(definition, event, user.role, reason="-")
        except EventNotPermitted as exc:
            refused = refused or exc
            continue
        accepting.append(enrolment)
    if not accepting and refused is not None:
        raise event_refusal(refused)
    return accepting


def patient_event_send(
    *, patient: Patient, event: str, idempotency_key: str, user: User
) -> list[DispatchResult]:
    """A person tells the patient's pathways that something happened (a session was logged, a
    result recorded): every active enrolment whose definition lets this user's role send the
    event gets it, each with its own key (`<key>:<enrolment public id>`), so a retry replays."""
    enrolments = enrolments_accepting(patient=patient, event=event, user=user)
    if not enrolments:
        raise InvalidInput(
            f"No active pathway of this patient accepts the event '{event}'.",
            extra={"field": "event"},
        )
    return [
        pathway_dispatch(
            enrolment_id=enrolment.pk,
            event=event,
            idempotency_key=f"{idempotency_key}:{enrolment.public_id}",
            user=user,
        )
        for enrolment in enrolments
    ]
