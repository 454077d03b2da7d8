"""Moving a running instance to a new version: the migration spec's validation and
`plan_migration`'s classification, timers, proposals and check-in series (no database)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from tests.workflows.conftest import PHYSICIAN, T0
from workflows import DefinitionError, Event, MemoryInstance, Registry, ThresholdValue, load_text
from workflows.definition import PathwayDefinition
from workflows.loader import check_text
from workflows.migration import ActiveSeries, Classification, plan_migration
from workflows.model import Snapshot
from workflows.registry import load_directories, migration_problems
from workflows.validation import validate_migration

V1 = """
key: mig
version: 1
title: Migration test
roles: [coordinator, physician]
thresholds:
  relief_pct: {default: 80, unit: "%", source: "test"}
events:
  intake_done: {roles: [coordinator]}
  review_due: {}
  block_result: {roles: [physician]}
  discharge: {roles: [coordinator]}
tracks:
  ladder:
    initial: intake
    states:
      intake:
        on_enter:
          - create_task: {discipline: coordinator, title: "Do the intake"}
      conventional:
        on_enter:
          - start_checkins: {instrument: peg, every: 1w, series: peg_weekly}
      review: {}
      block: {invasive: true}
      done: {final: true}
    transitions:
      - {from: intake, event: intake_done, to: conventional}
      - {from: conventional, event: review_due, to: review}
      - from: review
        event: block_result
        to: block
        guard: mbb1.relief_pct >= threshold.relief_pct
        approval: {roles: [physician], summary: "Diagnostic block"}
      - {from: block, event: discharge, to: done}
      - {from: "*", event: discharge, to: done}
    timers:
      - {name: review, state: conventional, after: 12w, event: review_due}
      - {name: nudge, state: conventional, after: 2w, event: review_due}
"""


def v2(body: str = "", *, migrations: str = "", timers: str = "", extra_states: str = "") -> str:
    """Version 2 of the test pathway: `body` replaces lines of version 1 as needed."""
    text = V1.replace("version: 1", "version: 2")
    if timers:
        text = text.replace(
            """      - {name: review, state: conventional, after: 12w, event: review_due}
      - {name: nudge, state: conventional, after: 2w, event: review_due}
