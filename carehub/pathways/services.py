"""Writes to pathway instances. `pathway_dispatch` is the one way an enrolment changes state.

Dispatch, in one transaction:
  1. the idempotency key and the enrolment row lock, in one statement: an event key already
     processed returns the stored outcome, changing nothing (and locking nothing); otherwise the
     row is locked NOWAIT (a concurrent change answers `Conflict` at once, carrying the current
     state) and the optimistic version is checked;
  2. `workflows.decide` on a snapshot read inside the transaction, after the lock;
  3. the new configuration and version, one append-only `PathwayStep` with the explanation,
     the processed event key, timers, one outbox row per effect and the open tasks of the
     states left closed, in one statement (`dispatch_sql`), then proposals opened or closed;
  4. after commit, one Celery task carrying the outbox rows' ids.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import OperationalError, transaction
from django.db.models import F

from carehub.accounts.models import User
from carehub.checkins.services import checkins_resume, checkins_suspend
from carehub.core import clock
from carehub.core.exceptions import (
    Conflict,
    CriteriaNotMet,
    InvalidInput,
    NotFound,
    NotPermitted,
)
from carehub.integrations.models import ChangeType
from carehub.integrations.services import change_record
from carehub.pathways.dispatch_sql import (
    DecisionRows,
    RowLocked,
    decision_write,
    dumps,
    enrolment_lock,
    snapshot_read,
)
from carehub.pathways.models import (
    Enrolment,
    EnrolmentStatus,
    PathwayStep,
    PathwayTimer,
    ProcessedEvent,
    Proposal,
    ProposalStatus,
    TimerStatus,
)
from carehub.pathways.outbox import publish_after_commit
from carehub.pathways.registry import definition_get
from carehub.pathways.store import (
    configuration_to_json,
    decision_explanation_json,
    snapshot_from_rows,
)
from carehub.patients.models import Patient
from workflows import (
    APPROVE,
    REJECT,
    ApprovalNotPermitted,
    CriteriaNoLongerMet,
    Decision,
    Event,
    EventNotPermitted,
    InvalidEvent,
    Outcome,
    PathwayDefinition,
    UnknownEvent,
    UnknownPathway,
    UnknownProposal,
    check_sender,
    decide,
    start,
)
from workflows.model import Actor, CancelTimer, StartTimer, TimerOp, as_dict

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DispatchResult:
    enrolment: Enrolment
    step: PathwayStep
    outcome: str
    replayed: bool = False
    decision: Decision | None = None  # None when the event key had already been processed

    @property
    def changed(self) -> bool:
        return self.outcome != Outcome.NO_CHANGE.value


def event_refusal(exc: EventNotPermitted) -> NotPermitted:
    """403 naming the roles the definition lets send the event (none: the pathway's own)."""
    return NotPermitted(str(exc) + ".", extra={"event": exc.event, "roles": list(exc.roles)})


def _actor(user: User | None) -> Actor | None:
    if user is None:
        return None
    return Actor(id=str(user.pk), role=user.role)


def _current_state(enrolment: Enrolment) -> dict[str, object]:
    return {
        "enrolment": str(enrolment.public_id),
        "status": enrolment.status,
        "version": enrolment.version,
        "states": {track: item["state"] for track, item in enrolment.configuration.items()},
    }


def _lock(enrolment_id: int) -> Enrolment:
    """Lock the enrolment row without waiting: a change in progress elsewhere is a conflict."""
    try:
        with transaction.atomic():  # a savepoint, so the transaction survives a failed lock
            return (
                Enrolment.objects.select_for_update(nowait=True, no_key=True, of=("self",))
                .select_related("patient")
                .get(pk=enrolment_id)
            )
    except Enrolment.DoesNotExist as exc:
        raise NotFound("No such pathway enrolment.") from exc
    except OperationalError as exc:  # lock not available: someone else is changing it now
        current = Enrolment.objects.get(pk=enrolment_id)
        raise Conflict(
            "Another change to this pathway is in progress.",
            extra={"current": _current_state(current)},
        ) from exc


TimerRow = tuple[str, str, str, str, datetime, str, datetime | None]
# (key, track, state, event, due_at, status, closed_at) of a timer to insert


def timer_rows(
    timer_ops: Sequence[TimerOp], now: datetime
) -> tuple[list[tuple[str, str]], list[TimerRow]]:
    """A decision's timer operations as two sets of rows: (key, status) of the stored pending
    timers to close, and the timers to insert. Applied in order, each operation closes what is
    pending under its key (StartTimer: cancelled; CancelTimer: fired or cancelled) and StartTimer
    then adds a pending one; so the first operation on a key closes the stored timer, and a timer
    started here and closed by a later operation is inserted already closed."""
    closed: dict[str, str] = {}
    started: list[TimerRow] = []
    pending_new: dict[str, int] = {}
    for op in timer_ops:
        if isinstance(op, StartTimer):
            key, status = op.timer.key, TimerStatus.CANCELLED.value
        elif isinstance(op, CancelTimer):
            key = op.key
            status = (TimerStatus.FIRED if op.reason == "fired" else TimerStatus.CANCELLED).value
        else:  # pragma: no cover - the engine has no other timer operation
            raise TypeError(f"unknown timer operation {op!r}")
        closed.setdefault(key, status)
        if key in pending_new:
            index = pending_new.pop(key)
            k, track, state, event, due_at, _, _ = started[index]
            started[index] = (k, track, state, event, due_at, status, now)
        if isinstance(op, StartTimer):
            pending_new[key] = len(started)
            timer = op.timer
            started.append(
                (timer.key, timer.track, timer.state, timer.event, timer.due_at,
                 TimerStatus.PENDING.value, None)
            )  # fmt: skip
    return list(closed.items()), started


def tasks_no_longer_needed(
    definition: PathwayDefinition, decision: Decision
) -> tuple[list[tuple[str, str, str]], str | None]:
    """The open tasks a decision closes: (track, state, reason) of each state left that can
    have tasks (`PathwayDefinition.task_states`; re-entering a state leaves it too, as it
    restarts the state's timers), and, when the pathway ends, the reason for every other open
    task a pathway effect created (None otherwise)."""
    closed: dict[tuple[str, str], str] = {}
    for taken in decision.transitions:
        if taken.internal or taken.source not in definition.task_states[taken.track]:
            continue
        track = definition.tracks[taken.track]
        state_title = track.states[taken.source].title or taken.source
        verb = "re-entered" if taken.target == taken.source else "left"
        closed.setdefault(
            (taken.track, taken.source),
            f"No longer needed: {track.title or taken.track} {verb} '{state_title}' "
            f"({taken.event})"[:300],
        )
    ended = None
    if decision.completed:
        event = decision.event.name if decision.event else "started"
        ended = f"No longer needed: the pathway ended ({event})"[:300]
    return [(track, state, reason) for (track, state), reason in closed.items()], ended


def _proposal_change(type: ChangeType, proposal: Proposal, at: datetime) -> None:
    enrolment = proposal.enrolment
    change_record(
        clinic_id=enrolment.clinic_id,
        patient_id=enrolment.patient_id,
        enrolment_id=enrolment.pk,
        type=type,
        subject_id=proposal.pk,
        data={
            "track": proposal.track,
            "from": proposal.source,
            "to": proposal.target,
            "status": proposal.status,
        },
        at=at,
    )


def _persist(
    *,
    enrolment: Enrolment,
    decision: Decision,
    event_name: str,
    event_key: str,
    user: User | None,
    now: datetime,
    note: str = "",
    record_key: bool = False,
) -> PathwayStep:
    """Write a decision: enrolment, step, timers, outbox rows and the open tasks of states left
    (one statement, see `dispatch_sql.decision_write`), then proposals; inside a transaction
    that holds the enrolment's row lock, or created the row. `record_key`: the event key is
    also recorded as processed (a dispatch; not an enrolment's start).
    A `note` (e.g. the reason for a discharge) is kept in the step's explanation."""
    wall = clock.now()
    changed = decision.changed or bool(decision.timer_ops)
    configuration = configuration_to_json(decision.configuration)
    configuration_json = dumps(configuration)
    if changed:
        enrolment.configuration = configuration
        # The row is locked by this transaction (or was created by it): nobody else can have
        # moved its version since it was read, so the next one is known without reading back.
        enrolment.version = enrolment.version + 1
        if decision.completed:
            enrolment.status = EnrolmentStatus.COMPLETED
            enrolment.completed_at = now
        enrolment.updated_at = wall

    effects = [effect.as_dict() for effect in decision.effects]
    explanation = decision_explanation_json(decision)
    if note:
        explanation["notes"] = [note, *explanation.get("notes", [])]
        explanation["summary"] = "; ".join(s for s in (note, explanation.get("summary")) if s)
    transitions = [as_dict(t) for t in decision.transitions]
    step = PathwayStep(
        enrolment=enrolment,
        sequence=enrolment.version,
        event=event_name,
        event_key=event_key,
        outcome=decision.outcome.value,
        actor=user,
        actor_role=user.role if user else "",
        transitions=transitions,
        explanation=explanation,
        configuration=configuration,
        effects=effects,
        at=now,
    )
    timers_closed, timers_started = timer_rows(decision.timer_ops, now)
    # The change feed: one `enrolment.transitioned` per state change (codes only).
    transitioned = [
        {
            "track": t.track,
            "from": t.source,
            "to": t.target,
            "event": t.event,
            "version": enrolment.version,
            "proposal_id": t.proposal_id,
        }
        for t in decision.transitions
        if not t.internal
    ]
    tasks_closed, tasks_ended_reason = tasks_no_longer_needed(
        definition_get(enrolment.definition_key, enrolment.definition_version), decision
    )
    effect_ids = decision_write(
        DecisionRows(
            enrolment=enrolment,
            enrolment_changed=changed,
            configuration_json=configuration_json,
            step=step,
            transitions_json=dumps(transitions),
            explanation_json=dumps(explanation),
            effects_json=dumps(effects),
            effect_count=len(effects),
            timers_closed=timers_closed,
            timers_started=timers_started,
            processed_key=event_key if record_key else None,
            at=now,
            wall=wall,
            tasks_closed=tasks_closed,
            tasks_ended_reason=tasks_ended_reason,
            clinic_id=enrolment.clinic_id,
            patient_id=enrolment.patient_id,
            transitioned_json=dumps(transitioned),
            transition_count=len(transitioned),
        )
    )

    for proposal in decision.proposals_opened:
        opened = Proposal.objects.create(
            enrolment=enrolment,
            proposal_id=proposal.id,
            track=proposal.track,
            transition_id=proposal.transition_id,
            source=proposal.source,
            target=proposal.target,
            event=proposal.event,
            roles=list(proposal.roles),
            summary=proposal.summary[:300],
            evidence=as_dict(proposal.evidence) if proposal.evidence else {},
            proposed_at=proposal.proposed_at,
        )
        _proposal_change(ChangeType.PROPOSAL_OPENED, opened, now)
    for closed in decision.proposals_closed:
        pending = Proposal.objects.select_for_update().filter(
            enrolment=enrolment, proposal_id=closed.proposal_id, status=ProposalStatus.PENDING
        )
        for row in pending:
            row.status = closed.resolution
            row.decided_at = now
            row.decided_by = user if closed.resolution in ("approved", "rejected") else None
            row.reason = closed.reason
            row.save(update_fields=["status", "decided_at", "decided_by", "reason", "updated_at"])
            _proposal_change(ChangeType.PROPOSAL_DECIDED, row, now)

    publish_after_commit(effect_ids)
    return step


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
            extra={"current": _current_state(open_enrolment)},
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
    _persist(
        enrolment=enrolment,
        decision=decision,
        event_name="started",
        event_key="start",
        user=started_by,
        now=now,
    )
    return enrolment


def pathway_dispatch(
    *,
    enrolment_id: int,
    event: str,
    idempotency_key: str,
    user: User | None = None,
    proposal_id: str | None = None,
    reason: str = "",
    timer_key: str | None = None,
    timer_due_at: datetime | None = None,
    expected_version: int | None = None,
    at: datetime | None = None,
    note: str = "",
) -> DispatchResult:
    """Apply one event to one enrolment, exactly once per idempotency key."""
    try:
        with transaction.atomic(durable=True):
            return _dispatch(
                enrolment_id=enrolment_id,
                event=event,
                idempotency_key=idempotency_key,
                user=user,
                proposal_id=proposal_id,
                reason=reason,
                timer_key=timer_key,
                timer_due_at=timer_due_at,
                expected_version=expected_version,
                at=at,
                note=note,
                lock_in_savepoint=False,
            )
    except RowLocked:
        # This transaction owned nothing else, so it was rolled back as a whole (no savepoint
        # needed around the lock); answer from what is committed now.
        return _refused(enrolment_id=enrolment_id, event=event, idempotency_key=idempotency_key)


def dispatch_in_transaction(
    *,
    enrolment_id: int,
    event: str,
    idempotency_key: str,
    user: User | None,
    proposal_id: str | None,
    reason: str,
    timer_key: str | None,
    expected_version: int | None,
    at: datetime | None,
    timer_due_at: datetime | None = None,
    note: str = "",
) -> DispatchResult:
    """`pathway_dispatch` for a caller that owns the transaction (the scheduler's claim): the
    lock is tried in a savepoint, so the caller's transaction survives a refused lock."""
    try:
        return _dispatch(
            enrolment_id=enrolment_id,
            event=event,
            idempotency_key=idempotency_key,
            user=user,
            proposal_id=proposal_id,
            reason=reason,
            timer_key=timer_key,
            timer_due_at=timer_due_at,
            expected_version=expected_version,
            at=at,
            note=note,
            lock_in_savepoint=True,
        )
    except RowLocked:
        return _refused(enrolment_id=enrolment_id, event=event, idempotency_key=idempotency_key)


def _replay(processed: ProcessedEvent, event: str, enrolment_id: int) -> DispatchResult:
    if processed.event != event:
        raise Conflict(
            f"The key {processed.idempotency_key!r} was already used for '{processed.event}'.",
        )
    return DispatchResult(
        enrolment=Enrolment.objects.get(pk=enrolment_id),
        step=processed.step,
        outcome=processed.outcome,
        replayed=True,
    )


def _processed(enrolment_id: int, idempotency_key: str) -> ProcessedEvent | None:
    return (
        ProcessedEvent.objects.select_related("step")
        .filter(enrolment_id=enrolment_id, idempotency_key=idempotency_key)
        .first()
    )


def _refused(*, enrolment_id: int, event: str, idempotency_key: str) -> DispatchResult:
    """The enrolment's row lock was refused (NOWAIT): another change is in progress. A key that
    has been processed meanwhile replays; otherwise Conflict, carrying the current state."""
    processed = _processed(enrolment_id, idempotency_key)
    if processed is not None:
        return _replay(processed, event, enrolment_id)
    current = Enrolment.objects.get(pk=enrolment_id)
    raise Conflict(
        "Another change to this pathway is in progress.",
        extra={"current": _current_state(current)},
    )


def _dispatch(
    *,
    enrolment_id: int,
    event: str,
    idempotency_key: str,
    user: User | None,
    proposal_id: str | None,
    reason: str,
    timer_key: str | None,
    expected_version: int | None,
    at: datetime | None,
    timer_due_at: datetime | None,
    note: str,
    lock_in_savepoint: bool,
) -> DispatchResult:
    """Three statements when the event applies: lock (unless the key was processed), snapshot,
    write (`dispatch_sql`)."""
    if not idempotency_key or len(idempotency_key) > 200:
        raise InvalidInput("An idempotency key of 1 to 200 characters is required.")
    if lock_in_savepoint:
        with transaction.atomic():  # a savepoint, so the transaction survives a refused lock
            locked = enrolment_lock(enrolment_id, idempotency_key)
    else:
        locked = enrolment_lock(enrolment_id, idempotency_key)
    if locked is None:  # the key was processed already, or there is no such enrolment
        processed = _processed(enrolment_id, idempotency_key)
        if processed is None:
            raise NotFound("No such pathway enrolment.")
        return _replay(processed, event, enrolment_id)
    enrolment = locked.enrolment
    definition = definition_get(enrolment.definition_key, enrolment.definition_version)
    if user is not None and event not in (APPROVE, REJECT) and event in definition.events:
        # Who may send which event is the definition's: one check for every door (API, pages,
        # imports), before anything else is said about the enrolment.
        try:
            check_sender(definition, event, user.role, reason=reason)
        except EventNotPermitted as exc:
            raise event_refusal(exc) from exc
        except InvalidEvent as exc:
            raise InvalidInput(str(exc), extra={"field": "reason"}) from exc

    if expected_version is not None and enrolment.version != expected_version:
        raise Conflict(
            f"The pathway changed (version {enrolment.version}, expected {expected_version}).",
            extra={"current": _current_state(enrolment)},
        )
    if enrolment.status == EnrolmentStatus.COMPLETED:
        raise Conflict("This pathway has ended.", extra={"current": _current_state(enrolment)})
    if enrolment.status == EnrolmentStatus.PAUSED:
        raise Conflict(
            "This pathway is paused; resume it first.",
            extra={"current": _current_state(enrolment)},
        )

    now = at or clock.now()
    snapshot = snapshot_from_rows(
        enrolment, snapshot_read(enrolment), time_zone=locked.time_zone, now=now
    )
    engine_event = Event(
        name=event,
        key=idempotency_key,
        actor=_actor(user),
        proposal_id=proposal_id,
        reason=reason,
        timer_key=timer_key,
        timer_due_at=timer_due_at,
    )
    try:
        decision = decide(definition, snapshot, engine_event, now)
    except UnknownEvent as exc:
        raise InvalidInput(str(exc), extra={"field": "event"}) from exc
    except InvalidEvent as exc:
        raise InvalidInput(str(exc), extra={"field": "reason"}) from exc
    except ApprovalNotPermitted as exc:
        raise NotPermitted(str(exc)) from exc
    except EventNotPermitted as exc:  # pragma: no cover - checked above, before the snapshot
        raise event_refusal(exc) from exc
    except UnknownProposal as exc:
        raise Conflict(str(exc), extra={"current": _current_state(enrolment)}) from exc
    except CriteriaNoLongerMet as exc:
        raise CriteriaNotMet(str(exc), extra={"explanation": as_dict(exc.check)}) from exc

    step = _persist(
        enrolment=enrolment,
        decision=decision,
        event_name=event,
        event_key=idempotency_key,
        user=user,
        now=now,
        note=note,
        record_key=True,
    )
    return DispatchResult(
        enrolment=enrolment, step=step, outcome=decision.outcome.value, decision=decision
    )


def proposal_approve(
    *, proposal: Proposal, user: User, idempotency_key: str, note: str = ""
) -> DispatchResult:
    return pathway_dispatch(
        enrolment_id=proposal.enrolment_id,
        event="approve",
        idempotency_key=idempotency_key,
        user=user,
        proposal_id=proposal.proposal_id,
        reason=note,
    )


def proposal_reject(
    *, proposal: Proposal, user: User, idempotency_key: str, reason: str
) -> DispatchResult:
    return pathway_dispatch(
        enrolment_id=proposal.enrolment_id,
        event="reject",
        idempotency_key=idempotency_key,
        user=user,
        proposal_id=proposal.proposal_id,
        reason=reason,
    )


# --- pause / resume -------------------------------------------------------------------------


def _log_lifecycle(
    enrolment: Enrolment, event: str, user: User | None, now: datetime, note: str
) -> PathwayStep:
    return PathwayStep.objects.create(
        enrolment=enrolment,
        sequence=enrolment.version,
        event=event,
        event_key=f"{event}:{now.isoformat()}",
        outcome="transitioned",
        actor=user,
        actor_role=user.role if user else "",
        explanation={"notes": [note] if note else [], "checks": [], "summary": note},
        configuration=enrolment.configuration,
        at=now,
    )


@transaction.atomic(durable=True)
def enrolment_pause(
    *, enrolment_id: int, reason: str, user: User | None = None, at: datetime | None = None
) -> Enrolment:
    """Pause (hospital stay, holiday): timers stop counting until the pathway is resumed."""
    if not reason.strip():
        raise InvalidInput("Say why the pathway is paused.", extra={"field": "reason"})
    enrolment = _lock(enrolment_id)
    if enrolment.status != EnrolmentStatus.ACTIVE:
        raise Conflict(
            f"Only an active pathway can be paused (it is {enrolment.status}).",
            extra={"current": _current_state(enrolment)},
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
    checkins_suspend(enrolment=enrolment)
    _log_lifecycle(enrolment, "paused", user, now, f"Paused: {enrolment.pause_reason}")
    return enrolment


@transaction.atomic(durable=True)
def enrolment_resume(
    *, enrolment_id: int, user: User | None = None, at: datetime | None = None
) -> Enrolment:
    """Resume: every pending timer and every track's time in state move by the paused time."""
    enrolment = _lock(enrolment_id)
    if enrolment.status != EnrolmentStatus.PAUSED or enrolment.paused_at is None:
        raise Conflict(
            "Only a paused pathway can be resumed.", extra={"current": _current_state(enrolment)}
        )
    now = at or clock.now()
    paused_for = max(now - enrolment.paused_at, timedelta(0))
    PathwayTimer.objects.filter(enrolment=enrolment, status=TimerStatus.SUSPENDED).update(
        status=TimerStatus.PENDING,
        due_at=F("due_at") + paused_for,
        next_attempt_at=F("next_attempt_at") + paused_for,
    )
    checkins_resume(enrolment=enrolment, paused_for=paused_for)
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
            "status", "paused_at", "pause_reason", "configuration", "version", "updated_at"
        ]
    )  # fmt: skip
    _log_lifecycle(enrolment, "resumed", user, now, f"Resumed after {paused_for}; timers moved")
    return enrolment


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
) -> DispatchResult:
    """A person sends an event to a pathway. Undeclared events and `approve`/`reject` are
    invalid input; the definition decides who may send the rest (403 naming the roles that may,
    none for the pathway's own timer and internal events). An event that `requires_reason`
    (a discharge) needs `reason`, kept in the step's explanation."""
    definition = definition_get(enrolment.definition_key, enrolment.definition_version)
    if not event_is_declared(definition, event):
        raise InvalidInput(
            f"'{event}' is not an event that can be sent to this pathway.",
            extra={"field": "event"},
        )
    reason = reason.strip() if isinstance(reason, str) else ""
    return pathway_dispatch(
        enrolment_id=enrolment.pk,
        event=event,
        idempotency_key=idempotency_key,
        user=user,
        expected_version=expected_version,
        reason=reason,
        note=f"Reason: {reason[:500]}" if reason else "",
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
            "This pathway has no discharge event.", extra={"current": _current_state(enrolment)}
        )
    return pathway_dispatch(
        enrolment_id=enrolment.pk,
        event=event,
        idempotency_key=idempotency_key,
        user=user,
        expected_version=expected_version,
        reason=reason[:500],
        note=f"Discharged: {reason[:500]}",
    )
