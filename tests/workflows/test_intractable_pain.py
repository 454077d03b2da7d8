"""The clinic's intractable-pain pathway on the pure engine (no database).

- a table with a row for every transition of the definition (and a test that it stays complete);
- walk-throughs of the main routes, checking each decision's explanation;
- Hypothesis stateful invariants on random event sequences of this definition;
- thresholds are configuration: every clinical number a guard compares with is a threshold.
"""

from __future__ import annotations

import ast
import dataclasses
from collections import Counter
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from tests.workflows.conftest import T0
from workflows import (
    APPROVE,
    REJECT,
    Actor,
    ApprovalNotPermitted,
    CriteriaNoLongerMet,
    Decision,
    Event,
    InvalidEvent,
    MemoryInstance,
    Outcome,
    PathwayDefinition,
    ThresholdValue,
    available_events,
    load_definition,
    mermaid,
)
from workflows.definition import transition_id
from workflows.model import CreateTask, GuardCheck, Notify, RaiseFlag, StartCheckins, StopCheckins

DEFINITION_PATH = (
    Path(__file__).resolve().parents[2]
    / "carehub"
    / "pathways"
    / "definitions"
    / "intractable-pain.v1.yaml"
)
PAIN = load_definition(DEFINITION_PATH)

PHYSICIAN = Actor(id="dr-raman", role="physician")
COORDINATOR = Actor(id="nurse-okafor", role="coordinator")

# A patient who meets the entry criteria and has had enough conservative care for any route.
ENTRY_FACTS: dict[str, Any] = {
    "peg.baseline": 7.3,
    "phq9.baseline": 11,
    "gad7.baseline": 8,
    "pain.months": 14,
    "failed_treatment_classes": 3,
    "conservative_care.weeks": 20,
}
NEUROMOD_FACTS: dict[str, Any] = {"pt.sessions_attended": 10, "substance_use.active": False}


# --- driving an instance ------------------------------------------------------------------------


class Walk:
    """A MemoryInstance with a clock, event keys and shortcuts for approvals and history."""

    def __init__(
        self,
        definition: PathwayDefinition = PAIN,
        thresholds: Mapping[str, ThresholdValue] | None = None,
    ) -> None:
        self.now = T0
        self.counter = 0
        self.instance = MemoryInstance(definition, self.now, thresholds=thresholds)

    @property
    def states(self) -> dict[str, str]:
        return self.instance.states

    def facts(self, facts: Mapping[str, Any]) -> None:
        self.instance.set_facts(**facts)

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)

    def occurred(self, kind: str, *days_ago: int) -> None:
        """Procedures done `days_ago` (the record the Django side keeps for count/days_since)."""
        snapshot = self.instance.snapshot
        past = tuple(self.now - timedelta(days=d) for d in days_ago)
        occurrences = {**snapshot.occurrences, kind: (*snapshot.occurrences.get(kind, ()), *past)}
        self.instance.snapshot = dataclasses.replace(snapshot, occurrences=occurrences)

    def _key(self) -> str:
        self.counter += 1
        return f"e{self.counter}"

    def send(self, name: str, **kwargs: Any) -> Decision:
        return self.instance.dispatch(Event(name=name, key=self._key(), **kwargs), self.now)

    def fire_event(self, name: str) -> Decision:
        """`name` as its timer firing when such a timer is active, else as a plain event."""
        timers = [t for t in self.instance.snapshot.timers.values() if t.event == name]
        if len(timers) == 1:
            return self.send(name, timer_key=timers[0].key)
        return self.send(name)

    def proposal(self) -> str:
        [proposal] = self.instance.snapshot.proposals
        return proposal

    def approve(self, actor: Actor = PHYSICIAN) -> Decision:
        return self.send(APPROVE, actor=actor, proposal_id=self.proposal())

    def fire(self) -> list[Decision]:
        return self.instance.fire_due_timers(self.now)


# A preparation is a parent preparation plus steps:
#   ("facts", {...}) | ("send", event) | ("approve",) | ("advance", weeks)
#   | ("occurred", kind, days ago)
Step = tuple[Any, ...]
PATHS: dict[str, tuple[str | None, list[Step]]] = {
    "start": (None, []),
    "conventional": ("start", [("facts", ENTRY_FACTS), ("send", "intake_completed")]),
    "conventional+12w": ("conventional", [("advance", 12)]),
    "interventional_review": (
        "conventional+12w",
        [("facts", {"peg.improvement_pct": 10}), ("send", "conventional_review_due")],
    ),
    "maintenance": (
        "conventional+12w",
        [("facts", {"peg.improvement_pct": 40}), ("send", "conventional_review_due")],
    ),
    "mbb1": ("conventional", [("send", "mbb_requested"), ("approve",)]),
    "mbb2 proposed": (
        "mbb1",
        [("facts", {"mbb1.relief_pct": 90}), ("send", "mbb1_result_recorded")],
    ),
    "mbb2": ("mbb2 proposed", [("approve",)]),
    "rfa": (
        "mbb2",
        [("facts", {"mbb2.relief_pct": 85}), ("send", "mbb2_result_recorded"), ("approve",)],
    ),
    "rfa_followup": ("rfa", [("occurred", "rfa", 0), ("send", "rfa_performed")]),
    "rfa_followup+26w": ("rfa_followup", [("advance", 26)]),
    "esi": ("conventional", [("send", "esi_requested"), ("approve",)]),
    "nerve_block": ("conventional", [("send", "nerve_block_requested"), ("approve",)]),
    "psych_evaluation": ("conventional", [("send", "neuromodulation_referred")]),
    "psych_treatment": (
        "psych_evaluation",
        [
            ("facts", {"psych_eval.outcome": "deferred_pending_treatment"}),
            ("send", "psych_evaluation_recorded"),
        ],
    ),
    "neuromodulation_candidate": (
        "psych_evaluation",
        [("facts", {"psych_eval.outcome": "cleared"}), ("send", "psych_evaluation_recorded")],
    ),
    "scs_trial": (
        "neuromodulation_candidate",
        [("facts", NEUROMOD_FACTS), ("send", "scs_trial_requested"), ("approve",)],
    ),
    "scs_implant proposed": (
        "scs_trial",
        [("facts", {"scs_trial.relief_pct": 70}), ("send", "scs_trial_result_recorded")],
    ),
    "scs_implant": ("scs_implant proposed", [("approve",)]),
    "scs_followup": ("scs_implant", [("send", "implant_performed")]),
    "it_trial": (
        "neuromodulation_candidate",
        [("facts", NEUROMOD_FACTS), ("send", "it_trial_requested"), ("approve",)],
    ),
    "pump_implant": (
        "it_trial",
        [
            ("facts", {"it_trial.relief_pct": 60, "adverse_effects.intolerable": False}),
            ("send", "it_trial_result_recorded"),
            ("approve",),
        ],
    ),
    "pump_active": ("pump_implant", [("send", "implant_performed")]),
    "pt_active": ("start", [("send", "pt_started")]),
    "pt_home": ("pt_active", [("facts", {"pt.sessions_attended": 14}), ("send", "pt_completed")]),
    "cbt_initial": ("start", [("send", "cbt_started")]),
    "cbt_skill": (
        "cbt_initial",
        [("facts", {"cbt.sessions_attended": 3}), ("send", "cbt_session_logged")],
    ),
    "cbt_discharge": (
        "cbt_skill",
        [("facts", {"cbt.sessions_attended": 10}), ("send", "cbt_session_logged")],
    ),
    "cbt_completed": (
        "cbt_discharge",
        [("facts", {"cbt.sessions_attended": 12}), ("send", "cbt_session_logged")],
    ),
    "opioid_initiation": ("start", [("send", "opioid_started")]),
    "opioid_monitoring": (
        "opioid_initiation",
        [
            ("facts", {"pdmp.days_since_check": 3, "udt.days_since": 20}),
            ("send", "opioid_reassessed"),
        ],
    ),
}


