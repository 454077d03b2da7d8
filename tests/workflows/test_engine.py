"""Transition tables and behaviour of `start` / `decide` on the example definition.

No database: these run in milliseconds.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.workflows.conftest import COORDINATOR, PHYSICIAN, T0, Clock, send
from workflows import (
    Actor,
    ApprovalNotPermitted,
    CriteriaNoLongerMet,
    Event,
    EventNotPermitted,
    InvalidEvent,
    MemoryInstance,
    Outcome,
    PathwayDefinition,
    ThresholdValue,
    UnknownEvent,
    UnknownProposal,
    available_events,
    decide,
    start,
)
from workflows.model import CancelTimer, StartTimer

CONVENTIONAL_FACTS = {"pain.months": 8, "failed_treatment_classes": 2}


def to_conventional(instance: MemoryInstance, clock: Clock) -> None:
    instance.set_facts(**CONVENTIONAL_FACTS)
    assert send(instance, clock, "intake_complete").outcome is Outcome.TRANSITIONED


def to_block(instance: MemoryInstance, clock: Clock) -> None:
    to_conventional(instance, clock)
    clock.advance(weeks=12)
    instance.set_facts(**{"peg.improvement_pct": 10})
    proposed = send(instance, clock, "review_due")
    assert proposed.outcome is Outcome.PROPOSED
    send(instance, clock, "approve", actor=PHYSICIAN, proposal_id=proposed.proposals_opened[0].id)
    assert instance.states["ladder"] == "block"


def test_start_enters_every_initial_state_with_entry_effects_and_timers(
    stepped_care: PathwayDefinition,
) -> None:
    decision = start(stepped_care, T0)
    assert decision.outcome is Outcome.STARTED
    assert {t: s.state for t, s in decision.configuration.items()} == {
        "ladder": "intake",
        "pt": "active",
        "cbt": "evaluation",
    }
    assert [e.as_dict()["kind"] for e in decision.effects] == ["create_task"]
    [timer_op] = decision.timer_ops
    assert isinstance(timer_op, StartTimer)
    assert timer_op.timer.key == "pt.programme_review"
    assert timer_op.timer.due_at == T0 + timedelta(weeks=6)


# (preparation, facts, event, expected ladder state, outcome, effect kinds)
LADDER_TABLE: list[tuple[str, dict[str, Any], str, str, Outcome, list[str]]] = [
    (
        "intake",
        CONVENTIONAL_FACTS,
        "intake_complete",
        "conventional",
        Outcome.TRANSITIONED,
        ["start_checkins"],
    ),
    (
        "intake",
        {"pain.months": 4, "failed_treatment_classes": 2},
        "intake_complete",
        "intake",
        Outcome.NO_CHANGE,
        [],
    ),
    ("intake", {"pain.months": 8}, "intake_complete", "intake", Outcome.NO_CHANGE, []),
    (
        "conventional+12w",
        {"peg.improvement_pct": 12},
        "review_due",
        "conventional",
        Outcome.PROPOSED,
        ["propose_escalation"],
    ),
    (
        "conventional+12w",
        {"peg.improvement_pct": 45},
        "review_due",
        "maintenance",
        Outcome.TRANSITIONED,
        ["stop_checkins", "notify"],
    ),
    (
        "conventional",
        {"peg.improvement_pct": 12},
        "review_due",
        "conventional",
        Outcome.NO_CHANGE,
        [],
    ),
    ("conventional", {}, "esi_requested", "conventional", Outcome.PROPOSED, ["propose_escalation"]),
    (
        "block",
        {"mbb1.relief_pct": 40},
        "block_result_recorded",
        "conventional",
        Outcome.TRANSITIONED,
        ["start_checkins"],
    ),
    (
        "block",
        {"mbb1.relief_pct": 90, "pt.sessions_attended": 10},
        "block_result_recorded",
        "block",
        Outcome.NO_CHANGE,
        [],
    ),
    (
        "block",
        {"mbb1.relief_pct": 90, "pt.sessions_attended": 10, "psych_eval.outcome": "cleared"},
        "cbt_cleared",
        "block",
        Outcome.TRANSITIONED,
        ["propose_escalation"],
    ),
    ("block", {}, "discharge", "discharged", Outcome.TRANSITIONED, []),
]


@pytest.mark.parametrize(
    ("preparation", "facts", "event", "expected", "outcome", "effect_kinds"), LADDER_TABLE
)
def test_ladder_transition_table(
    instance: MemoryInstance,
    clock: Clock,
    preparation: str,
    facts: dict[str, Any],
    event: str,
    expected: str,
    outcome: Outcome,
    effect_kinds: list[str],
) -> None:
    if preparation.startswith("conventional"):
        to_conventional(instance, clock)
    if preparation == "conventional+12w":
        clock.advance(weeks=12, minutes=1)
    if preparation == "block":
        to_block(instance, clock)
    instance.set_facts(**facts)
    decision = send(instance, clock, event)
    assert decision.outcome is outcome
    assert instance.states["ladder"] == expected
    ladder_effects = [e.kind for e in decision.effects if e.track == "ladder"]
    assert ladder_effects == effect_kinds


def test_a_guard_explanation_names_expression_facts_values_and_threshold_source(
    instance: MemoryInstance, clock: Clock
) -> None:
    to_conventional(instance, clock)
    clock.advance(weeks=13)
    instance.set_facts(**{"peg.improvement_pct": 12})
    decision = send(instance, clock, "review_due")
    # The first guard held, so the alternative (to maintenance) was not evaluated.
    [to_block] = decision.explanation.checks
    assert to_block.expression == (
        "weeks_in_state() >= 12 and peg.improvement_pct < threshold.failure_improvement_pct"
    )
    assert to_block.result is True
    readings = {r.name: (r.value, r.source) for r in to_block.readings}
    assert readings["weeks_in_state(ladder)"] == (13.0, None)
    assert readings["peg.improvement_pct"] == (12, None)
    value, source = readings["threshold.failure_improvement_pct"]
    assert value == 30
    assert source is not None
    assert source.startswith("IMMPACT")
    text = decision.explanation.summary()
    assert "peg.improvement_pct = 12" in text
    assert "held" in text


def test_explanation_of_a_proposal_not_made_lists_missing_facts(
    instance: MemoryInstance, clock: Clock
) -> None:
    to_conventional(instance, clock)
    clock.advance(weeks=12)
    decision = send(instance, clock, "review_due")  # no PEG score recorded
    assert decision.outcome is Outcome.NO_CHANGE
    assert [c.result for c in decision.explanation.checks] == [None, None]
    assert decision.explanation.checks[0].missing == ("peg.improvement_pct",)
    assert "missing: peg.improvement_pct" in decision.explanation.summary()


def test_clinic_threshold_overrides_the_pathway_default_and_names_its_source(
    stepped_care: PathwayDefinition, clock: Clock
) -> None:
    override = {"block_relief_pct": ThresholdValue(50, "ASRA 2020 consensus")}
    instance = MemoryInstance(stepped_care, clock.now, thresholds=override)
    to_block(instance, clock)
    instance.set_facts(**{"mbb1.relief_pct": 60})
    decision = send(instance, clock, "block_result_recorded")
    # 60% passes the clinic's 50% (not the default 80%), but CBT has not cleared yet.
    check = decision.explanation.checks[0]
    readings = {r.name: (r.value, r.source) for r in check.readings}
    assert readings["threshold.block_relief_pct"] == (50, "ASRA 2020 consensus")
    assert readings["state of cbt"] == ("evaluation", None)
    assert check.result is False


def test_a_track_waits_on_another_and_is_woken_by_a_send(
    instance: MemoryInstance, clock: Clock
) -> None:
    to_block(instance, clock)
    instance.set_facts(**{"mbb1.relief_pct": 90, "pt.sessions_attended": 9})
    waiting = send(instance, clock, "block_result_recorded")
    assert waiting.outcome is Outcome.NO_CHANGE  # CBT not cleared yet
    instance.set_facts(**{"psych_eval.outcome": "cleared_with_conditions"})
    decision = send(instance, clock, "cbt_cleared")
    assert instance.states["cbt"] == "cleared"
    # cbt's entry sent psych_cleared, which the ladder's gate picked up in the same step.
    [proposal] = decision.proposals_opened
    assert (proposal.source, proposal.target, proposal.event) == (
        "block",
        "scs_trial",
        "psych_cleared",
    )
    assert instance.states["ladder"] == "block"


def test_approval_gate_proposes_once_then_only_an_allowed_role_approves(
    instance: MemoryInstance, clock: Clock
) -> None:
    to_conventional(instance, clock)
    first = send(instance, clock, "esi_requested")
    again = send(instance, clock, "esi_requested")
    assert first.outcome is Outcome.PROPOSED
    assert again.outcome is Outcome.NO_CHANGE
    assert "already waiting for approval" in again.explanation.summary()
    [proposal] = instance.snapshot.proposals.values()
    assert proposal.roles == ("physician",)
    assert proposal.evidence is not None
    assert proposal.evidence.passed

    with pytest.raises(ApprovalNotPermitted):
        send(instance, clock, "approve", actor=COORDINATOR, proposal_id=proposal.id)
    with pytest.raises(ApprovalNotPermitted):
        send(instance, clock, "approve", proposal_id=proposal.id)
    assert instance.states["ladder"] == "conventional"

    approved = send(instance, clock, "approve", actor=PHYSICIAN, proposal_id=proposal.id)
    assert approved.outcome is Outcome.TRANSITIONED
    [step] = approved.transitions
    assert (step.source, step.target, step.proposal_id) == ("conventional", "esi", proposal.id)
    assert step.approved_by == PHYSICIAN
    assert [c.resolution for c in approved.proposals_closed] == ["approved"]
    assert instance.states["ladder"] == "esi"
    assert not instance.snapshot.proposals


def test_reject_needs_a_reason_and_keeps_the_state(instance: MemoryInstance, clock: Clock) -> None:
    to_conventional(instance, clock)
    proposal = send(instance, clock, "esi_requested").proposals_opened[0]
    with pytest.raises(InvalidEvent):
        send(instance, clock, "reject", actor=PHYSICIAN, proposal_id=proposal.id)
    rejected = send(
        instance, clock, "reject", actor=PHYSICIAN, proposal_id=proposal.id,
        reason="Radicular signs absent on exam",
    )  # fmt: skip
    assert rejected.outcome is Outcome.REJECTED
    [closed] = rejected.proposals_closed
    assert (closed.resolution, closed.reason) == ("rejected", "Radicular signs absent on exam")
    assert instance.states["ladder"] == "conventional"
    with pytest.raises(UnknownProposal):
        send(instance, clock, "approve", actor=PHYSICIAN, proposal_id=proposal.id)


def test_leaving_the_source_state_withdraws_a_pending_proposal(
    instance: MemoryInstance, clock: Clock
) -> None:
    to_conventional(instance, clock)
    proposal = send(instance, clock, "esi_requested").proposals_opened[0]
    decision = send(instance, clock, "discharge")
    assert [(c.proposal_id, c.resolution) for c in decision.proposals_closed] == [
        (proposal.id, "withdrawn")
    ]
    assert not instance.snapshot.proposals


def test_rolling_window_count_caps_injections(instance: MemoryInstance, clock: Clock) -> None:
    to_conventional(instance, clock)
    past = tuple(clock.now - timedelta(days=d) for d in (20, 100, 200, 300))
    instance.snapshot = type(instance.snapshot)(
        **{**instance.snapshot.__dict__, "occurrences": {"esi": past}}
    )
    decision = send(instance, clock, "esi_requested")
    assert decision.outcome is Outcome.NO_CHANGE
    readings = {r.name: r.value for r in decision.explanation.checks[0].readings}
    assert readings["count(esi, last 365 days)"] == 4
    clock.advance(days=70)  # the oldest injection leaves the 12-month window
    assert send(instance, clock, "esi_requested").outcome is Outcome.PROPOSED


def test_timers_start_on_entry_fire_once_and_are_cancelled_on_exit(
    instance: MemoryInstance, clock: Clock
) -> None:
    to_conventional(instance, clock)
    review = instance.snapshot.timers["ladder.conventional_review"]
    assert review.due_at == clock.now + timedelta(weeks=12)
    assert review.event == "review_due"

    clock.advance(weeks=6)
    [pt_fired] = instance.fire_due_timers(clock.now)
    assert instance.states["pt"] == "review"
    assert CancelTimer("pt.programme_review", "fired") in pt_fired.timer_ops

    clock.advance(weeks=6)
    instance.set_facts(**{"peg.improvement_pct": 50})
    [fired] = instance.fire_due_timers(clock.now)
    assert fired.outcome is Outcome.TRANSITIONED
    assert instance.states["ladder"] == "maintenance"
    assert "ladder.conventional_review" not in instance.snapshot.timers
    assert instance.fire_due_timers(clock.now + timedelta(weeks=52)) == []


def test_a_stale_timer_changes_nothing(instance: MemoryInstance, clock: Clock) -> None:
    to_conventional(instance, clock)
    send(instance, clock, "discharge")
    stale = Event(name="review_due", key="late", timer_key="ladder.conventional_review")
    decision = decide(instance.definition, instance.snapshot, stale, clock.now)
    assert decision.outcome is Outcome.NO_CHANGE
    assert "no longer active" in decision.explanation.summary()


def test_final_states_absorb_events_and_complete_the_instance(
    instance: MemoryInstance, clock: Clock
) -> None:
    decision = send(instance, clock, "discharge")
    assert decision.completed
    assert instance.states == {"ladder": "discharged", "pt": "done", "cbt": "stopped"}
    assert instance.snapshot.timers == {}
    after = send(instance, clock, "intake_complete")
    assert after.outcome is Outcome.NO_CHANGE
    assert available_events(instance.definition, instance.snapshot) == {}


def test_unknown_event_is_an_error(instance: MemoryInstance, clock: Clock) -> None:
    with pytest.raises(UnknownEvent):
        send(instance, clock, "teleport")


def test_redelivered_event_key_changes_nothing(instance: MemoryInstance, clock: Clock) -> None:
    instance.set_facts(**CONVENTIONAL_FACTS)
    event = Event(name="intake_complete", key="once")
    first = instance.dispatch(event, clock.now)
    version = instance.version
    again = instance.dispatch(event, clock.now + timedelta(days=1))
    assert again is first
    assert instance.version == version


def test_decide_is_pure(instance: MemoryInstance, clock: Clock) -> None:
    to_conventional(instance, clock)
    snapshot = instance.snapshot
    event = Event(name="esi_requested", key="k")
    first = decide(instance.definition, snapshot, event, clock.now)
    second = decide(instance.definition, snapshot, event, clock.now)
    assert first == second
    assert instance.snapshot is snapshot
    assert snapshot.proposals == {}


def test_available_events_per_track_leave_out_the_pathways_own(
    instance: MemoryInstance, clock: Clock
) -> None:
    to_conventional(instance, clock)
    # review_due and pt_review_due come from timers, psych_cleared from a send effect.
    assert instance.definition.internal_events == {"review_due", "pt_review_due", "psych_cleared"}
    assert available_events(instance.definition, instance.snapshot) == {
        "ladder": ["esi_requested", "discharge"],
        "pt": ["session_logged", "discharge"],
        "cbt": ["cbt_cleared", "discharge"],
    }


def test_a_timer_event_marked_manual_is_offered_to_people(stepped_care: PathwayDefinition) -> None:
    from tests.workflows.conftest import DEFINITIONS
    from workflows import load_text

    text = (DEFINITIONS / "stepped_care.yaml").read_text()
    text = text.replace(
        'review_due: {description: "Conventional therapy review"}',
        'review_due: {description: "Conventional therapy review", manual: true, '
        "roles: [physician]}",
    )
    definition = load_text(text)
    assert "review_due" not in definition.internal_events
    instance = MemoryInstance(definition, T0)
    instance.set_facts(**CONVENTIONAL_FACTS)
    instance.dispatch(Event(name="intake_complete", key="i"), T0)
    assert "review_due" in available_events(definition, instance.snapshot)["ladder"]
    assert "review_due" in available_events(definition, instance.snapshot, "physician")["ladder"]
    assert "review_due" not in available_events(definition, instance.snapshot, "coordinator").get(
        "ladder", []
    )


def test_only_the_roles_an_event_names_may_send_it(stepped_care: PathwayDefinition) -> None:
    instance = MemoryInstance(stepped_care, T0)
    instance.set_facts(**CONVENTIONAL_FACTS)
    therapist = Actor(id="pt-1", role="physical_therapist")
    with pytest.raises(EventNotPermitted, match="Only coordinator, physician may send") as refused:
        instance.dispatch(Event(name="intake_complete", key="i1", actor=therapist), T0)
    assert refused.value.roles == ("coordinator", "physician")
    assert instance.states["ladder"] == "intake"  # nothing changed
    coordinator = Actor(id="c-1", role="coordinator")
    instance.dispatch(Event(name="intake_complete", key="i2", actor=coordinator), T0)
    assert instance.states["ladder"] == "conventional"


def test_nobody_sends_the_pathways_own_events(stepped_care: PathwayDefinition) -> None:
    instance = MemoryInstance(stepped_care, T0)
    physician = Actor(id="dr", role="physician")
    with pytest.raises(EventNotPermitted, match="raised by the pathway itself") as refused:
        instance.dispatch(Event(name="review_due", key="r", actor=physician), T0)
    assert refused.value.roles == ()
    # The scheduler (no actor) still raises it.
    instance.dispatch(Event(name="review_due", key="r2"), T0)


def test_an_event_that_requires_a_reason_is_refused_without_one() -> None:
    from tests.workflows.conftest import DEFINITIONS
    from workflows import load_text

    text = (DEFINITIONS / "stepped_care.yaml").read_text()
    text = text.replace(
        "discharge: {roles: [coordinator, physician]}",
        "discharge: {roles: [coordinator, physician], requires_reason: true}",
    )
    definition = load_text(text)
    instance = MemoryInstance(definition, T0)
    coordinator = Actor(id="c-1", role="coordinator")
    with pytest.raises(InvalidEvent, match="needs a reason"):
        instance.dispatch(Event(name="discharge", key="d1", actor=coordinator, reason=" "), T0)
    instance.dispatch(Event(name="discharge", key="d2", actor=coordinator, reason="Moved"), T0)
    assert instance.states["ladder"] == "discharged"


def test_available_events_for_a_role_are_the_ones_it_may_send(
    stepped_care: PathwayDefinition,
) -> None:
    instance = MemoryInstance(stepped_care, T0)
    everyone = available_events(stepped_care, instance.snapshot)
    for role in stepped_care.roles:
        mine = available_events(stepped_care, instance.snapshot, role)
        for track, events in everyone.items():
            assert mine.get(track, []) == [e for e in events if stepped_care.may_send(role, e)]
    assert stepped_care.session_roles("pt") == {"physical_therapist"}
    assert stepped_care.session_roles("cbt") == frozenset()


def test_effects_serialise_to_plain_data(instance: MemoryInstance, clock: Clock) -> None:
    instance.set_facts(**CONVENTIONAL_FACTS)
    decision = send(instance, clock, "intake_complete")
    [effect] = decision.effects
    assert effect.as_dict() == {
        "kind": "start_checkins",
        "track": "ladder",
        "instrument": "peg",
        "every": 604800.0,
        "series": "peg",
    }


def test_an_internal_transition_runs_effects_without_moving_or_resetting_timers(
    instance: MemoryInstance, clock: Clock
) -> None:
    timer = instance.snapshot.timers["pt.programme_review"]
    clock.advance(days=3)
    instance.set_facts(**{"pt.sessions_attended": 2})
    decision = send(instance, clock, "session_logged")
    assert decision.outcome is Outcome.TRANSITIONED
    [step] = decision.transitions
    assert step.internal
    assert (step.source, step.target) == ("active", "active")
    assert [e.kind for e in decision.effects] == ["notify"]
    assert decision.timer_ops == ()
    assert instance.snapshot.timers["pt.programme_review"] == timer
    assert instance.snapshot.configuration["pt"].entered_at == T0

    instance.set_facts(**{"pt.sessions_attended": 12})
    assert send(instance, clock, "session_logged").transitions[0].target == "review"


def test_approval_rechecks_the_criteria_and_refuses_when_they_no_longer_hold(
    instance: MemoryInstance, clock: Clock
) -> None:
    to_conventional(instance, clock)
    proposal = send(instance, clock, "esi_requested").proposals_opened[0]
    # Before the physician decides, four injections are recorded in the last year.
    past = tuple(clock.now - timedelta(days=d) for d in (10, 40, 90, 200))
    instance.snapshot = type(instance.snapshot)(
        **{**instance.snapshot.__dict__, "occurrences": {"esi": past}}
    )
    with pytest.raises(CriteriaNoLongerMet) as raised:
        send(instance, clock, "approve", actor=PHYSICIAN, proposal_id=proposal.id)
    assert raised.value.check.result is False
    assert "count(esi, last 365 days) = 4" in raised.value.check.describe()
    assert instance.states["ladder"] == "conventional"
    assert proposal.id in instance.snapshot.proposals  # still pending: it can be rejected
    send(instance, clock, "reject", actor=PHYSICIAN, proposal_id=proposal.id, reason="Cap reached")
    assert not instance.snapshot.proposals


TASK_STATES = """
key: task-states
version: 1
title: Tasks and their states
roles: [coordinator]
events:
  go: {roles: [coordinator]}
  remind: {roles: [coordinator]}
  back: {roles: [coordinator]}
