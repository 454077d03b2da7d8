"""Hypothesis stateful tests: invariants of the engine over random event sequences."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from tests.workflows.conftest import DEFINITIONS, T0
from workflows import (
    APPROVE,
    Actor,
    ApprovalNotPermitted,
    CriteriaNoLongerMet,
    Decision,
    Event,
    InvalidEvent,
    MemoryInstance,
    Outcome,
    PathwayDefinition,
    load_definition,
)

ROLES = ["physician", "coordinator", "physical_therapist", "psychologist", "patient"]
FACT_VALUES = {
    "pain.months": st.sampled_from([6, 12, 2, None]),
    "failed_treatment_classes": st.sampled_from([2, 3, 0, None]),
    "peg.improvement_pct": st.sampled_from([None, -10, 0, 12, 29.9, 30, 55]),
    "mbb1.relief_pct": st.sampled_from([None, 0, 50, 79, 80, 100]),
    "pt.sessions_attended": st.sampled_from([None, 0, 8, 12]),
    "psych_eval.outcome": st.sampled_from(
        [None, "cleared", "cleared_with_conditions", "deferred_pending_treatment", "not_cleared"]
    ),
    "scs_trial.relief_pct": st.sampled_from([None, 20, 50, 75]),
}


def invasive_targets(definition: PathwayDefinition) -> dict[tuple[str, str], set[str]]:
    """(track, invasive state) → roles allowed to approve entering it (union over gates)."""
    gates: dict[tuple[str, str], set[str]] = {}
    for track_name, track in definition.tracks.items():
        for transition in track.transitions:
            if transition.target is not None and track.states[transition.target].invasive:
                roles = set(transition.approval.roles) if transition.approval else set()
                gates.setdefault((track_name, transition.target), set()).update(roles)
    return gates


class PathwayMachine(RuleBasedStateMachine):
    definition: PathwayDefinition = load_definition(DEFINITIONS / "stepped_care.yaml")

    @initialize(data=st.data())
    def begin(self, data: st.DataObject) -> None:
        self.now = T0
        facts = {name: data.draw(values, label=name) for name, values in FACT_VALUES.items()}
        self.instance = MemoryInstance(self.definition, self.now, facts=facts)
        self.counter = 0
        self.sent: list[tuple[Event, Decision]] = []
        self.last: Decision | None = None
        self.final_before: dict[str, str] = {}
        self.gates = invasive_targets(self.definition)

    def _key(self) -> str:
        self.counter += 1
        return f"k{self.counter}"

    def _dispatch(self, event: Event) -> None:
        self.final_before = {
            track: state
            for track, state in self.instance.states.items()
            if self.definition.state(track, state).final
        }
        version = self.instance.version
        decision = self.instance.dispatch(event, self.now)
        self.sent.append((event, decision))
        self.last = decision
        if decision.outcome is not Outcome.NO_CHANGE:
            assert self.instance.version == version + 1

    @rule(data=st.data())
    def record_fact(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(FACT_VALUES)))
        self.instance.set_facts(**{name: data.draw(FACT_VALUES[name])})

    @rule(data=st.data())
    def send_event(self, data: st.DataObject) -> None:
        # Discharge ends every track; keep it rare so that runs reach the deeper states.
        names = sorted(set(self.definition.events) - {"discharge"})
        event_name = data.draw(st.sampled_from(names))
        self._dispatch(Event(name=event_name, key=self._key()))

    @precondition(lambda self: self.counter > 20)
    @rule()
    def discharge(self) -> None:
        self._dispatch(Event(name="discharge", key=self._key()))

    @precondition(lambda self: bool(self.instance.snapshot.proposals))
    @rule(data=st.data(), approve=st.booleans())
    def decide_on_a_proposal(self, data: st.DataObject, approve: bool) -> None:
        proposal = data.draw(st.sampled_from(sorted(self.instance.snapshot.proposals)))
        gate_roles = list(self.instance.snapshot.proposals[proposal].roles)
        role = data.draw(st.sampled_from(gate_roles) | st.sampled_from(ROLES))
        allowed = role in self.instance.snapshot.proposals[proposal].roles
        reason = data.draw(st.sampled_from(["", "Not indicated yet"]))
        event = Event(
            name=APPROVE if approve else "reject",
            key=self._key(),
            actor=Actor(id=f"user-{role}", role=role),
            proposal_id=proposal,
            reason=reason,
        )
        try:
            self._dispatch(event)
        except ApprovalNotPermitted:
            assert not allowed
            return
        except InvalidEvent:
            assert not approve
            assert not reason
            return
        except CriteriaNoLongerMet:
            assert approve
            assert allowed
            return
        assert allowed

    @precondition(lambda self: bool(self.instance.snapshot.proposals))
    @rule(data=st.data())
    def clinician_approves(self, data: st.DataObject) -> None:
        proposal = self.instance.snapshot.proposals[
            data.draw(st.sampled_from(sorted(self.instance.snapshot.proposals)))
        ]
        role = data.draw(st.sampled_from(proposal.roles))
        actor = Actor(id=f"user-{role}", role=role)
        event = Event(name=APPROVE, key=self._key(), actor=actor, proposal_id=proposal.id)
        try:
            self._dispatch(event)
        except CriteriaNoLongerMet as exc:
            # The facts changed since the proposal: nothing moves, the proposal still waits.
            assert not exc.check.passed  # type: ignore[attr-defined]
            assert self.instance.states[proposal.track] == proposal.source
            assert proposal.id in self.instance.snapshot.proposals
            return
        assert self.instance.states[proposal.track] == proposal.target

    @rule(days=st.integers(min_value=1, max_value=120))
    def time_passes(self, days: int) -> None:
        self.now += timedelta(days=days)
        for decision in self.instance.fire_due_timers(self.now):
            self.sent.append((decision.event, decision))  # type: ignore[arg-type]
            self.last = decision

    @precondition(lambda self: bool(self.sent))
    @rule(data=st.data())
    def redeliver(self, data: st.DataObject) -> None:
        event, first = data.draw(st.sampled_from(self.sent))
        before = (self.instance.snapshot, self.instance.version)
        again = self.instance.dispatch(event, self.now + timedelta(seconds=1))
        assert again is first
        assert (self.instance.snapshot, self.instance.version) == before

    @invariant()
    def configuration_is_valid(self) -> None:
        states = self.instance.states
        assert set(states) == set(self.definition.tracks)
        for track, state in states.items():
            assert state in self.definition.tracks[track].states

    @invariant()
    def final_states_absorb(self) -> None:
        for track, state in self.final_before.items():
            assert self.instance.states[track] == state

    @invariant()
    def timers_belong_to_current_states_one_per_kind(self) -> None:
        timers = self.instance.snapshot.timers
        assert len({t.key for t in timers.values()}) == len(timers)
        for key, timer in timers.items():
            assert key == f"{timer.track}.{key.split('.', 1)[1]}"
            assert self.instance.states[timer.track] == timer.state

    @invariant()
    def invasive_states_are_entered_only_by_an_allowed_approval(self) -> None:
        if self.last is None:
            return
        for step in self.last.transitions:
            roles = self.gates.get((step.track, step.target))
            if roles is None:
                continue
            assert self.last.event is not None
            assert self.last.event.name == APPROVE
            assert step.approved_by is not None
            assert step.approved_by.role in roles
            assert step.proposal_id is not None

    @invariant()
    def proposals_are_for_current_states(self) -> None:
        for proposal in self.instance.snapshot.proposals.values():
            assert self.instance.states[proposal.track] == proposal.source


PathwayMachine.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestPathwayInvariants = PathwayMachine.TestCase


@pytest.mark.parametrize("path", sorted(DEFINITIONS.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_transition_into_an_invasive_state_is_gated(path: Path) -> None:
    definition = load_definition(path)
    gated = 0
    for track in definition.tracks.values():
        for transition in track.transitions:
            if transition.target is not None and track.states[transition.target].invasive:
                assert transition.approval is not None, transition
                gated += 1
    assert gated