def prepare(name: str, walk: Walk | None = None) -> Walk:
    parent, steps = PATHS[name]
    walk = walk or Walk()
    if parent is not None:
        prepare(parent, walk)
    for step in steps:
        kind = step[0]
        if kind == "facts":
            walk.facts(step[1])
        elif kind == "send":
            decision = walk.send(step[1])
            assert decision.changed, f"{name}: {step[1]}: {decision.explanation.summary()}"
        elif kind == "approve":
            assert walk.approve().outcome is Outcome.TRANSITIONED
        elif kind == "advance":
            walk.advance(weeks=step[1])
        elif kind == "occurred":
            walk.occurred(step[1], step[2])
        else:  # pragma: no cover
            raise AssertionError(step)
    return walk


# --- the transition table -------------------------------------------------------------------------


class Row(NamedTuple):
    name: str
    prep: str
    facts: dict[str, Any]
    event: str  # "approve": the pending proposal, by a physician
    expected: dict[str, str]  # tracks that move; every other track must stay where it was
    outcome: Outcome
    effects: list[str]  # effect kinds, every track, in order
    covers: tuple[str, ...] = ()  # the transitions this row shows being taken (or proposed)
    history: dict[str, tuple[int, ...]] = {}  # kind → days ago (procedures already done)


T, P, N = Outcome.TRANSITIONED, Outcome.PROPOSED, Outcome.NO_CHANGE
PROPOSE = ["propose_escalation"]
TASK = ["create_task"]
STOP_SERIES = ["stop_checkins"] * 4  # discharge stops the pathway's own check-in series
ALL_DISCHARGED = {
    "ladder": "discharged",
    "physical_therapy": "discharged",
    "cbt": "discharged",
    "medication_safety": "discharged",
}
TO_MAINTENANCE = ["stop_checkins", "start_checkins", "notify"]  # maintenance on entry

