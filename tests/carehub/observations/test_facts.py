"""Facts derived from observations, with the arithmetic worked by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from carehub.observations import services
from carehub.observations.selectors import NOT_COMPUTED, facts_for_patient, mme_breakdown
from carehub.patients.models import Patient
from tests.carehub.observations.conftest import NOW, days_ago, weeks_ago
from workflows.facts import STANDARD_FACTS

pytestmark = pytest.mark.django_db


def score(patient: Patient, instrument: str, value: float, weeks: float, **extra: object) -> None:
    services.score_record(
        patient=patient,
        instrument=instrument,
        score=value,
        observed_at=weeks_ago(weeks),
        **extra,  # type: ignore[arg-type]
    )


def facts(patient: Patient, now: datetime = NOW) -> dict[str, object]:
    return facts_for_patient(patient=patient, now=now)


# --- scores --------------------------------------------------------------------------------------


def test_peg_8_to_5_is_a_37_5_percent_improvement_and_a_responder(patient: Patient) -> None:
    score(patient, "peg", 8, weeks=12, is_baseline=True)
    score(patient, "peg", 6, weeks=6)
    score(patient, "peg", 5, weeks=1)
    f = facts(patient)
    assert f["peg.latest"] == 5
    assert f["peg.baseline"] == 8
    assert f["peg.change"] == -3  # lower is better: the score fell by 3 points
    assert f["peg.improvement_pct"] == 37.5  # (8 - 5) / 8
    assert f["peg.responder"] is True  # MCID: 30 % reduction
    assert f["peg.weeks_since_latest"] == 1.0


def test_peg_below_30_percent_is_not_a_responder(patient: Patient) -> None:
    score(patient, "peg", 10, weeks=8)
    score(patient, "peg", 7.5, weeks=1)
    f = facts(patient)
    assert f["peg.improvement_pct"] == 25.0
    assert f["peg.responder"] is False


def test_psfs_is_higher_is_better_3_to_6_is_plus_100_percent(patient: Patient) -> None:
    score(patient, "psfs", 3, weeks=8)
    score(patient, "psfs", 6, weeks=1)
    f = facts(patient)
    assert f["psfs.change"] == 3
    assert f["psfs.improvement_pct"] == 100.0
    assert f["psfs.responder"] is True  # MCID: 2 points up


def test_psfs_getting_worse_is_a_negative_improvement(patient: Patient) -> None:
    score(patient, "psfs", 5, weeks=8)
    score(patient, "psfs", 4, weeks=1)
    f = facts(patient)
    assert f["psfs.change"] == -1
    assert f["psfs.improvement_pct"] == -20.0
    assert f["psfs.responder"] is False


def test_phq9_responder_needs_5_points(patient: Patient) -> None:
    score(patient, "phq9", 15, weeks=10)
    score(patient, "phq9", 11, weeks=1)
    f = facts(patient)
    assert f["phq9.change"] == -4
    assert f["phq9.improvement_pct"] == pytest.approx(26.67)
    assert f["phq9.responder"] is False
    score(patient, "phq9", 10, weeks=0)
    assert facts(patient)["phq9.responder"] is True


def test_gad7_mcid_is_4_points_inclusive(patient: Patient) -> None:
    score(patient, "gad7", 12, weeks=10)
    score(patient, "gad7", 8, weeks=1)
    assert facts(patient)["gad7.responder"] is True


def test_odi_mcid_is_10_points(patient: Patient) -> None:
    score(patient, "odi", 40, weeks=10)
    score(patient, "odi", 31, weeks=1)
    f = facts(patient)
    assert f["odi.improvement_pct"] == 22.5
    assert f["odi.responder"] is False


@pytest.mark.parametrize(
    ("baseline", "latest", "improvement", "responder"),
    [
        (6, 4, 33.33, True),  # 2 points and 33 %
        (10, 8, 20.0, True),  # 2 points suffice
        (3, 2, 33.33, True),  # 30 % suffices
        (5, 4, 20.0, False),
        (0, 2, None, False),  # nothing to improve on: no percentage, but 2 points worse
    ],
)
def test_nrs_responder_is_2_points_or_30_percent(
    patient: Patient,
    baseline: int,
    latest: int,
    improvement: float | None,
    responder: bool,
) -> None:
    score(patient, "nrs", baseline, weeks=4)
    score(patient, "nrs", latest, weeks=1)
    f = facts(patient)
    assert f["nrs.improvement_pct"] == (pytest.approx(improvement) if improvement else None)
    assert f["nrs.responder"] is responder


def test_baseline_0_has_no_improvement_percentage(patient: Patient) -> None:
    score(patient, "peg", 0, weeks=4)
    score(patient, "peg", 3, weeks=1)
    f = facts(patient)
    assert f["peg.change"] == 3
    assert f["peg.improvement_pct"] is None
    assert f["peg.responder"] is None  # the PEG MCID is a percentage: unknown, not false


@pytest.mark.parametrize(("answer", "responder"), [(1, True), (2, True), (3, False), (7, False)])
def test_pgic_responder_is_much_or_very_much_improved(
    patient: Patient, answer: int, responder: bool
) -> None:
    score(patient, "pgic", answer, weeks=1)
    f = facts(patient)
    assert f["pgic.latest"] == answer
    assert f["pgic.responder"] is responder
    assert f["pgic.improvement_pct"] is None


def test_pgic_never_has_an_improvement_percentage(patient: Patient) -> None:
    score(patient, "pgic", 4, weeks=6)
    score(patient, "pgic", 2, weeks=1)
    f = facts(patient)
    assert f["pgic.change"] == -2
    assert f["pgic.improvement_pct"] is None
    assert f["pgic.responder"] is True


def test_baseline_is_the_latest_marked_one_else_the_earliest(patient: Patient) -> None:
    score(patient, "peg", 9, weeks=20)
    score(patient, "peg", 7, weeks=10)
    score(patient, "peg", 6, weeks=2)
    assert facts(patient)["peg.baseline"] == 9  # none marked: the earliest
    score(patient, "peg", 8, weeks=12, is_baseline=True)
    score(patient, "peg", 6.5, weeks=11, is_baseline=True)  # re-baselined before a procedure
    f = facts(patient)
    assert f["peg.baseline"] == 6.5
    assert f["peg.latest"] == 6
    assert f["peg.improvement_pct"] == pytest.approx(7.69)


def test_a_baseline_alone_shows_no_change_rather_than_no_improvement(patient: Patient) -> None:
    score(patient, "peg", 7, weeks=3, is_baseline=True)
    f = facts(patient)
    assert f["peg.latest"] == 7
    assert f["peg.baseline"] == 7
    assert f["peg.change"] is None
    assert f["peg.improvement_pct"] is None
    assert f["peg.responder"] is None
    assert f["peg.weeks_since_latest"] == 3.0


def test_phq9_item9_is_the_latest_answer_to_item_9(patient: Patient) -> None:
    answers = {f"item{n}": 1 for n in range(1, 10)}  # sum 9
    score(patient, "phq9", 9, weeks=6, items=answers)
    assert facts(patient)["phq9.item9"] == 1
    score(patient, "phq9", 7, weeks=3)  # a total without items keeps the last answer
    assert facts(patient)["phq9.item9"] == 1
    score(patient, "phq9", 4, weeks=1, items={"item9": 0})
    assert facts(patient)["phq9.item9"] == 0


def test_facts_are_as_of_now(patient: Patient) -> None:
    score(patient, "peg", 8, weeks=10)
    score(patient, "peg", 4, weeks=1)
    earlier = facts(patient, now=weeks_ago(5))
    assert earlier["peg.latest"] == 8
    assert earlier["peg.change"] is None
    assert earlier["peg.weeks_since_latest"] == 5.0


def test_a_corrected_score_is_read_in_place_of_the_original(patient: Patient) -> None:
    services.score_record(patient=patient, instrument="peg", score=8, observed_at=weeks_ago(8))
    typo = services.score_record(
        patient=patient, instrument="peg", score=2, observed_at=weeks_ago(1)
    )
    assert facts(patient)["peg.latest"] == 2
    services.score_record(
        patient=patient, instrument="peg", score=6, observed_at=weeks_ago(1), corrects=typo
    )
    f = facts(patient)
    assert f["peg.latest"] == 6
    assert f["peg.improvement_pct"] == 25.0


def test_a_withdrawn_observation_is_not_read(patient: Patient) -> None:
    services.score_record(patient=patient, instrument="peg", score=8, observed_at=weeks_ago(8))
    wrong = services.score_record(
        patient=patient, instrument="peg", score=2, observed_at=weeks_ago(1)
    )
    services.observation_withdraw(observation=wrong, reason="Entered on the wrong patient")
    f = facts(patient)
    assert f["peg.latest"] == 8
    assert f["peg.change"] is None


def test_other_patients_observations_are_not_read(patient: Patient, other_patient: Patient) -> None:
    score(other_patient, "peg", 8, weeks=1)
    assert facts(patient)["peg.latest"] is None


# --- procedures ----------------------------------------------------------------------------------


def test_relief_comes_from_the_latest_assessed_procedure(patient: Patient) -> None:
    services.procedure_record(
        patient=patient, procedure="esi", performed_at=weeks_ago(10), relief_pct=60, relief_weeks=6
    )
    services.procedure_record(patient=patient, procedure="esi", performed_at=weeks_ago(1))
    f = facts(patient)
    assert f["esi.relief_pct"] == 60
    assert f["esi.relief_weeks"] == 6
    assert f["rfa.relief_pct"] is None


def test_relief_pct_and_weeks_come_from_the_same_procedure(patient: Patient) -> None:
    services.procedure_record(
        patient=patient, procedure="rfa", performed_at=weeks_ago(60), relief_pct=80, relief_weeks=26
    )
    services.procedure_record(
        patient=patient, procedure="rfa", performed_at=weeks_ago(4), relief_pct=60
    )
    f = facts(patient)
    assert f["rfa.relief_pct"] == 60
    assert f["rfa.relief_weeks"] is None  # not yet known for the latest RFA


def test_a_result_recorded_later_completes_the_procedure(patient: Patient) -> None:
    block = services.procedure_record(
        patient=patient, procedure="mbb1", performed_at=days_ago(3), region="L4-L5 right"
    )
    assert facts(patient)["mbb1.relief_pct"] is None
    result = services.procedure_result_record(
        procedure=block, relief_pct=85, assessed_at=days_ago(2.9)
    )
    assert result.observed_at == block.observed_at
    assert result.data["region"] == "L4-L5 right"
    f = facts(patient)
    assert f["mbb1.relief_pct"] == 85
    assert f["mbb1.relief_weeks"] is None


# --- other facts ---------------------------------------------------------------------------------


def test_session_counts(patient: Patient) -> None:
    for week, attended in [(6, True), (5, True), (4, False), (3, True)]:
        services.session_record(
            patient=patient, discipline="pt", attended=attended, observed_at=weeks_ago(week)
        )
    for week in (2, 1):
        services.session_record(
            patient=patient, discipline="cbt", attended=True, observed_at=weeks_ago(week)
        )
    f = facts(patient)
    assert (f["pt.sessions_attended"], f["pt.no_shows"]) == (3, 1)
    assert (f["cbt.sessions_attended"], f["cbt.no_shows"]) == (2, 0)


def test_failed_treatment_classes_are_counted_once_each(patient: Patient) -> None:
    for treatment_class, reason in [
        ("gabapentinoid", "insufficient_effect"),
        ("gabapentinoid", "adverse_effect"),  # pregabalin after gabapentin: same class
        ("snri", "adverse_effect"),
        ("physical_therapy", "insufficient_effect"),
    ]:
        services.failed_treatment_record(
            patient=patient,
            treatment_class=treatment_class,
            reason=reason,
            observed_at=weeks_ago(2),
        )
    assert facts(patient)["failed_treatment_classes"] == 3


@pytest.mark.parametrize(
    ("onset", "months"),
    [
        (date(2025, 9, 2), 6.0),  # six calendar months to the day (today is 2026-03-02)
        (date(2025, 9, 3), 5.9),  # the day before: rounded down, never early
        (date(2025, 12, 16), 2.5),  # 2 months to 16 Feb, then 14 of the 28 days to 16 Mar
        (date(2025, 12, 17), 2.4),  # 13 of 28 days is 0.46: rounded down
        (date(2024, 3, 2), 24.0),
        (date(2026, 3, 2), 0.0),
    ],
)
def test_pain_months_count_calendar_months(patient: Patient, onset: date, months: float) -> None:
    services.pain_onset_record(patient=patient, onset=onset)
    assert facts(patient)["pain.months"] == months


def test_pain_months_use_the_patients_calendar(patient: Patient, other_patient: Patient) -> None:
    # 03:00 UTC on 2 March is still 1 March in New York.
    now = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
    services.pain_onset_record(patient=patient, onset=date(2025, 9, 2))
    services.pain_onset_record(patient=other_patient, onset=date(2025, 9, 2))
    assert facts(patient, now=now)["pain.months"] == 6.0  # London
    assert facts(other_patient, now=now)["pain.months"] == 5.9  # New York


def test_the_latest_recorded_onset_holds(patient: Patient) -> None:
    services.pain_onset_record(patient=patient, onset=date(2025, 10, 2))
    services.pain_onset_record(patient=patient, onset=date(2025, 9, 2))  # restated, earlier
    assert facts(patient)["pain.months"] == 6.0


def test_conservative_care_weeks(patient: Patient) -> None:
    services.conservative_care_start_record(patient=patient, started=date(2026, 1, 5))
    assert facts(patient)["conservative_care.weeks"] == 8.0  # 56 days
    f = facts(patient, now=datetime(2026, 1, 8, 12, tzinfo=UTC))
    assert f["conservative_care.weeks"] == 0.4  # 3 days, rounded down


def test_psych_evaluation_outcome_is_the_latest(patient: Patient) -> None:
    services.psych_evaluation_record(
        patient=patient, outcome="deferred_pending_treatment", observed_at=weeks_ago(12)
    )
    services.psych_evaluation_record(patient=patient, outcome="cleared", observed_at=weeks_ago(1))
    assert facts(patient)["psych_eval.outcome"] == "cleared"


def test_boolean_statuses_hold_their_latest_value(patient: Patient) -> None:
    services.status_record(
        patient=patient, code="naloxone_offered", value=True, observed_at=weeks_ago(4)
    )
    services.status_record(
        patient=patient, code="substance_use_active", value=True, observed_at=weeks_ago(10)
    )
    services.status_record(
        patient=patient, code="substance_use_active", value=False, observed_at=weeks_ago(2)
    )
    f = facts(patient)
    assert f["naloxone.offered"] is True
    assert f["substance_use.active"] is False
    assert f["adverse_effects.intolerable"] is None


def test_days_since_occurrence_statuses(patient: Patient) -> None:
    services.status_record(
        patient=patient, code="pdmp_checked", value=None, observed_at=days_ago(30)
    )
    services.status_record(
        patient=patient, code="pdmp_checked", value=None, observed_at=days_ago(10)
    )
    services.status_record(
        patient=patient, code="opioid_reassessed", value=None, observed_at=days_ago(45.5)
    )
    f = facts(patient)
    assert f["pdmp.days_since_check"] == 10.0
    assert f["opioid.days_since_reassessment"] == 45.5
    assert f["udt.days_since"] is None


# --- medication ----------------------------------------------------------------------------------


def medication(
    patient: Patient, drug: str, dose: float, unit: str = "mg", weeks: float = 2
) -> None:
    services.medication_record(
        patient=patient, drug=drug, daily_dose=dose, unit=unit, observed_at=weeks_ago(weeks)
    )


def test_mme_sums_each_opioids_latest_dose_times_its_cdc_factor(patient: Patient) -> None:
    medication(patient, "oxycodone", 30)  # 30 mg x 1.5 = 45
    medication(patient, "tramadol", 100)  # 100 mg x 0.2 = 20
    medication(patient, "gabapentin", 1800)  # not an opioid
    f = facts(patient)
    assert f["mme.daily"] == 65
    assert f["opioid.long_term"] is True
    breakdown = mme_breakdown(patient=patient, now=NOW)
    assert breakdown.per_drug == {"oxycodone": 45, "tramadol": 20}
    assert breakdown.source == "CDC 2022 Clinical Practice Guideline"


def test_a_stopped_opioid_no_longer_counts(patient: Patient) -> None:
    medication(patient, "oxycodone", 30, weeks=8)
    medication(patient, "tramadol", 100, weeks=8)
    medication(patient, "oxycodone", 0, weeks=1)
    assert facts(patient)["mme.daily"] == 20
    medication(patient, "tramadol", 0, weeks=0.5)
    f = facts(patient)
    assert f["mme.daily"] == 0
    assert f["opioid.long_term"] is False


def test_the_fentanyl_patch_is_converted_from_mcg_per_hour(patient: Patient) -> None:
    medication(patient, "Fentanyl transdermal", 25, unit="mcg/h")
    assert facts(patient)["mme.daily"] == 60  # 25 mcg/h x 2.4


def test_opioids_without_a_factor_are_listed_not_counted(patient: Patient) -> None:
    medication(patient, "buprenorphine", 8)
    medication(patient, "morphine", 20)
    f = facts(patient)
    assert f["mme.daily"] == 20
    assert f["opioid.long_term"] is True
    assert mme_breakdown(patient=patient, now=NOW).not_counted == ("buprenorphine",)


def test_benzodiazepine_flag(patient: Patient) -> None:
    medication(patient, "oxycodone", 10)
    assert facts(patient)["benzodiazepine.coprescribed"] is False
    medication(patient, "lorazepam", 2, weeks=1)
    assert facts(patient)["benzodiazepine.coprescribed"] is True
    medication(patient, "lorazepam", 0, weeks=0.5)
    assert facts(patient)["benzodiazepine.coprescribed"] is False


def test_without_medication_mme_is_0(patient: Patient) -> None:
    f = facts(patient)
    assert f["mme.daily"] == 0
    assert f["opioid.long_term"] is False
    assert f["benzodiazepine.coprescribed"] is False


# --- the contract with the engine --------------------------------------------------------------

COUNTS = {
    "pt.sessions_attended",
    "pt.no_shows",
    "cbt.sessions_attended",
    "cbt.no_shows",
    "failed_treatment_classes",
}
FROM_THE_MEDICATION_LIST = {"mme.daily", "opioid.long_term", "benzodiazepine.coprescribed"}


def test_every_fact_emitted_is_in_the_catalogue_and_only_known_gaps_are_missing(
    patient: Patient,
) -> None:
    emitted = set(facts(patient))
    assert emitted <= set(STANDARD_FACTS)
    assert emitted | set(NOT_COMPUTED) == set(STANDARD_FACTS)
    assert not emitted & set(NOT_COMPUTED)


def test_missing_facts_are_none_and_counts_are_zero(patient: Patient) -> None:
    f = facts(patient)
    for name, value in f.items():
        if name in COUNTS:
            assert value == 0, name
        elif name not in FROM_THE_MEDICATION_LIST:
            assert value is None, name


def test_fact_values_have_the_catalogue_types(patient: Patient) -> None:
    for instrument in ("peg", "nrs", "phq9", "gad7", "pgic", "psfs", "odi"):
        score(patient, instrument, 5, weeks=8, is_baseline=True)
        score(patient, instrument, 4, weeks=6)
        score(patient, instrument, 3, weeks=4)
        score(patient, instrument, 2, weeks=1)
    services.score_record(
        patient=patient, instrument="phq9", score=1, observed_at=NOW, items={"item9": 1}
    )
    for procedure in ("mbb1", "mbb2", "rfa", "esi", "nerve_block", "scs_trial", "it_trial"):
        services.procedure_record(
            patient=patient,
            procedure=procedure,
            performed_at=weeks_ago(3),
            relief_pct=70,
            relief_weeks=2,
        )
    services.pain_onset_record(patient=patient, onset=date(2024, 1, 1))
    services.conservative_care_start_record(patient=patient, started=date(2025, 6, 1))
    services.psych_evaluation_record(patient=patient, outcome="cleared", observed_at=weeks_ago(1))
    services.failed_treatment_record(
        patient=patient, treatment_class="nsaid", reason="contraindicated", observed_at=weeks_ago(1)
    )
    services.session_record(patient=patient, discipline="pt", attended=True, observed_at=NOW)
    medication(patient, "morphine", 60)
    for code, value in [
        ("naloxone_offered", True),
        ("substance_use_active", False),
        ("adverse_effects_intolerable", False),
        ("pdmp_checked", None),
        ("udt_done", None),
        ("opioid_reassessed", None),
    ]:
        services.status_record(patient=patient, code=code, value=value, observed_at=weeks_ago(1))

    python_types = {"number": (int, float), "boolean": (bool,), "string": (str,)}
    for name, value in facts(patient).items():
        if name in ("pgic.improvement_pct", "pgic.trend"):
            continue  # PGIC is itself a rating of change: never a percentage, no trend
        assert value is not None, name
        expected = STANDARD_FACTS[name].type
        assert isinstance(value, python_types[expected]), (name, value)
        if expected == "number":
            assert not isinstance(value, bool), name


def test_withdrawing_a_procedure_record_withdraws_the_procedure_with_its_result(
    patient: Patient,
) -> None:
    block = services.procedure_record(patient=patient, procedure="mbb1", performed_at=days_ago(3))
    result = services.procedure_result_record(
        procedure=block, relief_pct=30, assessed_at=days_ago(2)
    )
    fixed = services.procedure_result_record(
        procedure=result, relief_pct=80, relief_weeks=1, assessed_at=days_ago(2)
    )
    f = facts(patient)
    assert (f["mbb1.relief_pct"], f["mbb1.relief_weeks"]) == (80, 1)
    services.observation_withdraw(observation=fixed, reason="Block was cancelled")
    assert facts(patient)["mbb1.relief_pct"] is None


def test_trend_follows_the_instrument_library_rule(patient: Patient) -> None:
    for weeks, value in ((7, 8.0), (5, 7.0), (3, 6.0), (1, 5.0)):
        score(patient, "peg", value, weeks=weeks, is_baseline=weeks == 7)
    assert facts(patient)["peg.trend"] == "improving"
    for weeks, value in ((7, 6), (5, 6), (3, 7), (1, 6)):
        score(patient, "phq9", value, weeks=weeks)
    assert facts(patient)["phq9.trend"] == "stable"
    assert facts(patient)["gad7.trend"] is None  # no scores: no trend
