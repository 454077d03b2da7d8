"""The store behind every change to an enrolment (ADR 0030): one lock, one snapshot, one writer.

`store` (a `PathwayStore`) is what the dispatch, the lifecycle (start, pause, resume) and the
pathway migration use to

- `lock` an enrolment: its row FOR NO KEY UPDATE NOWAIT, one statement (`sql.lock_row`), with
  the event key's check for a dispatch; `lock_for_change` for the writes that are not events
  (NotFound, or Conflict while another change holds the row);
- read its `snapshot`: the engine's `Snapshot` (one statement, `sql.snapshot_rows`);
- `write` a `Decision` of the engine: the enrolment, the step, the processed key, timers, outbox
  rows, the closed tasks and the change feed in one statement (`sql.write_rows`), then the
  proposals opened or closed; effects are published after commit;
- `write_step`: the step (and outbox rows) of a change that is not the engine's decision (pause,
  resume, a migration and its rollback), written with the same columns.

It takes and returns engine values (`workflows`) and model rows, and encodes them itself
(`codec.py` for JSON; the SQL module encodes its parameters): no caller encodes anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import connection, transaction

from carehub.accounts.models import User
from carehub.core import clock
from carehub.core.exceptions import Conflict, NotFound
from carehub.integrations.models import ChangeType
from carehub.integrations.services import change_record
from carehub.pathways.dispatch import sql
from carehub.pathways.dispatch.codec import (
    configuration_to_json,
    decision_explanation_json,
    proposal_to_model,
    snapshot_from_rows,
)
from carehub.pathways.dispatch.sql import LockedEnrolment, RowLocked, TimerRow
from carehub.pathways.models import (
    EffectStatus,
    Enrolment,
    EnrolmentStatus,
    OutboxEffect,
    PathwayStep,
    Proposal,
    ProposalStatus,
    TimerStatus,
)
from carehub.pathways.outbox import publish_after_commit
from carehub.pathways.registry import definition_get
from workflows import Decision, PathwayDefinition, Snapshot
from workflows.model import CancelTimer, StartTimer, TimerOp, as_dict

__all__ = [
    "NO_KEY",
    "LockedEnrolment",
    "PathwayStore",
    "RowLocked",
    "current_state",
    "store",
    "tasks_no_longer_needed",
    "timer_rows",
]

# The key of a lock that is not an event's: never recorded as processed (a dispatch's key has
# 1 to 200 characters), so the lock statement always locks the row.
NO_KEY = ""

_STEP_FIELDS: tuple[str, ...] = tuple(f.attname for f in PathwayStep._meta.concrete_fields)


def current_state(enrolment: Enrolment) -> dict[str, object]:
    """What a Conflict carries: the enrolment's status, version and states."""
    return {
        "enrolment": str(enrolment.public_id),
        "status": enrolment.status,
        "version": enrolment.version,
        "states": {track: item["state"] for track, item in enrolment.configuration.items()},
    }


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
                (
                    timer.key,
                    timer.track,
                    timer.state,
                    timer.event,
                    timer.due_at,
                    TimerStatus.PENDING.value,
                    None,
                )
            )
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