""",
            timers,
        )
    if extra_states:
        text = text.replace(
            "      done: {final: true}\n", "      done: {final: true}\n" + extra_states
        )
    text += body
    if migrations:
        text += "migrations:\n" + migrations
    return text


def load(text: str) -> PathwayDefinition:
    return load_text(text, source="test")


@pytest.fixture(scope="module")
def old() -> PathwayDefinition:
    return load(V1)


def instance_in(old: PathwayDefinition, state: str, **facts: object) -> MemoryInstance:
    """An instance of version 1 walked to `state` of the ladder."""
    instance = MemoryInstance(old, T0, facts=facts)
    now = T0
    path = {"conventional": ["intake_done"], "review": ["intake_done", "review_due"]}
    for i, event in enumerate(path.get(state, [])):
        now += timedelta(days=1)
        instance.dispatch(Event(name=event, key=f"k{i}"), now)
    assert instance.states["ladder"] == state
    return instance


# --- validation ----------------------------------------------------------------


def test_a_valid_migration_loads_and_checks_complete(old: PathwayDefinition) -> None:
    new = load(v2(migrations="  - {from: 1, timers: recompute}\n"))
    spec = new.migration_from(1)
    assert spec is not None
    assert spec.timers == "recompute"
    assert spec.proposals == "keep"
    assert validate_migration(old, new, spec) == []


def test_the_map_must_name_existing_target_states() -> None:
    text = v2(migrations="  - from: 1\n    states: {ladder: {review: reveiw}}\n")
    _, problems = check_text(text)
    assert any("unknown state 'reveiw'" in p.message for p in problems)
    assert any(p.line is not None for p in problems)


def test_the_map_must_name_existing_tracks_and_an_earlier_version() -> None:
    text = v2(migrations="  - from: 2\n    states: {ladder_x: {review: done}}\n")
    _, problems = check_text(text)
    messages = [p.message for p in problems]
    assert any("not earlier" in m for m in messages)
    assert any("unknown track 'ladder_x'" in m for m in messages)


def test_an_incomplete_map_is_refused(old: PathwayDefinition) -> None:
    # Version 2 renames `review` to `assessment`: version 1's `review` needs a place.
    text = v2(migrations="  - {from: 1}\n").replace("      review: {}\n", "      assessment: {}\n")
    text = text.replace("to: review}", "to: assessment}").replace(
        "from: review", "from: assessment"
    )
    new = load(text)
    spec = new.migration_from(1)
    assert spec is not None
    problems = validate_migration(old, new, spec)
    assert [p.path for p in problems] == [("migrations", 0, "states", "ladder", "review")]
    assert "has no state in version 2" in problems[0].message
    fixed = load(
        text.replace("  - {from: 1}", "  - {from: 1, states: {ladder: {review: assessment}}}")
    )
    assert validate_migration(old, fixed, fixed.migrations[0]) == []


def test_the_map_names_old_states_only_and_every_old_track_survives(old: PathwayDefinition) -> None:
    new = load(v2(migrations="  - from: 1\n    states: {ladder: {revue: done}}\n"))
    problems = validate_migration(old, new, new.migrations[0])
    assert any("version 1 has no state 'revue'" in p.message for p in problems)
    two_tracks = load(
        V1.replace(
            "tracks:\n",
            "tracks:\n  extra:\n    initial: a\n    states:\n"
            "      a: {}\n      z: {final: true}\n    transitions:\n"
            "      - {from: a, event: discharge, to: z}\n",
            1,
        )
    )
    newer = load(v2(migrations="  - {from: 1}\n"))
    problems = validate_migration(two_tracks, newer, newer.migrations[0])
    assert any("track 'extra' of version 1 is gone" in p.message for p in problems)


def test_a_map_into_an_invasive_state_is_refused(old: PathwayDefinition) -> None:
    new = load(v2(migrations="  - from: 1\n    states: {ladder: {review: block}}\n"))
    problems = validate_migration(old, new, new.migrations[0])
    assert any("never enters an invasive state" in p.message for p in problems)


def test_the_registry_checks_each_migration_against_the_published_earlier_version() -> None:
    bad = load(v2(migrations="  - from: 1\n    states: {ladder: {review: block}}\n"))
    registry = Registry([load(V1), bad])
    assert any("invasive" in p.message for p in migration_problems(registry))
    alone = Registry([load(v2(migrations="  - {from: 1}\n"))])
    assert any(
        "version 1 of 'mig' is not published" in p.message for p in migration_problems(alone)
    )


def test_load_directories_refuses_an_invalid_migration(tmp_path: Path) -> None:
    (tmp_path / "mig.v1.yaml").write_text(V1)
    (tmp_path / "mig.v2.yaml").write_text(
        v2(migrations="  - from: 1\n    states: {ladder: {review: block}}\n")
    )
    with pytest.raises(DefinitionError, match="never enters an invasive state"):
        load_directories([tmp_path])


def test_timers_timed_by_a_threshold_in_days() -> None:
    text = V1.replace(
        "  relief_pct:", "  refill_days: {default: 28, unit: days, source: test}\n  relief_pct:"
    ).replace(
        "after: 2w, event: review_due}",
        "after: threshold.refill_days, before: 7d, event: review_due}",
    )
    definition = load(text)
    instance = MemoryInstance(definition, T0)
    instance.dispatch(Event(name="intake_done", key="a"), T0)
    assert instance.snapshot.timers["ladder.nudge"].due_at == T0 + timedelta(days=21)
    clinic = MemoryInstance(
        definition, T0, thresholds={"refill_days": ThresholdValue(42, "clinic")}
    )
    clinic.dispatch(Event(name="intake_done", key="a"), T0)
    assert clinic.snapshot.timers["ladder.nudge"].due_at == T0 + timedelta(days=35)
    _, problems = check_text(text.replace("threshold.refill_days", "threshold.refil_days"))
    assert any("unknown threshold 'refil_days'" in p.message for p in problems)
    _, problems = check_text(text.replace("threshold.refill_days", "threshold.relief_pct"))
    assert any("unit: days" in p.message for p in problems)


# --- classification ----------------------------------------------------------------


def test_automatic_when_nothing_but_the_version_changes(old: PathwayDefinition) -> None:
    new = load(v2(migrations="  - {from: 1, timers: recompute}\n"))
    instance = instance_in(old, "conventional")
    plan = plan_migration(instance.snapshot, old, new, new.migrations[0], T0 + timedelta(days=3))
    assert plan.classification is Classification.AUTOMATIC
    assert plan.changes() == []
    assert plan.effects == ()
    assert plan.configuration == dict(instance.snapshot.configuration)
    assert "nothing changes but the version" in plan.summary()


def test_changes_a_renamed_state_and_its_tasks(old: PathwayDefinition) -> None:
    text = v2(migrations="  - from: 1\n    states: {ladder: {intake: assessment}}\n")
    text = text.replace("    initial: intake", "    initial: assessment")
    text = text.replace("      intake:\n", "      assessment:\n").replace(
        "from: intake,", "from: assessment,"
    )
    new = load(text)
    instance = instance_in(old, "intake")
    plan = plan_migration(instance.snapshot, old, new, new.migrations[0], T0 + timedelta(days=1))
    assert plan.classification is Classification.CHANGES
    assert [(s.source, s.target) for s in plan.states] == [("intake", "assessment")]
    assert plan.configuration["ladder"].state == "assessment"
    # Time in state is kept: the state was entered when the old one was.
    assert (
        plan.configuration["ladder"].entered_at
        == instance.snapshot.configuration["ladder"].entered_at
    )
    assert [(t.source, t.target) for t in plan.tasks] == [("intake", "assessment")]
    assert plan.effects == ()  # a migration is not a transition: no on_enter effects run again


def test_needs_approval_when_a_state_with_a_pending_proposal_is_left(
    old: PathwayDefinition,
) -> None:
    instance = instance_in(old, "review", **{"mbb1.relief_pct": 90})
    instance.dispatch(Event(name="block_result", key="b", actor=PHYSICIAN), T0 + timedelta(days=5))
    assert len(instance.snapshot.proposals) == 1
    text = v2(migrations="  - from: 1\n    states: {ladder: {review: conventional}}\n")
    new = load(text)
    plan = plan_migration(instance.snapshot, old, new, new.migrations[0], T0 + timedelta(days=6))
    assert plan.classification is Classification.NEEDS_APPROVAL
    assert "with a pending proposal" in plan.approval[0]
    assert [p.action for p in plan.proposals] == ["close"]


def test_needs_approval_when_a_pending_invasive_escalation_has_new_criteria(
    old: PathwayDefinition,
) -> None:
    instance = instance_in(old, "review", **{"mbb1.relief_pct": 70})
    stricter = V1.replace("default: 80", "default: 60")  # a threshold default is not a criterion
    instance = MemoryInstance(load(stricter).model_copy(update={"version": 1}), T0)
    instance.set_facts(**{"mbb1.relief_pct": 70})
    for i, event in enumerate(["intake_done", "review_due"]):
        instance.dispatch(Event(name=event, key=f"x{i}"), T0)
    instance.dispatch(Event(name="block_result", key="b", actor=PHYSICIAN), T0)
    assert len(instance.snapshot.proposals) == 1
    new = load(
        v2(migrations="  - {from: 1}\n").replace(
            "guard: mbb1.relief_pct >= threshold.relief_pct",
            "guard: mbb1.relief_pct >= threshold.relief_pct and mbb1.relief_pct >= 75",
        )
    )
    plan = plan_migration(instance.snapshot, old, new, new.migrations[0], T0)
    assert plan.classification is Classification.NEEDS_APPROVAL
    assert "new criteria, which do not hold now" in plan.approval[0]
    assert plan.proposals[0].check is not None
    assert plan.proposals[0].check.result is False


def test_a_kept_proposal_with_the_same_escalation_is_kept(old: PathwayDefinition) -> None:
    instance = instance_in(old, "review", **{"mbb1.relief_pct": 90})
    instance.dispatch(Event(name="block_result", key="b", actor=PHYSICIAN), T0)
    new = load(v2(migrations="  - {from: 1}\n"))
    plan = plan_migration(instance.snapshot, old, new, new.migrations[0], T0)
    assert plan.classification is Classification.AUTOMATIC
    assert [p.action for p in plan.proposals] == ["keep"]
    closing = load(v2(migrations="  - {from: 1, proposals: close}\n"))
    plan = plan_migration(instance.snapshot, old, closing, closing.migrations[0], T0)
    assert plan.classification is Classification.CHANGES
    assert [p.action for p in plan.proposals] == ["close"]


def test_blocked_without_a_valid_mapping(old: PathwayDefinition) -> None:
    # Not validated against version 1 (a file given by path): the planner still refuses.
    text = v2(migrations="  - {from: 1}\n").replace("      review: {}\n", "      assessment: {}\n")
    text = text.replace("to: review}", "to: assessment}").replace(
        "from: review", "from: assessment"
    )
    new = load(text)
    instance = instance_in(old, "review")
    plan = plan_migration(instance.snapshot, old, new, new.migrations[0], T0)
    assert plan.classification is Classification.BLOCKED
    assert "no valid mapping" in plan.blocked[0]
    assert plan.configuration == dict(instance.snapshot.configuration)
    elsewhere = instance_in(old, "conventional")
    assert plan_migration(elsewhere.snapshot, old, new, new.migrations[0], T0).applicable


@pytest.mark.parametrize("source", ["intake", "conventional", "review", "done"])
def test_a_migration_never_enters_an_invasive_state(old: PathwayDefinition, source: str) -> None:
    new = load(v2(migrations=f"  - from: 1\n    states: {{ladder: {{{source}: block}}}}\n"))
    snapshot = Snapshot(configuration={"ladder": old_state(source)})
    plan = plan_migration(snapshot, old, new, new.migrations[0], T0)
    assert plan.classification is Classification.BLOCKED
    assert "never enters an invasive state" in plan.blocked[0]
    assert plan.configuration["ladder"].state == source


def test_staying_in_an_approved_invasive_state_is_allowed(old: PathwayDefinition) -> None:
    new = load(v2(migrations="  - {from: 1}\n"))
    snapshot = Snapshot(configuration={"ladder": old_state("block")})
    plan = plan_migration(snapshot, old, new, new.migrations[0], T0)
    assert plan.classification is Classification.AUTOMATIC


def old_state(state: str):
    from workflows.model import TrackState

    return TrackState(state, T0)


def test_the_plan_refuses_a_spec_for_another_version(old: PathwayDefinition) -> None:
    new = load(v2(migrations="  - {from: 1}\n"))
    with pytest.raises(ValueError, match="migrates from version 1"):
        plan_migration(Snapshot(configuration={}), new, new, new.migrations[0], T0)


# --- timers ----------------------------------------------------------------

NEW_TIMERS = """      - {name: review, state: conventional, after: 8w, event: review_due}
      - {name: nudge, state: conventional, after: 2w, event: review_due}
      - {name: call, state: conventional, after: 1w, event: review_due}
