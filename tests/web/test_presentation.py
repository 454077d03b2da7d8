"""The pages' words for a pathway: titles for keys, sentences from the engine's explanation
values (`carehub.web.presentation`)."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

from carehub.pathways.registry import definition_get
from carehub.web.presentation import (
    event_title,
    explain_check,
    explain_step,
    note_text,
    score_series,
    state_title,
)

DEFINITION = definition_get("intractable-pain", 1)
NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


def scores(*points: tuple[float, datetime, bool]) -> dict:  # type: ignore[type-arg]
    return score_series(
        SimpleNamespace(code="peg", value_number=v, observed_at=at, is_baseline=b)
        for v, at, b in points
    )


def test_every_event_state_and_track_of_the_built_in_pathway_has_a_title() -> None:
    untitled = [f"event {name}" for name, spec in DEFINITION.events.items() if not spec.title]
    for name, track in DEFINITION.tracks.items():
        untitled += [f"track {name}"] if not track.title else []
        untitled += [f"state {name}.{s}" for s, spec in track.states.items() if not spec.title]
    assert untitled == []
    assert event_title(DEFINITION, "cbt_session_due") != "Cbt session due"
    assert event_title(DEFINITION, "scs_trial_ended") == "End of the stimulator trial"
    assert state_title(DEFINITION, "cbt", "skill_building") == "Skill building (sessions 4-10)"


def test_an_improvement_below_the_threshold_reads_as_a_sentence_with_its_source() -> None:
    check = {
        "track": "ladder", "source": "conventional", "target": "interventional_review",
        "event": "conventional_review_due",
        "expression": "peg.improvement_pct < threshold.trial_success_improvement_pct",
        "result": True,
        "readings": [
            {"name": "peg.improvement_pct", "value": 28.6, "source": None},
            {"name": "threshold.trial_success_improvement_pct", "value": 30,
             "source": "IMMPACT (Dworkin 2008)"},
        ],
    }  # fmt: skip
    series = scores(
        (7.0, datetime(2026, 9, 3, 9, tzinfo=UTC), True),
        (5.0, datetime(2026, 11, 28, 9, tzinfo=UTC), False),
    )
    text = explain_check(DEFINITION, check, scores=series, now=NOW)
    assert text is not None
    assert text.headline == "Conventional care → Interventional review"
    [clause] = text.clauses
    assert clause.text == (
        "PEG improved 28.6 % (7 → 5) since the baseline on 3 Sep; the rule asks for less than "
        "30 % (IMMPACT, Dworkin 2008)"
    )
    assert clause.verdict is True
    assert clause.raw == "peg.improvement_pct < threshold.trial_success_improvement_pct"
    assert text.expression == check["expression"]  # the raw rule stays available


def test_each_condition_of_a_rule_is_its_own_sentence_and_missing_facts_say_so() -> None:
    check = {
        "track": "cbt", "source": "initial_phase", "target": "skill_building",
        "event": "cbt_session_logged",
        "expression": "cbt.sessions_attended >= threshold.cbt_initial_phase_sessions "
                      "and weeks_in_state() >= 1 and known(pain.months)",
        "result": None,
        "readings": [
            {"name": "cbt.sessions_attended", "value": 2, "source": None},
            {"name": "threshold.cbt_initial_phase_sessions", "value": 3,
             "source": "VA CBT-CP (Murphy et al.)"},
            {"name": "weeks_in_state(cbt)", "value": 2.5, "source": None},
            {"name": "pain.months", "value": None, "source": None},
        ],
        "missing": ["pain.months"],
    }  # fmt: skip
    text = explain_check(DEFINITION, check)
    assert text is not None
    assert [(c.text, c.verdict) for c in text.clauses] == [
        ("CBT sessions attended: 2; the rule asks for at least 3 sessions "
         "(VA CBT-CP, Murphy et al.)", False),
        ("2.5 weeks in Initial phase (sessions 1-3); the rule asks for at least 1", True),
        ("Months of pain recorded: not yet", False),
    ]  # fmt: skip
    for clause in text.clauses:
        assert "cbt.sessions_attended" not in clause.text
        assert "threshold." not in clause.text


def test_engine_notes_and_moves_use_titles() -> None:
    assert note_text(
        DEFINITION, "no transition on 'pt_session_logged' from the current states"
    ) == ("No step of the pathway waits for “Physical therapy session logged” now.")
    step = explain_step(
        DEFINITION, event="cbt_session_logged", outcome="transitioned",
        transitions=[{"track": "cbt", "source": "initial_phase", "target": "skill_building"}],
        explanation={"checks": [], "notes": []},
    )  # fmt: skip
    assert step.event == "CBT session logged"
    assert step.moved == [
        "CBT for chronic pain: Initial phase (sessions 1-3) → Skill building (sessions 4-10)"
    ]
