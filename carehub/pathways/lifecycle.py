"""An enrolment's life: start, pause, resume, discharge.

Start writes the engine's `start` decision; pause and resume lock the enrolment and write their
step through the same store as a dispatch (`dispatch.store`); discharge is the definition's
discharge event, dispatched. What else waits while an enrolment is paused (its check-ins) is
suspended and resumed by the pause hooks its apps register (`register_pause_hooks`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import F

from carehub.accounts.models import User
from carehub.core import clock
from carehub.core.exceptions import Conflict, InvalidInput
from carehub.pathways.dispatch.codec import configuration_to_json
from carehub.pathways.dispatch.service import DispatchResult
from carehub.pathways.dispatch.store import current_state, store
from carehub.pathways.models import (
    Enrolment,
    EnrolmentStatus,
    PathwayStep,
    PathwayTimer,
    TimerStatus,
)
from carehub.pathways.registry import definition_get
from carehub.pathways.routing import pathway_event_send
from carehub.patients.models import Patient
from workflows import UnknownPathway, start


@dataclass(frozen=True)
class PauseHooks:
    """What an app does, inside the pause and resume transactions, to what it keeps for an
    enrolment: `suspend(enrolment=...)` when it is paused, `resume(enrolment=..., paused_for=...)`
    when it is resumed."""

    suspend: Callable[..., object]
    resume: Callable[..., object]


# Name → hooks. Each app whose rows wait while an enrolment is paused registers its hooks from
# its AppConfig.ready() (ADR 0032): check-ins `checkins` (scheduled and open check-ins are
# suspended, then moved by the paused time). Pathways knows the hooks, not the apps.
PAUSE_HOOKS: dict[str, PauseHooks] = {}


def register_pause_hooks(
    name: str, *, suspend: Callable[..., object], resume: Callable[..., object]
) -> None:
    """The hooks `name` runs on pause and resume (registering again replaces them)."""
    PAUSE_HOOKS[name] = PauseHooks(suspend=suspend, resume=resume)


def _pause_hooks() -> list[PauseHooks]:
    # Refused rather than paused halfway: without the check-ins' hooks a paused patient would
    # still be asked to answer (and reminded) all through the hospital stay.
    if not PAUSE_HOOKS:
        raise ImproperlyConfigured(
            "No pause hook is registered: pausing would leave the check-ins running."
        )
    return list(PAUSE_HOOKS.values())


@transaction.atomic(durable=True)
def enrolment_start(
    *,
    patient: Patient,
    definition_key: str,
    version: int | None = None,
    started_by: User | None = None,
    at: datetime | None = None,
) -> Enrolment:
    """Enrol a patient on a pathway (pinned to the latest version unless one is named)."""
    now = at or clock.now()
    # Locked (as `patient_deactivate` locks it): a patient is not enrolled while being
    # deactivated, nor deactivated while being enrolled.
    active = Patient.objects.select_for_update(no_key=True).filter(pk=patient.pk, active=True)
    if not list(active.values_list("pk", flat=True)):
        raise Conflict(
            f"{patient} is inactive (deactivated): an inactive patient is not enrolled.",
            extra={"current": {"patient_id": patient.pk, "active": False}},
        )
    try:
        definition = definition_get(definition_key, version)
    except UnknownPathway as exc:
        raise InvalidInput(str(exc), extra={"field": "definition_key"}) from exc
    open_enrolment = (
        Enrolment.objects.filter(patient=patient, definition_key=definition_key)
        .exclude(status=EnrolmentStatus.COMPLETED)
        .first()
    )
    if open_enrolment is not None:
        raise Conflict(
            f"{patient} is already on the {definition.title} pathway",
            extra={"current": current_state(open_enrolment)},
        )
    decision = start(definition, now)
    enrolment = Enrolment.objects.create(
        patient=patient,
        clinic_id=patient.clinic_id,
        definition_key=definition.key,
        definition_version=definition.version,
        configuration=configuration_to_json(decision.configuration),
        version=0,
        started_at=now,
        started_by=started_by,
    )
    store.write(enrolment, decision, event="started", event_key="start", user=started_by, now=now)
    return enrolment


# --- pause / resume -------------------------------------------------------------------------


def _log_lifecycle(
    enrolment: Enrolment, event: str, user: User | None, now: datetime, note: str
) -> PathwayStep:
    return store.write_step(
        enrolment,
        event=event,
        event_key=f"{event}:{now.isoformat()}",
        outcome="transitioned",
        user=user,
        explanation={"notes": [note] if note else [], "checks": [], "summary": note},
        now=now,
    )


@transaction.atomic(durable=True)
def enrolment_pause(
    *, enrolment_id: int, reason: str, user: User | None = None, at: datetime | None = None
) -> Enrolment:
    """Pause (hospital stay, holiday): timers stop counting until the pathway is resumed."""
    if not reason.strip():
        raise InvalidInput("Say why the pathway is paused.", extra={"field": "reason"})
    enrolment = store.lock_for_change(enrolment_id).enrolment
    if enrolment.status != EnrolmentStatus.ACTIVE:
        raise Conflict(
            f"Only an active pathway can be paused (it is {enrolment.status}).",
            extra={"current": current_state(enrolment)},
        )
    now = at or clock.now()
    enrolment.status = EnrolmentStatus.PAUSED
    enrolment.paused_at = now
    enrolment.pause_reason = reason.strip()[:200]
    enrolment.version += 1
    enrolment.save(update_fields=["status", "paused_at", "pause_reason", "version", "updated_at"])
    # Suspended timers leave the scheduler's index until the pathway resumes.
    PathwayTimer.objects.filter(enrolment=enrolment, status=TimerStatus.PENDING).update(
        status=TimerStatus.SUSPENDED
    )
    for hooks in _pause_hooks():
        hooks.suspend(enrolment=enrolment)
    _log_lifecycle(enrolment, "paused", user, now, f"Paused: {enrolment.pause_reason}")
    return enrolment


@transaction.atomic(durable=True)
def enrolment_resume(
    *, enrolment_id: int, user: User | None = None, at: datetime | None = None
) -> Enrolment:
    """Resume: every pending timer and every track's time in state move by the paused time."""
    enrolment = store.lock_for_change(enrolment_id).enrolment
    if enrolment.status != EnrolmentStatus.PAUSED or enrolment.paused_at is None:
        raise Conflict(
            "Only a paused pathway can be resumed.", extra={"current": current_state(enrolment)}
        )
    now = at or clock.now()
    paused_for = max(now - enrolment.paused_at, timedelta(0))
    PathwayTimer.objects.filter(enrolment=enrolment, status=TimerStatus.SUSPENDED).update(
        status=TimerStatus.PENDING,
        due_at=F("due_at") + paused_for,
        next_attempt_at=F("next_attempt_at") + paused_for,
    )
    for hooks in _pause_hooks():
        hooks.resume(enrolment=enrolment, paused_for=paused_for)
    enrolment.configuration = {
        track: {
            "state": item["state"],
            "entered_at": (datetime.fromisoformat(item["entered_at"]) + paused_for).isoformat(),
        }
        for track, item in enrolment.configuration.items()
    }
    enrolment.status = EnrolmentStatus.ACTIVE
    enrolment.paused_at = None
    enrolment.pause_reason = ""
    enrolment.version += 1
    enrolment.save(
        update_fields=[
            "status",
            "paused_at",
            "pause_reason",
            "configuration",
            "version",
            "updated_at",
        ]
    )
    _log_lifecycle(enrolment, "resumed", user, now, f"Resumed after {paused_for}; timers moved")
    return enrolment


