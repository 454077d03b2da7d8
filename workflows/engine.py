"""`start` and `decide`: the pure heart of carehub's pathways.

Both are functions of their arguments only. They read a definition and a snapshot and return a
`Decision`: the next configuration (one active state per track), effects as values, timer
operations, proposals opened or closed, and an explanation of every guard evaluated. Nothing is
written anywhere; the caller persists the decision (carehub.pathways) or applies it in memory
(workflows.memory).

Semantics, in short (README, "Writing a pathway", has the long form):

* An event is offered to every track. In each track the first transition from the current state
  on that event whose guard holds is selected; all tracks select on the configuration *before*
  the event, then the selected transitions run (exit effects, transition effects, entry effects).
* A selected transition with an `approval` does not move the track: it opens a proposal (once;
  an identical pending one is not opened twice). Only `approve` from an actor whose role the gate
  names performs it; `reject` closes it with a reason. Leaving the proposal's source state
  withdraws it.
* Entering a state starts its timers; leaving it cancels them. A timer firing is the event the
  timer names, carrying the timer key; a stale timer (no longer active) changes nothing.
* `send` effects raise further events inside the same decision, after the current one.
* A track in a final state ignores events; the instance is complete when every track is final.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from workflows.definition import (
    APPROVE,
    REJECT,
    EffectSpec,
    PathwayDefinition,
    TransitionSpec,
    transition_id,
)
from workflows.errors import (
    ApprovalNotPermitted,
    CriteriaNoLongerMet,
    EventNotPermitted,
    InvalidEvent,
    UnknownEvent,
    UnknownProposal,
    WorkflowError,
)
from workflows.expressions import Expression, compile_checked
from workflows.model import (
    ActiveTimer,
    CancelTimer,
    CreateTask,
    Decision,
    Effect,
    Event,
    Explanation,
    FactReading,
    GuardCheck,
    Notify,
    Outcome,
    Proposal,
    ProposalClosed,
    ProposeEscalation,
    RaiseFlag,
    Snapshot,
    StartCheckins,
    StartTimer,
    StopCheckins,
    TimerOp,
    TrackState,
    TransitionTaken,
)

MAX_INTERNAL_EVENTS = 32


@lru_cache(maxsize=4096)
def _expression(source: str) -> Expression:
    return compile_checked(source)


def start(definition: PathwayDefinition, now: datetime) -> Decision:
    """The decision that creates an instance: every track enters its initial state."""
    run = _Run(definition, Snapshot(configuration={}), now)
    for track_name, track in definition.tracks.items():
        run.enter(track_name, track.initial)
    run.drain_sends()
    return run.decision(None, Outcome.STARTED)


def decide(
    definition: PathwayDefinition, snapshot: Snapshot, event: Event, now: datetime
) -> Decision:
    """What `event` does to the instance in `snapshot` at `now`. Pure: no I/O, no clock."""
    run = _Run(definition, snapshot, now, event_key=event.key)
    if event.name == APPROVE:
        run.approve(event)
        run.drain_sends()
        return run.decision(event, Outcome.TRANSITIONED)
    if event.name == REJECT:
        run.reject(event)
        return run.decision(event, Outcome.REJECTED)
    if event.name not in definition.events:
        raise UnknownEvent(f"{definition.ref} has no event '{event.name}'")
    if event.actor is not None:
        check_sender(definition, event.name, event.actor.role, reason=event.reason)
    if event.timer_key is not None:
        active = snapshot.timers.get(event.timer_key)
        # A firing from an earlier cycle (the state was left and re-entered since) is stale too.
        if active is None or (
            event.timer_due_at is not None and active.due_at != event.timer_due_at
        ):
            run.notes.append(f"timer {event.timer_key} is no longer active; nothing to do")
            return run.decision(event, Outcome.NO_CHANGE)
        run.cancel_timer(event.timer_key, "fired")
    run.offer(event.name)
    run.drain_sends()
    if run.taken:
        outcome = Outcome.TRANSITIONED
    elif run.opened:
        outcome = Outcome.PROPOSED
    else:
        outcome = Outcome.NO_CHANGE
    return run.decision(event, outcome)


def check_sender(definition: PathwayDefinition, event: str, role: str, *, reason: str = "") -> None:
    """A person (of `role`) sends `event`: refused unless the definition names the role among
    the event's senders; an event that `requires_reason` needs one."""
    if not definition.may_send(role, event):
        senders = tuple(sorted(definition.senders(event)))
        if not senders:
            message = f"'{event}' is raised by the pathway itself; nobody sends it"
        else:
            message = f"Only {', '.join(senders)} may send '{event}' (you are {role})"
        raise EventNotPermitted(message, event, senders)
    if definition.events[event].requires_reason and not reason.strip():
        raise InvalidEvent(f"'{event}' needs a reason")


