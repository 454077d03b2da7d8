"""The pathway simulator with carehub's rules, and `manage.py pathway simulate`.

The coverage gate: the built-in cohort takes intractable-pain through every state and every
transition; when a change makes one unreachable, `test_the_builtin_cohort_reaches_every_state_
and_transition` fails naming it."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command

from carehub.checkins.schedule import SendWindow, next_due, series_cadence
from carehub.pathways.registry import definition_get
from carehub.simulation.simulator import (
    COHORTS_DIR,
    clinic_rules,
    load_builtin_cohort,
    run_report,
    simulated_answers,
)
from workflows.model import ThresholdValue
from workflows.simulate.rules import Contact

COHORT = COHORTS_DIR / "intractable-pain.yaml"
DEFINITIONS = Path(__file__).resolve().parents[3] / "carehub" / "pathways" / "definitions"
COVERAGE_DAYS = 540


@pytest.fixture(scope="module")
def definition():  # type: ignore[no-untyped-def]
    return definition_get("intractable-pain")


@pytest.fixture(scope="module")
def cohort(definition):  # type: ignore[no-untyped-def]
    return load_builtin_cohort(definition)


def test_the_builtin_cohort_reaches_every_state_and_transition(definition, cohort) -> None:  # type: ignore[no-untyped-def]
    report = run_report(definition, cohort, days=COVERAGE_DAYS, seed=1)
    coverage = report["coverage"]
    assert coverage["unreached_states"] == [], "unreachable with the built-in cohort"
    assert coverage["untaken_transitions"] == [], "never taken with the built-in cohort"
    assert coverage["states_reached"] == coverage["states_total"] == 34
    assert coverage["transitions_taken"] == coverage["transitions_total"]
    # The run is a clinic, not only a walk of the graph: the parts of the report are filled.
    assert report["engine"]["refused"] == {}
    assert report["checkins"]["opened"] > report["checkins"]["missed"] > 0
    assert report["messages"]["outcomes"]["deferred"] > 0  # quiet hours held some
    assert report["messages"]["outcomes"]["over_budget"] > 0  # the daily budget held some
    assert report["red_flags"]["answers"]["phq9_item9_positive"] > 0
    assert report["proposals"]["outcomes"]["approved"] > report["proposals"]["outcomes"]["rejected"]
    assert report["stuck"]["by_ladder_state"].get("ladder.intake", 0) > 0  # incomplete intakes
    stages = report["time_to_stage"]
    assert (
        stages["ladder.conventional"]["days"]["median"]
        < stages["ladder.interventional"]["days"]["median"]
        < stages["ladder.neuromodulation"]["days"]["median"]
    )


def test_the_gate_names_what_a_change_makes_unreachable(definition, cohort) -> None:  # type: ignore[no-untyped-def]
    # No block can give more than 100 % relief: the second block and ablation are unreachable.
    impossible = {"mbb_relief_pct": ThresholdValue(101, "test")}
    report = run_report(definition, cohort, days=200, seed=1, patients=60, thresholds=impossible)
    unreached = report["coverage"]["unreached_states"]
    assert {"ladder.mbb2", "ladder.rfa", "ladder.rfa_followup"} <= set(unreached)
    untaken = " ".join(report["coverage"]["untaken_transitions"])
    assert "ladder#10: mbb1 → mbb2 on mbb1_result_recorded" in untaken
    assert report["coverage"]["states"][0]["patients"] == 60  # everyone starts at intake


def test_same_cohort_and_seed_give_the_same_report(definition, cohort) -> None:  # type: ignore[no-untyped-def]
    first = run_report(definition, cohort, days=120, seed=7, patients=25)
    second = run_report(definition, cohort, days=120, seed=7, patients=25)
    other_seed = run_report(definition, cohort, days=120, seed=8, patients=25)
    assert first == second
    assert first != other_seed


def test_check_ins_fall_due_as_the_clinic_schedules_them() -> None:
    """The simulator's calendar is the scheduler's: a weekly series of a patient in New York
    starting on a Thursday evening is first due a week later at the clinic's check-in time in
    their zone, and the next after an answer a week after that, across the DST change."""
    rules = clinic_rules()
    contact = Contact("America/New_York", *(datetime(2026, 1, 1, 9).time(),
                                           datetime(2026, 1, 1, 20).time()))  # fmt: skip
    started = datetime(2026, 2, 26, 23, 30, tzinfo=UTC)  # 18:30 in New York
    every = timedelta(weeks=1)
    first = rules.next_due(contact, started_at=started, every=every, after=started, last_due=None)
    zone = ZoneInfo("America/New_York")
    assert first.astimezone(zone).replace(tzinfo=None) == datetime(2026, 3, 5, 10, 0)
    cadence = series_cadence(
        started_at=started, every=every, zone=zone,
        window=SendWindow(contact.window_start, contact.window_end),
        send_at=rules.send_at,
    )  # fmt: skip
    assert first == next_due(cadence, after=started, last_due=None)
    answered = first + timedelta(hours=5)
    second = rules.next_due(contact, started_at=started, every=every, after=answered,
                            last_due=first)  # fmt: skip
    assert second.astimezone(zone).replace(tzinfo=None) == datetime(2026, 3, 12, 10, 0)
    assert second - first == timedelta(days=7) - timedelta(hours=1)  # clocks went forward
    closes = rules.closes_at(first, every)
    assert closes - first == timedelta(hours=72)
    reminders = rules.reminders(contact, due_at=first, closes_at=closes, opened_at=first)
    assert [r - first for r in reminders] == [timedelta(hours=24), timedelta(hours=48)]


def test_simulated_answers_score_to_their_target_and_raise_red_flags() -> None:
    import random

    rules = clinic_rules()
    rng = random.Random(3)
    for target in (0, 5, 14, 27):
        answers = simulated_answers("phq9", target, rng)
        assert rules.score("phq9", answers).total == min(target, 24)  # item 9 stays 0
    flagged = rules.score("phq9", simulated_answers("phq9", 6, rng, red_flag=True))
    assert ("phq9_item9_positive", "immediate") in flagged.red_flags
    peg = rules.score("peg", simulated_answers("peg", 6.0, rng))
    assert peg.total is not None
    assert 4.5 <= peg.total <= 7.5
    for instrument in ("psfs", "pgic", "trial_diary", "gad7"):
        assert rules.score(instrument, simulated_answers(instrument, None, rng)).total is not None


# --- the command -------------------------------------------------------------------------------


def _simulate(tmp_path: Path, *args: str) -> dict:  # type: ignore[type-arg]
    out = tmp_path / "out"
    call_command(
        "pathway", "simulate", "intractable-pain", "--cohort", str(COHORT), "--out", str(out),
        *args,
    )  # fmt: skip
    return json.loads((out / "report.json").read_text())


def test_simulate_writes_json_and_a_self_contained_html_report(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    report = _simulate(tmp_path, "--days", "120", "--patients", "30", "--seed", "4")
    assert report["pathway"] == "intractable-pain@2"
    assert report["patients"] == 30
    assert report["days"] == 120
    assert report["messages"]["daily_budget"] == 3
    assert len(report["workload"]["tasks_per_week"]["coordinator"]) == report["weeks"] == 18
    assert report["comparison"] is None
    html = (tmp_path / "out" / "report.html").read_text()
    assert html.count("<svg") >= 7
    for needle in ("<script", "<link", 'src="http', 'href="http', "@import"):
        assert needle not in html, needle
    for heading in ("Coverage", "Time to each stage", "Escalations proposed per week",
                    "Workload per discipline per week", "Messages per patient per week",
                    "Red flags", "Patients stuck"):  # fmt: skip
        assert heading in html
    out = capsys.readouterr().out
    assert "states reached" in out
    assert "unreached state: ladder.pump_active" in out  # 120 days is too short for a pump


def test_against_a_threshold_set_reports_the_differences(tmp_path: Path) -> None:
    thresholds = tmp_path / "asra.yaml"
    thresholds.write_text('mbb_relief_pct: {value: 50, source: "ASRA 2020"}\n')
    report = _simulate(tmp_path, "--days", "200", "--patients", "60", "--against", str(thresholds))
    comparison = report["comparison"]
    assert comparison["other"]["thresholds"] == {
        "mbb_relief_pct": {"value": 50, "source": "ASRA 2020"}
    }
    assert comparison["base"]["thresholds"] == {}
    # The built-in cohort's first blocks give 65-100 % relief: under 50 % none is negative.
    base_ids = {t["id"]: t for t in report["coverage"]["transitions"]}
    other_ids = {t["id"]: t for t in report["against"]["coverage"]["transitions"]}
    assert base_ids["ladder#11"]["patients"] > 0
    assert other_ids["ladder#11"]["patients"] == 0
    second_block = "Second (comparative) medial branch block"
    assert comparison["proposals"][second_block][1] > comparison["proposals"][second_block][0]
    assert "ladder.interventional" in comparison["time_to_stage"]
    html = (tmp_path / "out" / "report.html").read_text()
    assert "Against another definition" in html
    assert "mbb_relief_pct = 50" in html


def test_against_another_definition(tmp_path: Path) -> None:
    text = (DEFINITIONS / "intractable-pain.v1.yaml").read_text()
    faster = text.replace("version: 1\n", "version: 2\n", 1).replace(
        "{name: conventional_review, state: conventional, after: 12w,",
        "{name: conventional_review, state: conventional, after: 8w,",
    )
    faster = faster.replace(
        'default: 12\n    unit: weeks\n    source: "Clinic policy (adequate trials',
        'default: 8\n    unit: weeks\n    source: "Clinic policy (adequate trials',
    )
    assert faster.count("after: 8w") == 1
    other = tmp_path / "intractable-pain.v2.yaml"
    other.write_text(faster)
    report = _simulate(tmp_path, "--days", "200", "--patients", "60", "--against", str(other))
    comparison = report["comparison"]
    assert comparison["other"]["pathway"] == "intractable-pain@2"
    change = comparison["time_to_stage"]["ladder.interventional"]["median_days_change"]
    assert change is not None
    assert -32 < change < -24  # four weeks sooner, give or take the intake's few days


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--days", "0"], "--days must be between 1 and 3660"),
        (["--patients", "0"], "--patients must be between 1 and 100000"),
        (["--thresholds", "missing.yaml"], "missing.yaml: no such file"),
    ],
)
def test_bad_arguments_are_refused(tmp_path: Path, args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        _simulate(tmp_path, *args)
    assert not (tmp_path / "out").exists()


def test_a_cohort_naming_what_the_pathway_lacks_is_refused_with_its_lines(tmp_path: Path) -> None:
    text = COHORT.read_text()
    broken = text.replace("ladder.mbb1:", "ladder.mbb_one:", 1).replace(
        "send: pump_refilled}", "send: pump_refiled}", 1
    )
    path = tmp_path / "cohort.yaml"
    path.write_text(broken)
    with pytest.raises(CommandError) as raised:
        call_command("pathway", "simulate", "intractable-pain", "--cohort", str(path),
                     "--out", str(tmp_path / "out"))  # fmt: skip
    message = str(raised.value)
    assert "intractable-pain@2 has no state 'ladder.mbb_one'" in message
    assert "has no event 'pump_refiled'" in message
    shape = tmp_path / "shape.yaml"
    shape.write_text(text.replace("answer_rate: 0.9\n", "answer_rate: 1.9\n", 1))
    with pytest.raises(CommandError) as raised:
        call_command("pathway", "simulate", "intractable-pain", "--cohort", str(shape),
                     "--out", str(tmp_path / "out"))  # fmt: skip
    line = next(n for n, row in enumerate(shape.read_text().splitlines(), 1) if "1.9" in row)
    assert f"line {line}: archetypes[0].answer_rate" in str(raised.value)
    assert not (tmp_path / "out").exists()


def test_a_thresholds_file_naming_an_unknown_threshold_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("mbb_relief: 50\nesi_min_interval_days: soon\n")
    with pytest.raises(CommandError) as raised:
        _simulate(tmp_path, "--thresholds", str(path))
    assert "has no threshold 'mbb_relief'" in str(raised.value)
    assert "esi_min_interval_days: 'soon' is not a number" in str(raised.value)


@pytest.mark.django_db
def test_a_clinics_threshold_settings_apply_to_the_run(tmp_path: Path) -> None:
    from carehub.clinics.models import Clinic
    from carehub.clinics.services import threshold_set

    clinic = Clinic.objects.create(name="Eastside", slug="eastside")
    threshold_set(
        clinic=clinic, pathway_key="intractable-pain", name="mbb_relief_pct", value=50,
        source="ASRA 2020",
    )  # fmt: skip
    Clinic.objects.create(name="Other", slug="other")
    report = _simulate(
        tmp_path, "--days", "150", "--patients", "40", "--clinic", "eastside",
        "--against", str(DEFINITIONS / "intractable-pain.v1.yaml"),
    )  # fmt: skip
    assert report["thresholds"] == {"mbb_relief_pct": {"value": 50, "source": "ASRA 2020"}}
    assert report["against"]["thresholds"] == report["thresholds"]
    untouched = _simulate(tmp_path, "--days", "30", "--patients", "5", "--clinic", "other")
    assert untouched["thresholds"] == {}
    with pytest.raises(CommandError, match="no clinic 'nowhere'"):
        _simulate(tmp_path, "--clinic", "nowhere")