TABLE: list[Row] = [
    # --- ladder: intake ---
    Row("entry criteria met", "start", ENTRY_FACTS, "intake_completed",
        {"ladder": "conventional"}, T, ["start_checkins"] * 3 + TASK, ("ladder#0",)),
    Row("baselines missing", "start", {"pain.months": 14, "failed_treatment_classes": 3},
        "intake_completed", {}, T, TASK, ("ladder#1",)),
    Row("pain too recent", "start", {**ENTRY_FACTS, "pain.months": 4}, "intake_completed",
        {}, T, TASK, ("ladder#2",)),
    Row("too few failed classes", "start", {**ENTRY_FACTS, "failed_treatment_classes": 1},
        "intake_completed", {}, T, TASK, ("ladder#2",)),
    # --- ladder: conventional care review ---
    Row("response at 12 weeks", "conventional+12w", {"peg.improvement_pct": 35},
        "conventional_review_due", {"ladder": "maintenance"}, T, TO_MAINTENANCE, ("ladder#3",)),
    Row("response with intolerable effects", "conventional+12w",
        {"peg.improvement_pct": 35, "adverse_effects.intolerable": True},
        "conventional_review_due", {"ladder": "interventional_review"}, T, TASK, ("ladder#4",)),
    Row("failed trial at 12 weeks", "conventional+12w", {"peg.improvement_pct": 12},
        "conventional_review_due", {"ladder": "interventional_review"}, T, TASK, ("ladder#4",)),
    Row("review with no PEG score", "conventional+12w", {}, "conventional_review_due",
        {}, T, TASK, ("ladder#5",)),
    Row("review before the clinic minimum", "conventional", {"peg.improvement_pct": 12},
        "conventional_review_due", {}, T, TASK, ("ladder#5",)),
    # --- ladder: route requests ---
    Row("facet blocks after 3 months", "conventional", {}, "mbb_requested", {}, P, PROPOSE,
        ("ladder#6",)),
    Row("facet blocks from the review", "interventional_review", {}, "mbb_requested", {}, P,
        PROPOSE, ("ladder#6",)),
    Row("facet blocks too early", "conventional", {"conservative_care.weeks": 8},
        "mbb_requested", {}, N, []),
    Row("first epidural injection", "conventional", {}, "esi_requested", {}, P, PROPOSE,
        ("ladder#7",)),
    Row("repeat injection after relief", "interventional_review", {"esi.relief_pct": 60},
        "esi_requested", {}, P, PROPOSE, ("ladder#7",), {"esi": (30,)}),
    Row("repeat injection too soon", "conventional", {"esi.relief_pct": 60}, "esi_requested",
        {}, N, [], (), {"esi": (10,)}),
    Row("repeat injection without relief", "conventional", {"esi.relief_pct": 30},
        "esi_requested", {}, N, [], (), {"esi": (60,)}),
    Row("injection cap in 12 months", "conventional", {"esi.relief_pct": 70}, "esi_requested",
        {}, N, [], (), {"esi": (20, 100, 200, 300)}),
    Row("injection before 4 weeks of care", "conventional", {"conservative_care.weeks": 3},
        "esi_requested", {}, N, []),
    Row("first nerve block", "conventional", {}, "nerve_block_requested", {}, P, PROPOSE,
        ("ladder#8",)),
    Row("repeat nerve block after relief", "conventional", {"nerve_block.relief_pct": 50},
        "nerve_block_requested", {}, P, PROPOSE, ("ladder#8",), {"nerve_block": (90,)}),
    Row("repeat nerve block without relief", "conventional", {"nerve_block.relief_pct": 20},
        "nerve_block_requested", {}, N, [], (), {"nerve_block": (90,)}),
    Row("nerve block cap", "conventional", {"nerve_block.relief_pct": 80},
        "nerve_block_requested", {}, N, [], (), {"nerve_block": (30, 120, 200, 280)}),
    Row("neuromodulation referral", "interventional_review", {}, "neuromodulation_referred",
        {"ladder": "psych_evaluation"}, T, TASK, ("ladder#9",)),
    Row("neuromodulation referral too early", "conventional", {"pain.months": 5},
        "neuromodulation_referred", {}, N, []),
    # --- ladder: medial branch blocks and ablation ---
    Row("positive first block", "mbb1", {"mbb1.relief_pct": 85}, "mbb1_result_recorded",
        {}, P, PROPOSE, ("ladder#10",)),
    Row("second block approved", "mbb2 proposed", {}, "approve", {"ladder": "mbb2"}, T, TASK,
        ("ladder#10",)),
    Row("negative first block", "mbb1", {"mbb1.relief_pct": 70}, "mbb1_result_recorded",
        {"ladder": "interventional_review"}, T, TASK, ("ladder#11",)),
    Row("first block result missing", "mbb1", {}, "mbb1_result_recorded", {}, N, []),
    Row("positive second block", "mbb2", {"mbb2.relief_pct": 80}, "mbb2_result_recorded",
        {}, P, PROPOSE, ("ladder#12",)),
    Row("negative second block", "mbb2", {"mbb2.relief_pct": 60}, "mbb2_result_recorded",
        {"ladder": "interventional_review"}, T, TASK, ("ladder#13",)),
    Row("ablation done", "rfa", {}, "rfa_performed", {"ladder": "rfa_followup"}, T,
        ["start_checkins"], ("ladder#14",)),
    Row("repeat ablation eligible", "rfa_followup+26w",
        {"rfa.relief_pct": 70, "rfa.relief_weeks": 20}, "rfa_result_recorded", {}, P, PROPOSE,
        ("ladder#15",)),
    Row("relief not yet long enough", "rfa_followup",
        {"rfa.relief_pct": 70, "rfa.relief_weeks": 4}, "rfa_result_recorded", {}, N, []),
    Row("ablation too recent", "rfa_followup",
        {"rfa.relief_pct": 70, "rfa.relief_weeks": 14}, "rfa_result_recorded", {}, N, []),
    Row("six-month review: repeat", "rfa_followup+26w",
        {"rfa.relief_pct": 70, "rfa.relief_weeks": 20}, "rfa_repeat_review_due", {}, P,
        PROPOSE, ("ladder#16",)),
    Row("ablation did not help", "rfa_followup", {"rfa.relief_pct": 30}, "rfa_result_recorded",
        {"ladder": "interventional_review"}, T, ["stop_checkins", *TASK], ("ladder#17",)),
    Row("six-month review: no help", "rfa_followup+26w", {"rfa.relief_pct": 30},
        "rfa_repeat_review_due", {"ladder": "interventional_review"}, T,
        ["stop_checkins", *TASK], ("ladder#18",)),
    Row("six-month review: short relief", "rfa_followup+26w",
        {"rfa.relief_pct": 70, "rfa.relief_weeks": 8}, "rfa_repeat_review_due", {}, T, TASK,
        ("ladder#19",)),
    Row("ablation course completed", "rfa_followup", {}, "rfa_course_completed",
        {"ladder": "maintenance"}, T, ["stop_checkins", *TO_MAINTENANCE], ("ladder#20",)),
    Row("epidural result", "esi", {}, "esi_result_recorded", {"ladder": "conventional"}, T, [],
        ("ladder#21",)),
    Row("nerve block result", "nerve_block", {}, "nerve_block_result_recorded",
        {"ladder": "conventional"}, T, [], ("ladder#22",)),
    # --- ladder: psychological evaluation ---
    Row("cleared with conditions", "psych_evaluation",
        {"psych_eval.outcome": "cleared_with_conditions"}, "psych_evaluation_recorded",
        {"ladder": "neuromodulation_candidate"}, T, TASK, ("ladder#23",)),
    Row("cleared after treatment", "psych_treatment", {"psych_eval.outcome": "cleared"},
        "psych_evaluation_recorded", {"ladder": "neuromodulation_candidate"}, T, TASK,
        ("ladder#23",)),
    Row("deferred pending treatment", "psych_evaluation",
        {"psych_eval.outcome": "deferred_pending_treatment"}, "psych_evaluation_recorded",
        {"ladder": "psych_treatment"}, T, TASK, ("ladder#24",)),
    Row("not cleared", "psych_evaluation", {"psych_eval.outcome": "not_cleared"},
        "psych_evaluation_recorded", {"ladder": "interventional_review"}, T,
        ["raise_flag", *TASK], ("ladder#25",)),
    Row("evaluation outcome missing", "psych_evaluation", {}, "psych_evaluation_recorded",
        {}, N, []),
    Row("re-evaluation due", "psych_treatment", {}, "psych_reevaluation_due",
        {"ladder": "psych_evaluation"}, T, TASK, ("ladder#26",)),
    # --- ladder: neuromodulation ---
    Row("stimulator trial requested", "neuromodulation_candidate", NEUROMOD_FACTS,
        "scs_trial_requested", {}, P, PROPOSE, ("ladder#27",)),
    Row("trial with too little PT", "neuromodulation_candidate",
        {**NEUROMOD_FACTS, "pt.sessions_attended": 5}, "scs_trial_requested", {}, N, []),
    Row("trial with active substance use", "neuromodulation_candidate",
        {**NEUROMOD_FACTS, "substance_use.active": True}, "scs_trial_requested", {}, N, []),
    Row("trial with substance use unknown", "neuromodulation_candidate",
        {"pt.sessions_attended": 10}, "scs_trial_requested", {}, N, []),
    Row("intrathecal trial requested", "neuromodulation_candidate", NEUROMOD_FACTS,
        "it_trial_requested", {}, P, PROPOSE, ("ladder#28",)),
    Row("stimulator trial ended", "scs_trial", {}, "scs_trial_ended", {}, T, TASK,
        ("ladder#29",)),
    Row("successful stimulator trial", "scs_trial", {"scs_trial.relief_pct": 50},
        "scs_trial_result_recorded", {}, P, PROPOSE, ("ladder#30",)),
    Row("implant approved", "scs_implant proposed", {}, "approve", {"ladder": "scs_implant"},
        T, ["stop_checkins", *TASK], ("ladder#30",)),
    Row("unsuccessful stimulator trial", "scs_trial", {"scs_trial.relief_pct": 30},
        "scs_trial_result_recorded", {"ladder": "neuromodulation_candidate"}, T,
        ["stop_checkins", *TASK], ("ladder#31",)),
    Row("stimulator implanted", "scs_implant", {}, "implant_performed",
        {"ladder": "scs_followup"}, T, ["create_task", "create_task", "notify", "start_checkins"],
        ("ladder#32",)),
    Row("post-implant review", "scs_followup", {}, "post_implant_review_due",
        {"ladder": "maintenance"}, T,
        ["stop_checkins", "stop_checkins", "start_checkins", *TO_MAINTENANCE], ("ladder#33",)),
    Row("intrathecal trial ended", "it_trial", {}, "it_trial_ended", {}, T, TASK,
        ("ladder#34",)),
    Row("successful intrathecal trial", "it_trial",
        {"it_trial.relief_pct": 55, "adverse_effects.intolerable": False},
        "it_trial_result_recorded", {}, P, PROPOSE, ("ladder#35",)),
    Row("intrathecal trial, effects unknown", "it_trial", {"it_trial.relief_pct": 55},
        "it_trial_result_recorded", {}, N, []),
    Row("intrathecal trial not tolerated", "it_trial",
        {"it_trial.relief_pct": 55, "adverse_effects.intolerable": True},
        "it_trial_result_recorded", {"ladder": "neuromodulation_candidate"}, T,
        ["stop_checkins", *TASK], ("ladder#36",)),
    Row("unsuccessful intrathecal trial", "it_trial",
        {"it_trial.relief_pct": 20, "adverse_effects.intolerable": False},
        "it_trial_result_recorded", {"ladder": "neuromodulation_candidate"}, T,
        ["stop_checkins", *TASK], ("ladder#36",)),
    Row("pump implanted", "pump_implant", {}, "implant_performed", {"ladder": "pump_active"}, T,
        ["create_task", "create_task", "notify", "stop_checkins", "start_checkins"],
        ("ladder#37",)),
    Row("refill in 14 days", "pump_active", {}, "pump_refill_notice_due", {}, T,
        ["notify", *TASK], ("ladder#38",)),
    Row("refill in 7 days", "pump_active", {}, "pump_refill_confirm_due", {}, T,
        ["notify", *TASK], ("ladder#39",)),
    Row("refill in 2 days", "pump_active", {}, "pump_refill_final_notice_due", {}, T,
        ["notify", *TASK], ("ladder#40",)),
    Row("refill missed", "pump_active", {}, "pump_refill_missed", {}, T,
        ["raise_flag", "notify", "notify", *TASK], ("ladder#41",)),
    Row("pump refilled", "pump_active", {}, "pump_refilled", {}, T, TASK, ("ladder#42",)),
    # --- ladder: reassessment and discharge ---
    Row("reassess from maintenance", "maintenance", {}, "reassessment_requested",
        {"ladder": "conventional"}, T, ["stop_checkins", "start_checkins"], ("ladder#43",)),
    Row("reassess after the first block", "mbb1", {}, "reassessment_requested",
        {"ladder": "conventional"}, T, [], ("ladder#44",)),
    Row("reassess during a trial", "scs_trial", {}, "reassessment_requested",
        {"ladder": "conventional"}, T, ["stop_checkins"], ("ladder#44",)),
    Row("no reassessment from the refill cycle", "pump_active", {}, "reassessment_requested",
        {}, N, []),
    Row("discharged with a pump", "pump_active", {}, "discharge_recorded", ALL_DISCHARGED, T,
        ["raise_flag", "notify", *STOP_SERIES], ("ladder#45",)),
    Row("discharged", "conventional", {}, "discharge_recorded", ALL_DISCHARGED, T, STOP_SERIES,
        ("ladder#46", "physical_therapy#8", "cbt#10", "medication_safety#12")),
    # --- physical therapy ---
    Row("programme starts", "start", {}, "pt_started", {"physical_therapy": "active"}, T,
        ["create_task", "start_checkins"], ("physical_therapy#0",)),
    Row("further course", "pt_home", {}, "pt_started", {"physical_therapy": "active"}, T,
        ["create_task", "start_checkins"], ("physical_therapy#0",)),
    Row("first session logged", "start", {"pt.sessions_attended": 1}, "pt_session_logged",
        {"physical_therapy": "active"}, T, ["create_task", "start_checkins"],
        ("physical_therapy#1",)),
    Row("later sessions change nothing", "pt_active", {"pt.sessions_attended": 4},
        "pt_session_logged", {}, N, []),
    Row("midpoint, low attendance", "pt_active", {"pt.sessions_attended": 3}, "pt_midpoint_due",
        {}, T, TASK, ("physical_therapy#2",)),
    Row("midpoint", "pt_active", {"pt.sessions_attended": 7}, "pt_midpoint_due", {}, T, TASK,
        ("physical_therapy#3",)),
    Row("programme end, full dose", "pt_active", {"pt.sessions_attended": 12},
        "pt_programme_end_due", {"physical_therapy": "home_programme"}, T,
        ["stop_checkins", "create_task", "notify"], ("physical_therapy#4",)),
    Row("programme end, low attendance", "pt_active", {"pt.sessions_attended": 9},
        "pt_programme_end_due", {"physical_therapy": "home_programme"}, T,
        ["stop_checkins", "raise_flag", "create_task", "create_task", "notify"],
        ("physical_therapy#5",)),
    Row("completed, full dose", "pt_active", {"pt.sessions_attended": 14}, "pt_completed",
        {"physical_therapy": "home_programme"}, T, ["stop_checkins", "create_task", "notify"],
        ("physical_therapy#6",)),
    Row("completed, attendance unknown", "pt_active", {}, "pt_completed",
        {"physical_therapy": "home_programme"}, T,
        ["stop_checkins", "raise_flag", "create_task", "create_task", "notify"],
        ("physical_therapy#7",)),
    Row("discharged from PT", "pt_active", {}, "discharge_recorded", ALL_DISCHARGED, T,
        [*STOP_SERIES, "stop_checkins"], ("physical_therapy#8",)),
    # --- CBT ---
    Row("CBT starts", "start", {}, "cbt_started", {"cbt": "initial_phase"}, T, [], ("cbt#0",)),
    Row("first CBT session logged", "start", {"cbt.sessions_attended": 1}, "cbt_session_logged",
        {"cbt": "initial_phase"}, T, [], ("cbt#1",)),
    Row("initial phase done", "cbt_initial", {"cbt.sessions_attended": 3}, "cbt_session_logged",
        {"cbt": "skill_building"}, T, [], ("cbt#2",)),
    Row("initial phase session", "cbt_initial", {"cbt.sessions_attended": 2},
        "cbt_session_logged", {}, T, [], ("cbt#3",)),
    Row("skills done", "cbt_skill", {"cbt.sessions_attended": 10}, "cbt_session_logged",
        {"cbt": "discharge_phase"}, T, TASK, ("cbt#4",)),
    Row("skill session", "cbt_skill", {"cbt.sessions_attended": 6}, "cbt_session_logged", {}, T,
        [], ("cbt#5",)),
    Row("protocol completed", "cbt_discharge", {"cbt.sessions_attended": 12},
        "cbt_session_logged", {"cbt": "completed"}, T, TASK, ("cbt#6",)),
    Row("discharge phase session", "cbt_discharge", {"cbt.sessions_attended": 11},
        "cbt_session_logged", {}, T, [], ("cbt#7",)),
    Row("no session for a week", "cbt_skill", {}, "cbt_session_due", {}, T, TASK, ("cbt#8",)),
    Row("three-month follow-up", "cbt_completed", {}, "cbt_followup_due", {}, T, TASK,
        ("cbt#9",)),
    Row("discharged from CBT", "cbt_initial", {}, "discharge_recorded", ALL_DISCHARGED, T,
        STOP_SERIES, ("cbt#10",)),
    # --- opioid safety ---
    Row("opioids started", "start", {}, "opioid_started",
        {"medication_safety": "opioid_initiation"}, T, ["create_task", "create_task"],
        ("medication_safety#0",)),
    Row("opioids started with a benzodiazepine", "start",
        {"benzodiazepine.coprescribed": True, "naloxone.offered": False}, "opioid_started",
        {"medication_safety": "opioid_initiation"}, T,
        ["create_task", "create_task", "raise_flag", "create_task", "raise_flag", "create_task"],
        ("medication_safety#0", "medication_safety#9")),
    Row("opioids stopped early", "opioid_initiation", {}, "opioid_stopped",
        {"medication_safety": "no_opioids"}, T, [], ("medication_safety#1",)),
    Row("opioids stopped", "opioid_monitoring", {}, "opioid_stopped",
        {"medication_safety": "no_opioids"}, T, [], ("medication_safety#1",)),
    Row("early review due", "opioid_initiation", {}, "opioid_early_review_due", {}, T, TASK,
        ("medication_safety#2",)),
    Row("first reassessment", "opioid_initiation",
        {"pdmp.days_since_check": 5, "udt.days_since": 20}, "opioid_reassessed",
        {"medication_safety": "opioid_monitoring"}, T, [], ("medication_safety#3",)),
    Row("reassessed: PDMP and drug test due", "opioid_monitoring",
        {"pdmp.days_since_check": 40, "udt.days_since": 400}, "opioid_reassessed", {}, T,
        ["create_task", "create_task"],
        ("medication_safety#4", "medication_safety#6", "medication_safety#7")),
    Row("reassessed: checks current", "opioid_monitoring",
        {"pdmp.days_since_check": 2, "udt.days_since": 90}, "opioid_reassessed", {}, T, [],
        ("medication_safety#4",)),
    Row("reassessment overdue, drug test due", "opioid_monitoring", {"udt.days_since": 370},
        "opioid_reassessment_due", {}, T, ["create_task", "create_task"],
        ("medication_safety#5", "medication_safety#7")),
    Row("reassessment overdue", "opioid_monitoring", {}, "opioid_reassessment_due", {}, T,
        TASK, ("medication_safety#5",)),
    Row("PDMP check due", "opioid_monitoring", {"pdmp.days_since_check": 84}, "pdmp_check_due",
        {}, T, TASK, ("medication_safety#6",)),
    Row("PDMP never checked", "opioid_monitoring", {"pdmp.days_since_check": None},
        "pdmp_check_due", {}, T, TASK, ("medication_safety#6",)),
    Row("PDMP checked recently", "opioid_monitoring", {"pdmp.days_since_check": 7},
        "pdmp_check_due", {}, N, []),
    Row("drug test never done", "opioid_monitoring", {"udt.days_since": None}, "udt_due", {}, T,
        TASK, ("medication_safety#7",)),
    Row("drug test recent", "opioid_monitoring", {"udt.days_since": 100}, "udt_due", {}, N, []),
    Row("medication recorded", "opioid_monitoring", {"mme.daily": 20}, "medication_recorded",
        {}, T, [], ("medication_safety#8",)),
    Row("benzodiazepine, no naloxone", "opioid_monitoring", {"benzodiazepine.coprescribed": True},
        "medication_recorded", {}, T, ["raise_flag", "create_task", "raise_flag", "create_task"],
        ("medication_safety#8", "medication_safety#9")),
    Row("benzodiazepine, naloxone offered", "opioid_initiation",
        {"benzodiazepine.coprescribed": True, "naloxone.offered": True}, "medication_recorded",
        {}, T, ["raise_flag", "create_task"], ("medication_safety#8", "medication_safety#10")),
    Row("50 MME, no naloxone", "opioid_monitoring",
        {"mme.daily": 50, "naloxone.offered": False, "benzodiazepine.coprescribed": False},
        "medication_recorded", {}, T, ["raise_flag", "create_task"],
        ("medication_safety#8", "medication_safety#11")),
    Row("substance use, no naloxone", "opioid_monitoring",
        {"mme.daily": 20, "substance_use.active": True}, "medication_recorded", {}, T,
        ["raise_flag", "create_task"], ("medication_safety#8", "medication_safety#11")),
    Row("high dose, naloxone offered", "opioid_monitoring",
        {"mme.daily": 90, "naloxone.offered": True}, "medication_recorded", {}, T, [],
        ("medication_safety#8",)),
    Row("medication without opioids", "start", {"benzodiazepine.coprescribed": True},
        "medication_recorded", {}, N, []),
    Row("discharged on opioids", "opioid_monitoring", {}, "discharge_recorded", ALL_DISCHARGED,
        T, STOP_SERIES, ("medication_safety#12",)),
]  # fmt: skip