"""


@pytest.mark.parametrize(
    ("policy", "review_due", "call_due"),
    [
        # keep: the pending due time stays; a timer new to the state runs as if since entry
        ("keep", T0 + timedelta(weeks=12), T0 + timedelta(weeks=3)),
        # restart: from the migration
        ("restart", T0 + timedelta(weeks=3, days=56), T0 + timedelta(weeks=4)),
        # recompute: from entry with the new duration (8 weeks)
        ("recompute", T0 + timedelta(weeks=8), T0 + timedelta(weeks=3)),
    ],
)
def test_timer_policies(old: PathwayDefinition, policy: str, review_due, call_due) -> None:
    instance = MemoryInstance(old, T0)
    instance.dispatch(Event(name="intake_done", key="a"), T0)
    now = T0 + timedelta(weeks=3)
    fired = instance.fire_due_timers(now)  # the 2-week nudge fired already
    assert [d.event.name for d in fired if d.event] == ["review_due"]
    # (the nudge moved the ladder to review; go back to a conventional snapshot with the nudge
    # fired and the review pending)
    snapshot = Snapshot(
        configuration={"ladder": old_state("conventional")},
        timers={
            k: t for k, t in MemoryInstance_after_intake(old).timers.items() if k != "ladder.nudge"
        },
    )
    new = load(v2(migrations=f"  - {{from: 1, timers: {policy}}}\n", timers=NEW_TIMERS))
    plan = plan_migration(snapshot, old, new, new.migrations[0], now)
    after = plan.timers_after(snapshot)
    assert after["ladder.review"].due_at == review_due
    assert after["ladder.call"].due_at == call_due
    if policy == "restart":
        assert after["ladder.nudge"].due_at == now + timedelta(weeks=2)
    else:  # fired in this state already: not started again (no reminder sent twice)
        assert "ladder.nudge" not in after
    assert plan.classification is Classification.CHANGES


def MemoryInstance_after_intake(old: PathwayDefinition) -> Snapshot:
    instance = MemoryInstance(old, T0)
    instance.dispatch(Event(name="intake_done", key="a"), T0)
    return instance.snapshot


def test_recompute_makes_an_overdue_timer_due_now_and_cancels_a_removed_one(
    old: PathwayDefinition,
) -> None:
    snapshot = MemoryInstance_after_intake(old)
    now = T0 + timedelta(days=10)
    timers = "      - {name: review, state: conventional, after: 1w, event: review_due}\n"
    new = load(v2(migrations="  - {from: 1, timers: recompute}\n", timers=timers))
    plan = plan_migration(snapshot, old, new, new.migrations[0], now)
    by_key = {t.key: t for t in plan.timers}
    assert by_key["ladder.review"].action == "move"
    assert by_key["ladder.review"].after == now
    assert "overdue" in by_key["ladder.review"].why
    assert by_key["ladder.nudge"].action == "cancel"
    assert set(plan.timers_after(snapshot)) == {"ladder.review"}


# --- check-in series ----------------------------------------------------------------


@pytest.mark.parametrize("policy", ["keep", "restart", "stop"])
def test_checkin_series_policies(old: PathwayDefinition, policy: str) -> None:
    snapshot = MemoryInstance_after_intake(old)
    series = [ActiveSeries("peg_weekly", "peg", timedelta(weeks=1), T0 + timedelta(days=7))]
    new = load(
        v2(migrations=f"  - {{from: 1, checkins: {policy}}}\n").replace(
            "every: 1w, series: peg_weekly", "every: 2w, series: peg_weekly"
        )
    )
    plan = plan_migration(snapshot, old, new, new.migrations[0], T0, checkins=series)
    kinds = [(e.kind, getattr(e, "every", None)) for e in plan.effects]
    if policy == "keep":
        assert plan.checkins == ()
        assert kinds == []
        assert plan.classification is Classification.AUTOMATIC
    elif policy == "restart":
        assert [c.action for c in plan.checkins] == ["restart"]
        assert kinds == [("stop_checkins", None), ("start_checkins", timedelta(weeks=2))]
    else:
        assert [c.action for c in plan.checkins] == ["stop"]
        assert kinds == [("stop_checkins", None)]


# --- the built-in pathway ----------------------------------------------------------------


@pytest.fixture(scope="module")
def builtin() -> Registry:
    return load_directories([Path("carehub/pathways/definitions")])


def pump_snapshot(definition: PathwayDefinition, thresholds: dict[str, ThresholdValue]) -> Snapshot:
    """A patient on version 1 whose refill cycle started at T0 (timers of a 28-day cycle)."""
    configuration = {track: old_state(spec.initial) for track, spec in definition.tracks.items()}
    configuration["ladder"] = old_state("pump_active")
    from workflows.model import ActiveTimer

    timers = {
        f"ladder.{t.name}": ActiveTimer(f"ladder.{t.name}", "ladder", "pump_active", t.event,
                                        T0 + t.duration())
        for t in definition.tracks["ladder"].timers
        if t.state == "pump_active"
    }  # fmt: skip
    return Snapshot(configuration=configuration, thresholds=thresholds, timers=timers)


def test_intractable_pain_v2_migrates_the_refill_cycle_to_the_clinic_interval(
    builtin: Registry,
) -> None:
    v1, v2_ = builtin.get("intractable-pain", 1), builtin.get("intractable-pain", 2)
    spec = v2_.migration_from(1)
    assert spec is not None
    assert spec.timers == "recompute"
    now = T0 + timedelta(days=3)
    default = plan_migration(pump_snapshot(v1, {}), v1, v2_, spec, now)
    assert default.classification is Classification.AUTOMATIC  # 28 days: the same reminders
    clinic = {"pump_refill_interval_days": ThresholdValue(42, "Clinic: 40 mL reservoir")}
    plan = plan_migration(pump_snapshot(v1, clinic), v1, v2_, spec, now)
    assert plan.classification is Classification.CHANGES
    due = {t.key: t.after for t in plan.timers}
    assert due == {
        "ladder.refill_notice_14": T0 + timedelta(days=28),
        "ladder.refill_notice_21": T0 + timedelta(days=35),
        "ladder.refill_notice_26": T0 + timedelta(days=40),
        "ladder.refill_overdue": T0 + timedelta(days=42),
    }


def test_intractable_pain_v1_to_v2_never_blocks_a_state(builtin: Registry) -> None:
    v1, v2_ = builtin.get("intractable-pain", 1), builtin.get("intractable-pain", 2)
    spec = v2_.migration_from(1)
    assert spec is not None
    assert validate_migration(v1, v2_, spec) == []
    for track, track_spec in v1.tracks.items():
        for state in track_spec.states:
            configuration = {t: old_state(s.initial) for t, s in v1.tracks.items()}
            configuration[track] = old_state(state)
            plan = plan_migration(Snapshot(configuration=configuration), v1, v2_, spec, T0)
            assert plan.applicable, (track, state, plan.blocked)


def test_recompute_keeps_the_due_time_of_a_timer_whose_duration_did_not_change(
    old: PathwayDefinition,
) -> None:
    from dataclasses import replace

    snapshot = MemoryInstance_after_intake(old)
    # Stored an hour off the arithmetic (e.g. computed across a clock change): it stays.
    review = snapshot.timers["ladder.review"]
    shifted = replace(review, due_at=review.due_at + timedelta(hours=1))
    snapshot = replace(snapshot, timers={**snapshot.timers, "ladder.review": shifted})
    new = load(v2(migrations="  - {from: 1, timers: recompute}\n"))
    plan = plan_migration(snapshot, old, new, new.migrations[0], T0 + timedelta(days=1))
    assert plan.classification is Classification.AUTOMATIC
    assert plan.timers_after(snapshot)["ladder.review"].due_at == shifted.due_at
