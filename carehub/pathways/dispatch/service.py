"""`pathway_dispatch`: the one way an event changes an enrolment.

Dispatch, in one transaction, through the store (`store.py`):
  1. the idempotency key and the enrolment row lock, in one statement: an event key already
     processed returns the stored outcome, changing nothing (and locking nothing); otherwise the
     row is locked NOWAIT (a concurrent change answers `Conflict` at once, carrying the current
     state) and the optimistic version is checked;
  2. `workflows.decide` on a snapshot read inside the transaction, after the lock;
  3. the new configuration and version, one append-only `PathwayStep` with the explanation,
     the processed event key, timers, one outbox row per effect and the open tasks of the
     states left closed, in one statement, then proposals opened or closed;
  4. after commit, one Celery task carrying the outbox rows' ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction

from carehub.accounts.models import User
from carehub.core import clock
from carehub.core.exceptions import (
    Conflict,
    CriteriaNotMet,
    InvalidInput,
    NotFound,
    NotPermitted,
)
from carehub.pathways.dispatch.store import RowLocked, current_state, store
from carehub.pathways.models import (
    Enrolment,
    EnrolmentStatus,
    PathwayStep,
    ProcessedEvent,
    Proposal,
)
from carehub.pathways.registry import definition_get
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
    UnknownEvent,
    UnknownProposal,
    check_sender,
    decide,
)
from workflows.model import Actor, as_dict


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


@dataclass(frozen=True)
class DispatchRequest:
    """One event for one enrolment, as a door sends it (`pathway_dispatch`'s arguments)."""

    enrolment_id: int
    event: str
    idempotency_key: str
    user: User | None = None
    proposal_id: str | None = None
    reason: str = ""
    timer_key: str | None = None
    timer_due_at: datetime | None = None
    expected_version: int | None = None
    at: datetime | None = None
    note: str = ""  # kept in the step's explanation (e.g. the reason for a discharge)


def event_refusal(exc: EventNotPermitted) -> NotPermitted:
    """403 naming the roles the definition lets send the event (none: the pathway's own)."""
    return NotPermitted(str(exc) + ".", extra={"event": exc.event, "roles": list(exc.roles)})


def _actor(user: User | None) -> Actor | None:
    if user is None:
        return None
    return Actor(id=str(user.pk), role=user.role)


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
    request = DispatchRequest(
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
    )
    try:
        with transaction.atomic(durable=True):
            return _dispatch(request, lock_in_savepoint=False)
    except RowLocked:
        # This transaction owned nothing else, so it was rolled back as a whole (no savepoint
        # needed around the lock); answer from what is committed now.
        return _refused(request)


def dispatch_in_transaction(request: DispatchRequest) -> DispatchResult:
    """`pathway_dispatch` for a caller that owns the transaction (the scheduler's claim): the
    lock is tried in a savepoint, so the caller's transaction survives a refused lock."""
    try:
        return _dispatch(request, lock_in_savepoint=True)
    except RowLocked:
        return _refused(request)


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


def _refused(request: DispatchRequest) -> DispatchResult:
    """The enrolment's row lock was refused (NOWAIT): another change is in progress. A key that
    has been processed meanwhile replays; otherwise Conflict, carrying the current state."""
    processed = _processed(request.enrolment_id, request.idempotency_key)
    if processed is not None:
        return _replay(processed, request.event, request.enrolment_id)
    current = Enrolment.objects.get(pk=request.enrolment_id)
    raise Conflict(
        "Another change to this pathway is in progress.",
        extra={"current": current_state(current)},
    )


def _dispatch(request: DispatchRequest, *, lock_in_savepoint: bool) -> DispatchResult:
    """Three statements when the event applies: lock (unless the key was processed), snapshot,
    write (`store`)."""
    enrolment_id, event, key = request.enrolment_id, request.event, request.idempotency_key
    user, reason = request.user, request.reason
    if not key or len(key) > 200:
        raise InvalidInput("An idempotency key of 1 to 200 characters is required.")
    locked = store.lock(enrolment_id, key, savepoint=lock_in_savepoint)
    if locked is None:  # the key was processed already, or there is no such enrolment
        processed = _processed(enrolment_id, key)
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

    expected_version = request.expected_version
    if expected_version is not None and enrolment.version != expected_version:
        raise Conflict(
            f"The pathway changed (version {enrolment.version}, expected {expected_version}).",
            extra={"current": current_state(enrolment)},
        )
    if enrolment.status == EnrolmentStatus.COMPLETED:
        raise Conflict("This pathway has ended.", extra={"current": current_state(enrolment)})
    if enrolment.status == EnrolmentStatus.PAUSED:
        raise Conflict(
            "This pathway is paused; resume it first.",
            extra={"current": current_state(enrolment)},
        )

    now = request.at or clock.now()
    snapshot = store.snapshot(locked, now=now)
    engine_event = Event(
        name=event,
        key=key,
        actor=_actor(user),
        proposal_id=request.proposal_id,
        reason=reason,
        timer_key=request.timer_key,
        timer_due_at=request.timer_due_at,
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
        raise Conflict(str(exc), extra={"current": current_state(enrolment)}) from exc
    except CriteriaNoLongerMet as exc:
        raise CriteriaNotMet(str(exc), extra={"explanation": as_dict(exc.check)}) from exc

    step = store.write(
        enrolment,
        decision,
        event=event,
        event_key=key,
        user=user,
        now=now,
        note=request.note,
        record_key=True,
    )
    return DispatchResult(
        enrolment=enrolment, step=step, outcome=decision.outcome.value, decision=decision
    )


def _proposal_decide(
    proposal: Proposal, event: str, user: User, idempotency_key: str, reason: str
) -> DispatchResult:
    return pathway_dispatch(
        enrolment_id=proposal.enrolment_id,
        event=event,
        idempotency_key=idempotency_key,
        user=user,
        proposal_id=proposal.proposal_id,
        reason=reason,
    )


def proposal_approve(
    *, proposal: Proposal, user: User, idempotency_key: str, note: str = ""
) -> DispatchResult:
    """A clinician approves the escalation the proposal offers (the definition names who may)."""
    return _proposal_decide(proposal, APPROVE, user, idempotency_key, note)


def proposal_reject(
    *, proposal: Proposal, user: User, idempotency_key: str, reason: str
) -> DispatchResult:
    """A clinician rejects the escalation, saying why."""
    return _proposal_decide(proposal, REJECT, user, idempotency_key, reason)