# --- discharge --------------------------------------------------------------------------------

# The events by which a pathway discharges a patient, looked for in this order: the built-in
# pathway's `discharge_recorded`, then `discharge`. Every track leaves by the definition's own
# transitions on that event (stopping check-in series, raising what the definition raises).
DISCHARGE_EVENTS: tuple[str, ...] = ("discharge_recorded", "discharge")


def discharge_event_for(enrolment: Enrolment) -> str | None:
    definition = definition_get(enrolment.definition_key, enrolment.definition_version)
    return next((event for event in DISCHARGE_EVENTS if event in definition.events), None)


def enrolment_discharge(
    *,
    enrolment: Enrolment,
    reason: str,
    idempotency_key: str,
    user: User,
    expected_version: int | None = None,
) -> DispatchResult:
    """Discharge the patient from the pathway: its discharge event, sent by `user`, with the
    reason kept in the step's explanation. A paused pathway must be resumed first (Conflict)."""
    reason = reason.strip() if isinstance(reason, str) else ""
    if not reason:
        raise InvalidInput("Say why the patient is discharged.", extra={"field": "reason"})
    event = discharge_event_for(enrolment)
    if event is None:
        raise Conflict(
            "This pathway has no discharge event.", extra={"current": current_state(enrolment)}
        )
    return pathway_event_send(
        enrolment=enrolment,
        event=event,
        idempotency_key=idempotency_key,
        user=user,
        expected_version=expected_version,
        reason=reason,
        reason_label="Discharged",
    )