@pytest.mark.parametrize("row", TABLE, ids=[row.name for row in TABLE])
def test_transition_table(row: Row) -> None:
    walk = prepare(row.prep)
    for kind, days_ago in row.history.items():
        walk.occurred(kind, *days_ago)
    walk.facts(row.facts)
    before = walk.states
    decision = walk.approve() if row.event == "approve" else walk.fire_event(row.event)
    summary = decision.explanation.summary()
    assert decision.outcome is row.outcome, summary
    assert walk.states == {**before, **row.expected}, summary
    assert [effect.kind for effect in decision.effects] == row.effects, summary
    shown = {t.transition_id for t in decision.transitions} | {
        p.transition_id for p in decision.proposals_opened
    }
    assert set(row.covers) <= shown, summary


def all_transition_ids(definition: PathwayDefinition) -> set[str]:
    return {
        transition_id(track_name, index)
        for track_name, track in definition.tracks.items()
        for index in range(len(track.transitions))
    }


def test_the_table_has_a_row_for_every_transition() -> None:
    covered = {tid for row in TABLE for tid in row.covers}
    assert all_transition_ids(PAIN) - covered == set(), "transitions without a row"
    assert covered - all_transition_ids(PAIN) == set(), "rows for transitions that do not exist"
    assert len({row.name for row in TABLE}) == len(TABLE)


