"""Recording an observation, then telling the patient's pathways: one service for every door
(the API's recording endpoints, the staff patient page's procedure forms, the therapists'
session log).

A pathway reads facts when it receives an event, so a recorded session or procedure result is
followed by an event (`pt_session_logged`, `mbb1_result_recorded`, ...). The event goes to every
active pathway of the patient that lets people send it (`patient_event_send`, which applies who
may send which event), each with the one idempotency key of the request (per enrolment), after
the observation is committed: the pathway decides on the facts just recorded, and a retry with
the same key replays instead of acting twice.

- `require_listener=True` (a client naming the event): an event no active pathway accepts is
  refused before anything is recorded.
- `require_listener=False` (an event implied by what is recorded, e.g. a session log): the
  observation is recorded whatever the pathways; `Told.paused` says a paused pathway would
  have heard it.

The event is sent after the observation is committed, so a refusal then (a concurrent change
of the pathway, a pathway that moved on) does not undo it: it is returned as `Told.not_told` for
the door to say (the API answers an error naming the observation, a page a message).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from carehub.accounts.models import User
from carehub.core.exceptions import ApplicationError, InvalidInput
from carehub.pathways.models import Enrolment, EnrolmentStatus
from carehub.pathways.services import DispatchResult, enrolments_accepting, patient_event_send
from carehub.patients.models import Patient

T = TypeVar("T")


@dataclass(frozen=True)
class Told(Generic[T]):
    """What `record` returned, and what the pathways made of the event."""

    recorded: T
    event: str | None
    results: list[DispatchResult] = field(default_factory=list)
    not_told: ApplicationError | None = None  # the event was refused after recording
    paused: bool = False  # no active pathway took the event while a paused one exists


def observation_record_and_tell(
    *,
    patient: Patient,
    record: Callable[[], T],
    event: str | None,
    idempotency_key: str,
    user: User,
    require_listener: bool,
) -> Told[T]:
    """Run `record` (the door's recording, in its own transaction and with its own retry
    protection), then send `event` to the patient's active pathways that accept it with
    `idempotency_key` (each enrolment `<key>:<enrolment public id>`)."""
    accepting: list[Enrolment] = []
    if event:
        accepting = enrolments_accepting(patient=patient, event=event, user=user)
        if not accepting and require_listener:
            raise InvalidInput(
                f"No active pathway of this patient accepts the event '{event}'.",
                extra={"field": "event"},
            )
    recorded = record()
    if not event:
        return Told(recorded=recorded, event=None)
    if not accepting:
        paused = Enrolment.objects.filter(patient=patient, status=EnrolmentStatus.PAUSED).exists()
        return Told(recorded=recorded, event=event, paused=paused)
    try:
        results = patient_event_send(
            patient=patient, event=event, idempotency_key=idempotency_key, user=user
        )
    except ApplicationError as exc:
        return Told(recorded=recorded, event=event, not_told=exc)
    return Told(recorded=recorded, event=event, results=results)