tracks:
  main:
    initial: a
    states:
      a:
        on_enter:
          - create_task: {discipline: coordinator, title: "Entering a"}
        on_exit:
          - create_task: {discipline: coordinator, title: "Leaving a"}
      b: {}
      c: {}
      done: {final: true}
    transitions:
      - from: a
        event: go
        to: b
        effects:
          - create_task: {discipline: coordinator, title: "On the way to b"}
      - from: b
        event: remind
        effects:
          - create_task: {discipline: coordinator, title: "Reminder while in b"}
      - {from: b, event: back, to: c}
      - {from: "*", event: go, to: done}
"""


def test_a_task_belongs_to_the_state_its_track_is_in_once_the_transition_is_done() -> None:
    from workflows import load_text

    definition = load_text(TASK_STATES)
    instance = MemoryInstance(definition, T0)
    assert [(e.title, e.state) for e in start(definition, T0).effects] == [("Entering a", "a")]
    moved = instance.dispatch(Event(name="go", key="1"), T0)
    # Leaving a, the exit's and the transition's tasks belong to b, where the track is then.
    assert [(e.title, e.state) for e in moved.effects] == [
        ("Leaving a", "b"),
        ("On the way to b", "b"),
    ]
    reminded = instance.dispatch(Event(name="remind", key="2"), T0)
    assert [(e.title, e.state) for e in reminded.effects] == [("Reminder while in b", "b")]
    assert reminded.effects[0].as_dict()["state"] == "b"
    # The states a task can belong to (done: a's exit task when a leaves for it); not c.
    assert definition.task_states == {"main": frozenset({"a", "b", "done"})}