def test_start_enters_each_track_and_asks_for_the_intake() -> None:
    walk = Walk()
    [started] = walk.instance.log
    assert walk.states == {
        "ladder": "intake",
        "physical_therapy": "referred",
        "cbt": "referred",
        "medication_safety": "no_opioids",
    }
    [task] = started.effects
    assert isinstance(task, CreateTask)
    assert (task.discipline, task.title.startswith("Complete the intake")) == ("coordinator", True)
    assert started.timer_ops == ()


# --- walk-throughs ------------------------------------------------------------------------------


def readings(check: GuardCheck) -> dict[str, tuple[Any, str | None]]:
    return {r.name: (r.value, r.source) for r in check.readings}


def check_of(decision: Decision, tid: str) -> GuardCheck:
    [check] = [c for c in decision.explanation.checks if c.transition_id == tid]
    return check


def effects_of(decision: Decision, kind: type) -> list[Any]:
    return [e for e in decision.effects if isinstance(e, kind)]


def test_facet_route_from_intake_to_a_repeat_ablation() -> None:
    walk = Walk()
    walk.facts(ENTRY_FACTS)
    entry = walk.send("intake_completed")
    assert walk.states["ladder"] == "conventional"
    values = readings(check_of(entry, "ladder#0"))
    assert values["pain.months"] == (14, None)
    assert values["threshold.intractable_min_months"][0] == 6
    assert values["threshold.min_failed_treatment_classes"][1] == (
        "Clinic policy (operational definitions use 2-3 failed classes) (pathway default)"
    )
    assert {(s.series, s.every) for s in effects_of(entry, StartCheckins)} == {
        ("peg_weekly", timedelta(weeks=1)),
        ("mood_phq9", timedelta(weeks=4)),
        ("mood_gad7", timedelta(weeks=4)),
    }
    review = walk.instance.snapshot.timers["ladder.conventional_review"]
    assert review.due_at == T0 + timedelta(weeks=12)

    # Twelve weeks of conventional care with a 12% PEG improvement: a failed trial.
    walk.advance(weeks=12)
    walk.facts({"peg.improvement_pct": 12})
    [fired] = walk.fire()
    assert walk.states["ladder"] == "interventional_review"
    to_maintenance = check_of(fired, "ladder#3")
    assert to_maintenance.result is False
    failed = check_of(fired, "ladder#4")
    assert failed.result is True
    assert readings(failed)["weeks_in_state(ladder)"] == (12.0, None)
    value, source = readings(failed)["threshold.trial_success_improvement_pct"]
    assert value == 30
    assert source is not None
    assert source.startswith("IMMPACT (Dworkin 2008)")
    assert "peg.improvement_pct = 12" in fired.explanation.summary()
    [task] = effects_of(fired, CreateTask)
    assert (task.discipline, task.title.startswith("Choose the interventional route")) == (
        "physician",
        True,
    )

    # Diagnostic blocks: proposed with the evidence, approved only by a physician.
    proposed = walk.send("mbb_requested")
    assert proposed.outcome is Outcome.PROPOSED
    [proposal] = proposed.proposals_opened
    assert proposal.summary == "First diagnostic medial branch block"
    assert proposal.evidence is not None
    assert readings(proposal.evidence)["conservative_care.weeks"] == (20, None)
    assert readings(proposal.evidence)["threshold.facet_min_conservative_weeks"] == (
        12,
        "ASRA 2020 multisociety consensus (pathway default)",
    )
    with pytest.raises(ApprovalNotPermitted):
        walk.approve(COORDINATOR)
    approved = walk.approve()
    assert walk.states["ladder"] == "mbb1"
    [step] = approved.transitions
    assert (step.approved_by, step.proposal_id) == (PHYSICIAN, proposal.id)

    walk.facts({"mbb1.relief_pct": 85})
    first = walk.send("mbb1_result_recorded")
    block = first.proposals_opened[0].evidence
    assert block is not None
    assert readings(block)["mbb1.relief_pct"] == (85, None)
    value, source = readings(block)["threshold.mbb_relief_pct"]
    assert value == 80
    assert source is not None
    assert "Medicare LCD" in source
    walk.approve()
    assert walk.states["ladder"] == "mbb2"

    walk.facts({"mbb2.relief_pct": 90})
    second = walk.send("mbb2_result_recorded")
    assert second.proposals_opened[0].summary == "Radiofrequency ablation after two positive blocks"
    walk.approve()
    assert walk.states["ladder"] == "rfa"

    walk.occurred("rfa", 0)
    performed = walk.send("rfa_performed")
    assert walk.states["ladder"] == "rfa_followup"
    assert [s.series for s in effects_of(performed, StartCheckins)] == ["rfa_pgic"]

    # A result four weeks on: good relief, but not lasting long enough yet for a repeat.
    walk.advance(weeks=4)
    walk.facts({"rfa.relief_pct": 70, "rfa.relief_weeks": 4})
    early = walk.send("rfa_result_recorded")
    assert early.outcome is Outcome.NO_CHANGE
    assert check_of(early, "ladder#15").result is False
    assert check_of(early, "ladder#17").result is False

    # The six-month review: relief for 20 weeks, one ablation in the last 12 months.
    walk.advance(weeks=22)
    walk.facts({"rfa.relief_weeks": 20})
    [review_due] = walk.fire()
    assert review_due.outcome is Outcome.PROPOSED
    evidence = readings(check_of(review_due, "ladder#16"))
    assert evidence["days_since(rfa)"] == (182.0, None)
    assert evidence["count(rfa, last 365 days)"] == (1, None)
    assert evidence["threshold.rfa_max_per_12_months"][0] == 2
    walk.approve()
    walk.occurred("rfa", 0)
    walk.send("rfa_performed")
    assert walk.states["ladder"] == "rfa_followup"

    done = walk.send("rfa_course_completed")
    assert walk.states["ladder"] == "maintenance"
    assert [(type(e).__name__, getattr(e, "series", None)) for e in done.effects] == [
        ("StopCheckins", "rfa_pgic"),
        ("StopCheckins", "peg_weekly"),
        ("StartCheckins", "peg_monthly"),
        ("Notify", None),
    ]