def available_events(
    definition: PathwayDefinition, snapshot: Snapshot, role: str | None = None
) -> dict[str, list[str]]:
    """Per track, the events a person may send that have a transition from the current state
    (guards not evaluated; timer and internal events are left out unless marked manual); with a
    `role`, only the events the definition lets that role send."""
    internal = definition.internal_events
    result: dict[str, list[str]] = {}
    for track_name, track in definition.tracks.items():
        current = snapshot.configuration[track_name].state
        if track.states[current].final:
            continue
        events = [
            t.event
            for t in track.transitions
            if t.leaves(current)
            and t.event not in internal
            and (role is None or definition.may_send(role, t.event))
        ]
        if events:
            result[track_name] = list(dict.fromkeys(events))
    return result


@dataclass
class _GuardView:
    """What a guard sees: the snapshot's facts plus the configuration before the event."""

    run: _Run
    track: str
    now: datetime

    def fact(self, name: str) -> Any:
        return self.run.snapshot.facts.get(name)

    def threshold(self, name: str) -> tuple[Any, str]:
        override = self.run.snapshot.thresholds.get(name)
        if override is not None:
            return override.value, override.source
        spec = self.run.definition.thresholds[name]
        return spec.default, f"{spec.source} (pathway default)"

    def state_of(self, track: str) -> str:
        return self.run.configuration[track].state

    def time_in_state(self, track: str) -> timedelta:
        return max(self.now - self.run.configuration[track].entered_at, timedelta(0))

    def occurrences(self, kind: str) -> Sequence[datetime]:
        return self.run.snapshot.occurrences.get(kind, ())