class PathwayStore:
    """Enrolments in PostgreSQL, for the engine: lock, snapshot, write."""

    def lock(
        self, enrolment_id: int, idempotency_key: str = NO_KEY, *, savepoint: bool = False
    ) -> LockedEnrolment | None:
        """The enrolment row, locked NOWAIT (`RowLocked` when another transaction holds it),
        with the patient's time zone. None when there is no such enrolment, or when
        `idempotency_key` was already processed (the caller tells which). `savepoint`: the
        statement runs in a savepoint, so the caller's transaction survives a refused lock;
        without one, a refused lock leaves the transaction to be rolled back."""
        if savepoint:
            with transaction.atomic():
                return sql.lock_row(enrolment_id, idempotency_key)
        return sql.lock_row(enrolment_id, idempotency_key)

    def lock_for_change(self, enrolment_id: int, *, savepoint: bool = True) -> LockedEnrolment:
        """`lock` for a change that is not an event (pause, resume, migration): NotFound when
        there is no such enrolment, Conflict while another change holds it (carrying the current
        state when the lock was tried in a savepoint, so the transaction can still read it)."""
        try:
            locked = self.lock(enrolment_id, savepoint=savepoint)
        except RowLocked as exc:
            extra: dict[str, object] | None = None
            if savepoint:
                extra = {"current": current_state(Enrolment.objects.get(pk=enrolment_id))}
            raise Conflict("Another change to this pathway is in progress.", extra=extra) from exc
        if locked is None:
            raise NotFound("No such pathway enrolment.")
        return locked

    def snapshot(self, locked: LockedEnrolment, *, now: datetime) -> Snapshot:
        """Everything `decide` may read about the locked enrolment, in one statement."""
        return snapshot_from_rows(
            locked.enrolment,
            sql.snapshot_rows(locked.enrolment),
            time_zone=locked.time_zone,
            now=now,
        )

    def write(
        self,
        enrolment: Enrolment,
        decision: Decision,
        *,
        event: str,
        event_key: str,
        user: User | None,
        now: datetime,
        note: str = "",
        record_key: bool = False,
    ) -> PathwayStep:
        """Write a decision: enrolment, step, timers, outbox rows and the open tasks of states
        left (one statement, `sql.write_rows`), then proposals; inside a transaction that holds
        the enrolment's row lock, or created the row. `record_key`: the event key is also
        recorded as processed (a dispatch; not an enrolment's start). A `note` (e.g. the reason
        for a discharge) is kept in the step's explanation. The outbox rows are published after
        commit."""
        wall = clock.now()
        changed = decision.changed or bool(decision.timer_ops)
        configuration = configuration_to_json(decision.configuration)
        if changed:
            enrolment.configuration = configuration
            # The row is locked by this transaction (or was created by it): nobody else can
            # have moved its version since it was read, so the next one is known without
            # reading back.
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
        step_id, effect_ids = sql.write_rows(
            sql.DecisionRows(
                enrolment=enrolment,
                enrolment_changed=changed,
                configuration=configuration,
                event=event,
                event_key=event_key,
                outcome=decision.outcome.value,
                actor_id=user.pk if user else None,
                actor_role=user.role if user else "",
                transitions=transitions,
                explanation=explanation,
                effects=effects,
                timers_closed=timers_closed,
                timers_started=timers_started,
                processed_key=event_key if record_key else None,
                at=now,
                wall=wall,
                tasks_closed=tasks_closed,
                tasks_ended_reason=tasks_ended_reason,
                clinic_id=enrolment.clinic_id,
                patient_id=enrolment.patient_id,
                transitioned=transitioned,
            )
        )
        written = {
            "id": step_id,
            "enrolment_id": enrolment.pk,
            "sequence": enrolment.version,
            "event": event,
            "event_key": event_key,
            "outcome": decision.outcome.value,
            "actor_id": user.pk if user else None,
            "actor_role": user.role if user else "",
            "transitions": transitions,
            "explanation": explanation,
            "configuration": configuration,
            "effects": effects,
            "at": now,
        }
        step = PathwayStep.from_db(
            connection.alias, _STEP_FIELDS, tuple(written[name] for name in _STEP_FIELDS)
        )
        step.enrolment = enrolment
        step.actor = user

        for proposal in decision.proposals_opened:
            opened = proposal_to_model(proposal, enrolment)
            opened.save(force_insert=True)
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
                row.save(
                    update_fields=["status", "decided_at", "decided_by", "reason", "updated_at"]
                )
                _proposal_change(ChangeType.PROPOSAL_DECIDED, row, now)

        publish_after_commit(effect_ids)
        return step

    def write_step(
        self,
        enrolment: Enrolment,
        *,
        event: str,
        event_key: str,
        outcome: str,
        user: User | None,
        explanation: dict[str, Any],
        now: datetime,
        effects: list[dict[str, Any]] | None = None,
        outbox_key: str | None = None,
        wall: datetime | None = None,
    ) -> PathwayStep:
        """The step of a change that is not the engine's decision (pause, resume, migration),
        after the caller saved the enrolment (its version and configuration are the step's).
        `outbox_key`: the effects also leave through the outbox, as a dispatch's do (keys
        `<enrolment>:<outbox_key>:<step id>:<n>`, available at `wall`, the clock's time unless
        given), published after commit."""
        step = PathwayStep.objects.create(
            enrolment=enrolment,
            sequence=enrolment.version,
            event=event,
            event_key=event_key,
            outcome=outcome,
            actor=user,
            actor_role=user.role if user else "",
            explanation=explanation,
            configuration=enrolment.configuration,
            effects=effects or [],
            at=now,
        )
        if outbox_key is not None:
            available_at = wall or clock.now()
            rows = OutboxEffect.objects.bulk_create(
                OutboxEffect(
                    enrolment=enrolment,
                    step=step,
                    kind=payload["kind"],
                    payload=payload,
                    idempotency_key=f"{enrolment.public_id}:{outbox_key}:{step.pk}:{n}",
                    decided_at=now,
                    status=EffectStatus.PENDING,
                    available_at=available_at,
                )
                for n, payload in enumerate(effects or [])
            )
            publish_after_commit([row.pk for row in rows])
        return step


store = PathwayStore()