def test_a_clinic_threshold_changes_the_decision_and_names_its_source() -> None:
    asra = {"mbb_relief_pct": ThresholdValue(50, "ASRA 2020 multisociety consensus")}
    walk = prepare("mbb1", Walk(thresholds=asra))
    walk.facts({"mbb1.relief_pct": 60})
    decision = walk.send("mbb1_result_recorded")
    assert decision.outcome is Outcome.PROPOSED
    assert readings(check_of(decision, "ladder#10"))["threshold.mbb_relief_pct"] == (
        50,
        "ASRA 2020 multisociety consensus",
    )


def test_stimulator_route_from_referral_to_maintenance() -> None:
    walk = prepare("conventional")
    referred = walk.send("neuromodulation_referred")
    assert walk.states["ladder"] == "psych_evaluation"
    assert readings(check_of(referred, "ladder#9"))["threshold.neuromod_min_pain_months"] == (
        6,
        "NICE TA159 (pathway default)",
    )
    [task] = effects_of(referred, CreateTask)
    assert (task.discipline, task.title) == ("psychologist", "Pre-implant psychological evaluation")

    # Deferred: treatment, then a re-evaluation twelve weeks later.
    walk.facts({"psych_eval.outcome": "deferred_pending_treatment"})
    walk.send("psych_evaluation_recorded")
    assert walk.states["ladder"] == "psych_treatment"
    walk.advance(weeks=12)
    [reevaluation] = walk.fire()
    assert walk.states["ladder"] == "psych_evaluation"
    assert effects_of(reevaluation, CreateTask)[0].discipline == "psychologist"

    walk.facts({"psych_eval.outcome": "cleared_with_conditions"})
    walk.send("psych_evaluation_recorded")
    assert walk.states["ladder"] == "neuromodulation_candidate"

    # Not enough physical therapy yet, and substance use not recorded: no proposal, explained.
    walk.facts({"pt.sessions_attended": 5})
    refused = walk.send("scs_trial_requested")
    assert refused.outcome is Outcome.NO_CHANGE
    check = check_of(refused, "ladder#27")
    assert check.result is False
    assert readings(check)["pt.sessions_attended"] == (5, None)
    assert readings(check)["threshold.neuromod_min_pt_sessions"] == (
        8,
        "Clinic policy (pathway default)",
    )
    assert check.missing == ("substance_use.active",)
    assert "missing: substance_use.active" in refused.explanation.summary()

    walk.facts(NEUROMOD_FACTS)
    proposed = walk.send("scs_trial_requested")
    evidence = proposed.proposals_opened[0].evidence
    assert evidence is not None
    assert readings(evidence)["psych_eval.outcome"] == ("cleared_with_conditions", None)
    trial = walk.approve()
    assert walk.states["ladder"] == "scs_trial"
    [diary] = effects_of(trial, StartCheckins)
    assert (diary.instrument, diary.every, diary.series) == (
        "trial_diary",
        timedelta(days=1),
        "scs_trial_diary",
    )

    walk.advance(days=7)
    [ended] = walk.fire()
    assert ended.transitions[0].internal
    assert effects_of(ended, CreateTask)[0].title == "Record the stimulator trial result"
    assert walk.states["ladder"] == "scs_trial"

    walk.facts({"scs_trial.relief_pct": 65})
    result = walk.send("scs_trial_result_recorded")
    success = readings(check_of(result, "ladder#30"))
    value, source = success["threshold.scs_trial_success_relief_pct"]
    assert value == 50
    assert source is not None
    assert source.startswith("NANS practice parameters")
    implant = walk.approve()
    assert walk.states["ladder"] == "scs_implant"
    assert StopCheckins(track="ladder", series="scs_trial_diary", instrument=None) in (
        implant.effects
    )

    implanted = walk.send("implant_performed")
    assert walk.states["ladder"] == "scs_followup"
    tasks = {(t.discipline, t.title, t.due_at) for t in effects_of(implanted, CreateTask)}
    assert tasks == {
        ("coordinator", "Wound check", walk.now + timedelta(days=10)),
        ("physician", "Device programming", walk.now + timedelta(days=14)),
    }
    [restrictions] = effects_of(implanted, Notify)
    assert restrictions.to == ("patient",)
    assert "do not bend, twist or stretch" in restrictions.message

    walk.advance(weeks=12)
    [review] = walk.fire()
    assert walk.states["ladder"] == "maintenance"
    assert {s.series for s in effects_of(review, StartCheckins)} == {
        "implant_pgic_quarterly",
        "peg_monthly",
    }


def test_intrathecal_route_refill_reminders_and_a_missed_refill() -> None:
    walk = prepare("neuromodulation_candidate")
    walk.facts(NEUROMOD_FACTS)
    walk.send("it_trial_requested")
    walk.approve()
    assert walk.states["ladder"] == "it_trial"

    # Relief, but the side effects have not been recorded: no proposal yet.
    walk.facts({"it_trial.relief_pct": 60})
    waiting = walk.send("it_trial_result_recorded")
    assert waiting.outcome is Outcome.NO_CHANGE
    assert check_of(waiting, "ladder#35").missing == ("adverse_effects.intolerable",)
    walk.facts({"adverse_effects.intolerable": False})
    walk.send("it_trial_result_recorded")
    walk.approve()
    walk.send("implant_performed")
    assert walk.states["ladder"] == "pump_active"
    timers = {t.key: t.due_at - walk.now for t in walk.instance.snapshot.timers.values()}
    assert {k: v for k, v in timers.items() if k.startswith("ladder.")} == {
        "ladder.refill_notice_14": timedelta(days=14),
        "ladder.refill_notice_21": timedelta(days=21),
        "ladder.refill_notice_26": timedelta(days=26),
        "ladder.refill_overdue": timedelta(days=28),
    }

    walk.advance(days=14)
    [notice] = walk.fire()
    assert notice.event is not None
    assert notice.event.name == "pump_refill_notice_due"
    assert [(type(e).__name__, getattr(e, "to", None)) for e in notice.effects] == [
        ("Notify", ("patient",)),
        ("CreateTask", None),
    ]
    assert walk.states["ladder"] == "pump_active"

    # A refill on day 20 restarts the whole cycle.
    walk.advance(days=6)
    walk.send("pump_refilled")
    due = {t.key: t.due_at for t in walk.instance.snapshot.timers.values()}
    assert due["ladder.refill_notice_14"] == walk.now + timedelta(days=14)
    assert due["ladder.refill_overdue"] == walk.now + timedelta(days=28)

    # No refill this time: three reminders, then the missed refill escalates.
    walk.advance(days=28)
    fired = walk.fire()
    assert [d.event.name for d in fired if d.event] == [
        "pump_refill_notice_due",
        "pump_refill_confirm_due",
        "pump_refill_final_notice_due",
        "pump_refill_missed",
    ]
    missed = fired[-1]
    [flag] = effects_of(missed, RaiseFlag)
    assert (flag.code, flag.severity) == ("pump_refill_missed", "urgent")
    urgent = [n for n in effects_of(missed, Notify) if n.urgency == "urgent"]
    assert {recipient for n in urgent for recipient in n.to} >= {"coordinator", "physician"}
    [task] = effects_of(missed, CreateTask)
    assert task.priority == "urgent"
    assert walk.states["ladder"] == "pump_active"
    assert not any(k.startswith("ladder.") for k in walk.instance.snapshot.timers)


def test_a_late_firing_from_the_previous_refill_cycle_changes_nothing() -> None:
    """The refill is recorded while the old cycle's overdue timer is due but not yet processed.
    After the refill a new `ladder.refill_overdue` is active under the same key; the late firing
    carries the old due time, so it is stale: no false "refill missed" alarm, and the new
    cycle's timer stays."""
    walk = prepare("pump_active")
    old = walk.instance.snapshot.timers["ladder.refill_overdue"]
    walk.advance(days=28)
    walk.send("pump_refilled")
    late = Event(
        name=old.event,
        key=f"timer:{old.key}:{old.due_at.isoformat()}",
        timer_key=old.key,
        timer_due_at=old.due_at,
    )
    decision = walk.instance.dispatch(late, walk.now)
    assert decision.outcome is Outcome.NO_CHANGE
    assert "ladder.refill_overdue" in walk.instance.snapshot.timers