@dataclass
class _Run:
    definition: PathwayDefinition
    snapshot: Snapshot
    now: datetime
    configuration: dict[str, TrackState] = field(init=False)
    timers: dict[str, ActiveTimer] = field(init=False)
    proposals: dict[str, Proposal] = field(init=False)
    taken: list[TransitionTaken] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)
    timer_ops: list[TimerOp] = field(default_factory=list)
    opened: list[Proposal] = field(default_factory=list)
    closed: list[ProposalClosed] = field(default_factory=list)
    checks: list[GuardCheck] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    sends: list[str] = field(default_factory=list)
    event_key: str = "start"

    def __post_init__(self) -> None:
        self.configuration = dict(self.snapshot.configuration)
        self.timers = dict(self.snapshot.timers)
        self.proposals = dict(self.snapshot.proposals)

    # -- events ----------------------------------------------------------------------------

    def offer(self, event_name: str) -> None:
        """Select on the current configuration in every track, then run what was selected."""
        selected: list[tuple[str, int, TransitionSpec, GuardCheck]] = []
        for track_name, track in self.definition.tracks.items():
            current = self.configuration[track_name].state
            if track.states[current].final:
                continue
            for index, spec in enumerate(track.transitions):
                if spec.event != event_name or not spec.leaves(current):
                    continue
                check = self.check(track_name, index, spec, current)
                self.checks.append(check)
                if check.passed:
                    selected.append((track_name, index, spec, check))
                    break
        if not selected and not any(c.event == event_name for c in self.checks):
            self.notes.append(f"no transition on '{event_name}' from the current states")
        for track_name, index, spec, check in selected:
            if spec.approval is not None:
                self.propose(track_name, index, spec, check)
            else:
                self.transition(track_name, index, spec, check=check)

    def drain_sends(self) -> None:
        processed = 0
        while self.sends:
            processed += 1
            if processed > MAX_INTERNAL_EVENTS:
                raise WorkflowError(
                    f"{self.definition.ref}: more than {MAX_INTERNAL_EVENTS} internal events in "
                    "one step; the definition's send effects loop"
                )
            self.offer(self.sends.pop(0))

    def check(self, track: str, index: int, spec: TransitionSpec, current: str) -> GuardCheck:
        tid = transition_id(track, index)
        target = spec.target_from(current)
        if spec.guard is None:
            return GuardCheck(track, tid, spec.event, current, target, None, True)
        evaluation = _expression(spec.guard).evaluate(_GuardView(self, track, self.now))
        return GuardCheck(
            track=track,
            transition_id=tid,
            event=spec.event,
            source=current,
            target=target,
            expression=spec.guard.strip(),
            result=evaluation.result,
            readings=tuple(FactReading(r.name, r.value, r.source) for r in evaluation.readings),
            missing=evaluation.missing,
            errors=evaluation.errors,
        )

    # -- approval gates --------------------------------------------------------------------

    def propose(self, track: str, index: int, spec: TransitionSpec, check: GuardCheck) -> None:
        assert spec.approval is not None
        assert spec.target is not None  # validation: internal transitions have no approval
        tid = transition_id(track, index)
        source = self.configuration[track].state
        for pending in self.proposals.values():
            if pending.transition_id == tid and pending.source == source:
                self.notes.append(f"{source} → {spec.target} is already waiting for approval")
                return
        proposal = Proposal(
            id=f"{self.event_key}:{tid}",
            track=track,
            transition_id=tid,
            source=source,
            target=spec.target,
            event=spec.event,
            roles=tuple(spec.approval.roles),
            summary=spec.approval.summary or f"{source} → {spec.target}",
            proposed_at=self.now,
            evidence=check,
        )
        self.proposals[proposal.id] = proposal
        self.opened.append(proposal)
        self.effects.append(
            ProposeEscalation(
                track=track,
                proposal_id=proposal.id,
                source=source,
                target=spec.target,
                roles=proposal.roles,
                summary=proposal.summary,
            )
        )

    def _pending(self, event: Event) -> Proposal:
        if event.proposal_id is None or event.proposal_id not in self.proposals:
            raise UnknownProposal(f"no pending proposal {event.proposal_id!r}")
        proposal = self.proposals[event.proposal_id]
        if event.actor is None or event.actor.role not in proposal.roles:
            role = event.actor.role if event.actor else "nobody"
            raise ApprovalNotPermitted(
                f"{role} may not decide on this proposal; it needs one of: "
                f"{', '.join(proposal.roles)}"
            )
        if self.configuration[proposal.track].state != proposal.source:
            raise UnknownProposal(f"proposal {proposal.id} no longer applies")
        return proposal

    def approve(self, event: Event) -> None:
        proposal = self._pending(event)
        track, spec = self.definition.transition(proposal.transition_id)
        index = int(proposal.transition_id.partition("#")[2])
        # The facts may have changed since the proposal (another injection recorded, a new
        # evaluation): an escalation is performed only while its criteria still hold.
        now_check = self.check(track, index, spec, proposal.source)
        if not now_check.passed:
            raise CriteriaNoLongerMet(
                f"{proposal.source} → {proposal.target}: the criteria no longer hold "
                f"({now_check.describe()})",
                now_check,
            )
        self.notes.append(f"approved by {event.actor.role if event.actor else '?'}")
        del self.proposals[proposal.id]
        self.closed.append(ProposalClosed(proposal.id, "approved", event.actor, event.reason))
        self.checks.append(now_check)
        self.transition(
            track, index, spec, check=now_check, proposal=proposal, approver=event.actor
        )

    def reject(self, event: Event) -> None:
        if not event.reason.strip():
            raise InvalidEvent("a rejection needs a reason")
        proposal = self._pending(event)
        del self.proposals[proposal.id]
        self.closed.append(ProposalClosed(proposal.id, "rejected", event.actor, event.reason))
        self.notes.append(f"{proposal.source} → {proposal.target} rejected: {event.reason}")

    # -- moving ----------------------------------------------------------------------------

    def transition(
        self,
        track: str,
        index: int,
        spec: TransitionSpec,
        *,
        check: GuardCheck | None,
        proposal: Proposal | None = None,
        approver: Any = None,
    ) -> None:
        source = self.configuration[track].state
        if spec.target is None:  # internal: effects only; timers and proposals stay
            self.run_effects(track, spec.effects, state=source)
            self.record_taken(
                track, index, spec, source=source, target=source, check=check, internal=True
            )
            return
        # Effects emitted on the way belong to the state entered (tasks: `CreateTask.state`).
        self.run_effects(track, self.definition.state(track, source).on_exit, state=spec.target)
        for key, timer in list(self.timers.items()):
            if timer.track == track:
                self.cancel_timer(key, "state exited")
        for pending in list(self.proposals.values()):
            if pending.track == track:
                del self.proposals[pending.id]
                self.closed.append(
                    ProposalClosed(pending.id, "withdrawn", None, f"left {pending.source}")
                )
        self.run_effects(track, spec.effects, state=spec.target)
        self.record_taken(
            track,
            index,
            spec,
            source=source,
            target=spec.target,
            check=check,
            proposal=proposal,
            approver=approver,
        )
        self.enter(track, spec.target)

    def record_taken(
        self,
        track: str,
        index: int,
        spec: TransitionSpec,
        *,
        source: str,
        target: str,
        check: GuardCheck | None,
        proposal: Proposal | None = None,
        approver: Any = None,
        internal: bool = False,
    ) -> None:
        self.taken.append(
            TransitionTaken(
                track=track,
                transition_id=transition_id(track, index),
                event=spec.event,
                source=source,
                target=target,
                at=self.now,
                proposal_id=proposal.id if proposal else None,
                approved_by=approver,
                check=check,
                internal=internal,
            )
        )

    def enter(self, track: str, state: str) -> None:
        self.configuration[track] = TrackState(state, self.now)
        spec = self.definition.state(track, state)
        self.run_effects(track, spec.on_enter, state=state)
        for timer in self.definition.tracks[track].timers:
            if timer.state == state:
                active = ActiveTimer(
                    key=f"{track}.{timer.name}",
                    track=track,
                    state=state,
                    event=timer.event,
                    due_at=self.now + timer.duration(self.threshold_days),
                )
                self.timers[active.key] = active
                self.timer_ops.append(StartTimer(active))

    def threshold_days(self, name: str) -> Any:
        """A threshold's value for a timer counted in days: the clinic's, else the default."""
        return threshold_value(self.definition, self.snapshot, name)

    def cancel_timer(self, key: str, reason: str) -> None:
        if self.timers.pop(key, None) is not None:
            self.timer_ops.append(CancelTimer(key, reason))

    def run_effects(self, track: str, specs: Sequence[EffectSpec], *, state: str) -> None:
        """`state`: the state of `track` the effects belong to (see `CreateTask.state`)."""
        for spec in specs:
            effect = self._effect(track, spec, state)
            if effect is not None:
                self.effects.append(effect)

    def _effect(self, track: str, spec: EffectSpec, state: str) -> Effect | None:
        if spec.send is not None:
            self.sends.append(spec.send)
            return None
        if spec.start_checkins is not None:
            s = spec.start_checkins
            series = s.series or s.instrument
            return StartCheckins(track=track, instrument=s.instrument, every=s.every, series=series)
        if spec.stop_checkins is not None:
            stop = spec.stop_checkins
            return StopCheckins(track=track, series=stop.series, instrument=stop.instrument)
        if spec.create_task is not None:
            t = spec.create_task
            due_at = self.now + t.due_in if t.due_in is not None else None
            return CreateTask(
                track=track,
                discipline=t.discipline,
                title=t.title,
                due_at=due_at,
                priority=t.priority,
                state=state,
            )
        if spec.notify is not None:
            n = spec.notify
            return Notify(track=track, to=tuple(n.to), message=n.message, urgency=n.urgency)
        if spec.raise_flag is not None:
            f = spec.raise_flag
            return RaiseFlag(track=track, code=f.code, severity=f.severity, message=f.message)
        raise AssertionError(f"unhandled effect {spec.kind}")  # pragma: no cover

    # -- result ----------------------------------------------------------------------------

    def decision(self, event: Event | None, outcome: Outcome) -> Decision:
        completed = all(
            self.definition.state(track, ts.state).final for track, ts in self.configuration.items()
        ) and bool(self.configuration)
        return Decision(
            event=event,
            outcome=outcome,
            configuration=dict(self.configuration),
            transitions=tuple(self.taken),
            effects=tuple(self.effects),
            timer_ops=tuple(self.timer_ops),
            proposals_opened=tuple(self.opened),
            proposals_closed=tuple(self.closed),
            explanation=Explanation(checks=tuple(self.checks), notes=tuple(self.notes)),
            completed=completed,
        )


def threshold_value(definition: PathwayDefinition, snapshot: Snapshot, name: str) -> Any:
    override = snapshot.thresholds.get(name)
    return override.value if override is not None else definition.thresholds[name].default


def apply(snapshot: Snapshot, decision: Decision) -> Snapshot:
    """The snapshot after `decision` (facts unchanged). Used by the in-memory store and tests."""
    timers = dict(snapshot.timers)
    for op in decision.timer_ops:
        if isinstance(op, StartTimer):
            timers[op.timer.key] = op.timer
        else:
            timers.pop(op.key, None)
    proposals = dict(snapshot.proposals)
    for closed in decision.proposals_closed:
        proposals.pop(closed.proposal_id, None)
    for proposal in decision.proposals_opened:
        proposals[proposal.id] = proposal
    return Snapshot(
        configuration=dict(decision.configuration),
        facts=snapshot.facts,
        thresholds=snapshot.thresholds,
        occurrences=snapshot.occurrences,
        timers=timers,
        proposals=proposals,
    )


def with_facts(snapshot: Snapshot, facts: Mapping[str, Any]) -> Snapshot:
    return replace(snapshot, facts={**snapshot.facts, **facts})