def test_a_logged_cbt_session_restarts_the_weekly_reminder() -> None:
    walk = prepare("cbt_initial")
    assert walk.instance.snapshot.timers["cbt.initial_session"].due_at == T0 + timedelta(days=7)
    walk.advance(days=5)
    walk.facts({"cbt.sessions_attended": 1})
    walk.send("cbt_session_logged")
    assert walk.instance.snapshot.timers["cbt.initial_session"].due_at == walk.now + timedelta(
        days=7
    )
    walk.advance(days=7)
    [reminder] = walk.fire()
    assert effects_of(reminder, CreateTask)[0].discipline == "psychologist"


def test_opioid_reassessments_restart_the_clock_and_check_pdmp_and_drug_tests() -> None:
    walk = prepare("opioid_monitoring")
    reassessment = walk.instance.snapshot.timers["medication_safety.reassessment"]
    assert reassessment.due_at == walk.now + timedelta(weeks=12)
    assert "medication_safety.early_review" not in walk.instance.snapshot.timers

    walk.advance(weeks=10)
    walk.facts({"pdmp.days_since_check": 70, "udt.days_since": 90})
    decision = walk.send("opioid_reassessed")
    assert [t.title for t in effects_of(decision, CreateTask)] == [
        "Check the prescription monitoring programme (PDMP)"
    ]
    pdmp = check_of(decision, "medication_safety#6")
    assert readings(pdmp)["threshold.pdmp_recheck_days"][0] == 28
    udt = check_of(decision, "medication_safety#7")
    assert udt.result is False
    assert walk.instance.snapshot.timers["medication_safety.reassessment"].due_at == (
        walk.now + timedelta(weeks=12)
    )


def test_definition_draws_as_mermaid() -> None:
    text = mermaid(PAIN)
    for state in ("mbb1", "mbb2", "rfa", "esi", "nerve_block", "scs_trial", "scs_implant"):
        assert f"class ladder__{state} invasive" in text
    assert "ladder__mbb1 --> ladder__mbb2: mbb1_result_recorded [approval - physician]" in text


# --- configuration ------------------------------------------------------------------------------

INVASIVE = {
    "mbb1",
    "mbb2",
    "rfa",
    "esi",
    "nerve_block",
    "scs_trial",
    "scs_implant",
    "it_trial",
    "pump_implant",
}


def test_the_invasive_states_are_marked_and_gated() -> None:
    ladder = PAIN.tracks["ladder"]
    assert {name for name, state in ladder.states.items() if state.invasive} == INVASIVE
    for track in PAIN.tracks.values():
        for transition in track.transitions:
            if transition.target is not None and track.states[transition.target].invasive:
                assert transition.approval is not None
                assert transition.approval.roles == ["physician"]


def guards() -> list[tuple[str, str]]:
    return [
        (transition_id(track_name, index), transition.guard)
        for track_name, track in PAIN.tracks.items()
        for index, transition in enumerate(track.transitions)
        if transition.guard is not None
    ]


def test_every_threshold_has_a_source_a_unit_a_description_and_is_used() -> None:
    used = {
        node.attr
        for _, guard in guards()
        for node in ast.walk(ast.parse(guard.strip(), mode="eval"))
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "threshold"
    }
    for name, threshold in PAIN.thresholds.items():
        assert threshold.source.strip(), name
        assert threshold.unit.strip(), name
        assert threshold.description.strip(), name
        assert isinstance(threshold.default, int | float), name
    assert used == set(PAIN.thresholds)


def test_guards_compare_with_thresholds_not_numbers() -> None:
    """Clinical numbers are configuration: a guard may only write 0 or 1 (counts, booleans).

    The window of a count() is the exception: the guard language takes a whole number there
    (every window in this pathway is the rolling 12 months of the caps, or 10 years for "ever").
    """
    for tid, guard in guards():
        tree = ast.parse(guard.strip(), mode="eval")
        windows = {
            id(keyword.value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "count"
            for keyword in node.keywords
        }
        for node in ast.walk(tree):
            if id(node) in windows:
                assert isinstance(node, ast.Constant)
                assert node.value in (365, 3650), (tid, node.value)
            elif isinstance(node, ast.Constant) and not isinstance(node.value, bool | str):
                assert abs(node.value) <= 1, f"{tid}: bare number {node.value} in `{guard}`"


def test_every_event_is_used_and_texts_fit_the_worklists() -> None:
    used: set[str] = set()
    for track in PAIN.tracks.values():
        used |= {t.event for t in track.transitions} | {t.event for t in track.timers}
    assert used == set(PAIN.events)
    effects = [
        effect
        for track in PAIN.tracks.values()
        for effect in [
            *(e for t in track.transitions for e in t.effects),
            *(e for s in track.states.values() for e in (*s.on_enter, *s.on_exit)),
        ]
    ]
    for effect in effects:
        if effect.create_task is not None:
            assert len(effect.create_task.title) <= 200, effect.create_task.title
        if effect.raise_flag is not None:
            assert len(effect.raise_flag.message) <= 300, effect.raise_flag.message


# --- Hypothesis: invariants over random event sequences -------------------------------------------

INVASIVE_GATES: dict[str, set[str]] = {}
for _track in PAIN.tracks.values():
    for _transition in _track.transitions:
        if _transition.target is not None and _track.states[_transition.target].invasive:
            assert _transition.approval is not None
            INVASIVE_GATES.setdefault(_transition.target, set()).update(_transition.approval.roles)

ROLES = ["physician", "coordinator", "physical_therapist", "psychologist", "pharmacist"]
PROCEDURE_KINDS = ["esi", "nerve_block", "rfa"]
# Mostly values that let the pathway move on, with some that stop it and some missing.
FACT_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "peg.baseline": st.sampled_from([7, 7, 7, None]),
    "phq9.baseline": st.sampled_from([9, 9, 9, None]),
    "gad7.baseline": st.sampled_from([6, 6, 6, None]),
    "pain.months": st.sampled_from([14, 14, 8, 3, None]),
    "failed_treatment_classes": st.sampled_from([3, 2, 2, 1, None]),
    "conservative_care.weeks": st.sampled_from([20, 20, 12, 4, 2, None]),
    "peg.improvement_pct": st.sampled_from([None, -10, 12, 12, 29.9, 30, 55]),
    "adverse_effects.intolerable": st.sampled_from([False, False, True, None]),
    "esi.relief_pct": st.sampled_from([60, 30, None]),
    "nerve_block.relief_pct": st.sampled_from([60, 30, None]),
    "mbb1.relief_pct": st.sampled_from([95, 85, 80, 79, 40, None]),
    "mbb2.relief_pct": st.sampled_from([95, 85, 80, 60, None]),
    "rfa.relief_pct": st.sampled_from([70, 70, 40, None]),
    "rfa.relief_weeks": st.sampled_from([30, 20, 8, None]),
    "psych_eval.outcome": st.sampled_from(
        [
            "cleared",
            "cleared",
            "cleared_with_conditions",
            "deferred_pending_treatment",
            "not_cleared",
            None,
        ]
    ),
    "pt.sessions_attended": st.sampled_from([14, 12, 8, 3, None]),
    "substance_use.active": st.sampled_from([False, False, True, None]),
    "scs_trial.relief_pct": st.sampled_from([70, 50, 30, None]),
    "it_trial.relief_pct": st.sampled_from([70, 50, 30, None]),
    "cbt.sessions_attended": st.sampled_from([1, 3, 7, 10, 12, None]),
    "mme.daily": st.sampled_from([20, 50, 90, None]),
    "naloxone.offered": st.sampled_from([False, True, None]),
    "benzodiazepine.coprescribed": st.sampled_from([False, True, None]),
    "pdmp.days_since_check": st.sampled_from([3, 40, 100, None]),
    "udt.days_since": st.sampled_from([30, 400, None]),
}
# A patient for whom every step of the ladder can go ahead (a trial of conventional care fails).
FAVOURABLE: dict[str, Any] = {
    **ENTRY_FACTS,
    **NEUROMOD_FACTS,
    "peg.improvement_pct": 12,
    "adverse_effects.intolerable": False,
    "esi.relief_pct": 60,
    "nerve_block.relief_pct": 60,
    "mbb1.relief_pct": 95,
    "mbb2.relief_pct": 95,
    "rfa.relief_pct": 70,
    "rfa.relief_weeks": 30,
    "psych_eval.outcome": "cleared",
    "scs_trial.relief_pct": 70,
    "it_trial.relief_pct": 70,
    "cbt.sessions_attended": 3,
    "mme.daily": 20,
    "naloxone.offered": False,
    "benzodiazepine.coprescribed": False,
    "pdmp.days_since_check": 3,
    "udt.days_since": 30,
}
assert set(FAVOURABLE) == set(FACT_VALUES)
# Approved entries into each invasive state, over every run of the machine below.
REACHED: Counter[str] = Counter()


class IntractablePainMachine(RuleBasedStateMachine):
    @initialize(data=st.data())
    def begin(self, data: st.DataObject) -> None:
        self.now = T0
        # A patient who can go all the way, with a few facts varied (record_fact varies more).
        varied = data.draw(st.sets(st.sampled_from(sorted(FACT_VALUES)), max_size=2))
        facts = {
            name: data.draw(FACT_VALUES[name], label=name) if name in varied else value
            for name, value in FAVOURABLE.items()
        }
        self.instance = MemoryInstance(PAIN, self.now, facts=facts)
        self.counter = 0
        self.sent: list[tuple[Event, Decision]] = []
        self.step: list[Decision] = []
        self.final_before: dict[str, str] = {}

    def _key(self) -> str:
        self.counter += 1
        return f"k{self.counter}"

    def _remember_finals(self) -> None:
        self.final_before = {
            track: state
            for track, state in self.instance.states.items()
            if PAIN.state(track, state).final
        }

    def _dispatch(self, event: Event) -> Decision:
        self._remember_finals()
        version = self.instance.version
        decision = self.instance.dispatch(event, self.now)
        self.sent.append((event, decision))
        self.step = [decision]
        if decision.outcome is not Outcome.NO_CHANGE:
            assert self.instance.version == version + 1
        return decision

    @rule(data=st.data())
    def record_fact(self, data: st.DataObject) -> None:
        """A fact changes, or a procedure is recorded (for count() and days_since())."""
        name = data.draw(st.sampled_from(sorted([*FACT_VALUES, *PROCEDURE_KINDS])))
        if name in PROCEDURE_KINDS:
            days_ago = data.draw(st.integers(min_value=0, max_value=400))
            snapshot = self.instance.snapshot
            at = self.now - timedelta(days=days_ago)
            occurrences = {**snapshot.occurrences, name: (*snapshot.occurrences.get(name, ()), at)}
            self.instance.snapshot = dataclasses.replace(snapshot, occurrences=occurrences)
        else:
            # Half of the time back to the favourable value, so that runs do not get stuck.
            value = data.draw(st.just(FAVOURABLE[name]) | FACT_VALUES[name])
            self.instance.set_facts(**{name: value})

    def _expected(self, data: st.DataObject, ladder_only: bool) -> None:
        """Send an event some track is waiting for, but not one that goes back down the ladder
        (reassessment, discharge: send_any_event and discharge send those)."""
        available = available_events(PAIN, self.instance.snapshot)
        choices = [
            event
            for track, events in available.items()
            if track == "ladder" or not ladder_only
            for event in events
            if event not in ("discharge_recorded", "reassessment_requested")
        ]
        if choices:
            self._dispatch(Event(name=data.draw(st.sampled_from(choices)), key=self._key()))

    # Rules are drawn about equally often: two of them move the tracks forward, so that runs get
    # deep into the ladder (test_invariants_hold_and_runs_reach_every_invasive_state checks it).
    @rule(data=st.data())
    def send_an_expected_event(self, data: st.DataObject) -> None:
        self._expected(data, ladder_only=False)

    @rule(data=st.data())
    def send_an_expected_ladder_event(self, data: st.DataObject) -> None:
        self._expected(data, ladder_only=True)

    @rule(data=st.data())
    def send_any_event(self, data: st.DataObject) -> None:
        names = sorted(set(PAIN.events) - {"discharge_recorded"})
        self._dispatch(Event(name=data.draw(st.sampled_from(names)), key=self._key()))

    @precondition(lambda self: self.counter > 50)
    @rule()
    def discharge(self) -> None:
        self._dispatch(Event(name="discharge_recorded", key=self._key()))

    @precondition(lambda self: bool(self.instance.snapshot.proposals))
    @rule(data=st.data(), approve=st.booleans())
    def decide_on_a_proposal(self, data: st.DataObject, approve: bool) -> None:
        proposal = self.instance.snapshot.proposals[
            data.draw(st.sampled_from(sorted(self.instance.snapshot.proposals)))
        ]
        role = data.draw(st.sampled_from([*proposal.roles, "patient", *ROLES]))
        reason = data.draw(st.sampled_from(["", "Not indicated yet"]))
        event = Event(
            name=APPROVE if approve else REJECT,
            key=self._key(),
            actor=Actor(id=f"user-{role}", role=role),
            proposal_id=proposal.id,
            reason=reason,
        )
        try:
            self._dispatch(event)
        except ApprovalNotPermitted:
            assert role not in proposal.roles
            return
        except InvalidEvent:
            assert not approve
            assert not reason
            return
        except CriteriaNoLongerMet:
            assert approve
            assert role in proposal.roles
            return
        assert role in proposal.roles

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

    @rule(days=st.sampled_from([1, 3, 7, 14, 30, 90]))
    def time_passes(self, days: int) -> None:
        self._remember_finals()
        self.now += timedelta(days=days)
        self.step = self.instance.fire_due_timers(self.now)
        for decision in self.step:
            assert decision.event is not None
            self.sent.append((decision.event, decision))

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
        assert set(states) == set(PAIN.tracks)
        for track, state in states.items():
            assert state in PAIN.tracks[track].states

    @invariant()
    def final_states_absorb(self) -> None:
        for track, state in self.final_before.items():
            assert self.instance.states[track] == state

    @invariant()
    def timers_belong_to_current_states(self) -> None:
        for key, timer in self.instance.snapshot.timers.items():
            assert key.startswith(f"{timer.track}.")
            assert self.instance.states[timer.track] == timer.state
            assert any(
                f"{timer.track}.{spec.name}" == key and spec.state == timer.state
                for spec in PAIN.tracks[timer.track].timers
            )

    @invariant()
    def invasive_states_are_entered_only_by_an_allowed_approval(self) -> None:
        for decision in self.step:
            for step in decision.transitions:
                if step.internal or step.track != "ladder" or step.target not in INVASIVE_GATES:
                    continue  # an internal transition (a reminder in a trial) enters nothing
                assert decision.event is not None
                assert decision.event.name == APPROVE
                assert step.approved_by is not None
                assert step.approved_by.role in INVASIVE_GATES[step.target]
                assert step.proposal_id is not None
                REACHED[step.target] += 1
        self.step = []

    @invariant()
    def proposals_are_for_current_states(self) -> None:
        for proposal in self.instance.snapshot.proposals.values():
            assert self.instance.states[proposal.track] == proposal.source


MACHINE_SETTINGS = settings(
    max_examples=150,
    stateful_step_count=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def test_invariants_hold_and_runs_reach_every_invasive_state() -> None:
    REACHED.clear()
    run_state_machine_as_test(IntractablePainMachine, settings=MACHINE_SETTINGS)
    # The rules are biased towards expected events so that the runs get deep into the ladder;
    # if a change to the pathway makes a gate unreachable for them, this says which.
    assert set(REACHED) == INVASIVE, f"approved entries per state: {dict(REACHED)}"
