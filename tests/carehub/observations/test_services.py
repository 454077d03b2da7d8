"""Recording observations: what is stored, and bad input refused with nothing written."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from django.db import IntegrityError, transaction

from carehub.accounts.models import User
from carehub.core.exceptions import Conflict, InvalidInput
from carehub.observations import services
from carehub.observations.models import Kind, Observation, Source
from carehub.patients.models import Patient
from tests.carehub.observations.conftest import NOW, days_ago, weeks_ago

pytestmark = pytest.mark.django_db


def test_a_score_is_stored_with_who_recorded_it_and_its_items(
    patient: Patient, nurse: User
) -> None:
    answers = {f"item{n}": 2 for n in range(1, 10)}
    observation = services.score_record(
        patient=patient,
        instrument="PHQ9",
        score=18,
        observed_at=days_ago(1),
        recorded_by=nurse,
        is_baseline=True,
        items=answers,
    )
    observation.refresh_from_db()
    assert (observation.kind, observation.code, observation.value_number) == ("score", "phq9", 18)
    assert observation.recorded_by == nurse
    assert observation.source == Source.STAFF
    assert observation.is_baseline is True
    assert observation.data == {"items": answers}


def test_each_kind_is_stored_as_documented(patient: Patient) -> None:
    procedure = services.procedure_record(
        patient=patient, procedure="esi", performed_at=days_ago(20), region="L5-S1"
    )
    assert (procedure.kind, procedure.value_number, procedure.data) == (
        Kind.PROCEDURE,
        None,
        {"region": "L5-S1"},
    )
    session = services.session_record(
        patient=patient, discipline="cbt", attended=False, observed_at=days_ago(2), notes=" Ill "
    )
    assert (session.code, session.value_bool, session.data) == ("cbt", False, {"notes": "Ill"})
    drug = services.medication_record(
        patient=patient, drug="Oxycodone", daily_dose=30, unit="MG", observed_at=days_ago(5)
    )
    assert (drug.code, drug.value_number, drug.data) == ("oxycodone", 30, {"unit": "mg"})
    failed = services.failed_treatment_record(
        patient=patient,
        treatment_class="gabapentinoid",
        reason="adverse_effect",
        observed_at=days_ago(40),
        max_dose="1800 mg/day",
        duration_weeks=6,
        baseline_score=7,
        end_score=6.5,
    )
    assert failed.value_text == "adverse_effect"
    assert failed.data == {
        "max_dose": "1800 mg/day",
        "duration_weeks": 6,
        "baseline_score": 7,
        "end_score": 6.5,
    }
    onset = services.pain_onset_record(patient=patient, onset=date(2025, 7, 1))
    assert onset.observed_at.isoformat() == "2025-07-01T00:00:00+01:00"  # London, summer time
    assert onset.data == {"date": "2025-07-01"}
    status = services.status_record(
        patient=patient, code="udt_done", value=None, observed_at=days_ago(3)
    )
    assert (status.code, status.value_bool) == ("udt_done", None)


def test_patients_can_report_scores_but_not_the_licensed_odi(patient: Patient) -> None:
    services.score_record(
        patient=patient, instrument="peg", score=6.3, observed_at=NOW, source="patient"
    )
    with pytest.raises(InvalidInput, match="source: odi is licensed"):
        services.score_record(
            patient=patient, instrument="odi", score=40, observed_at=NOW, source="patient"
        )


InvalidCase = tuple[str, Callable[[Patient], Any], str]


def _score(**overrides: Any) -> Callable[[Patient], Any]:
    def record(patient: Patient) -> Any:
        arguments: dict[str, Any] = {
            "patient": patient,
            "instrument": "phq9",
            "score": 10,
            "observed_at": days_ago(1),
        }
        return services.score_record(**{**arguments, **overrides})

    return record


INVALID: list[InvalidCase] = [
    ("unknown instrument", _score(instrument="bpi"), "instrument: unknown instrument 'bpi'"),
    ("phq9 above range", _score(score=28), "score: phq9 scores run from 0 to 27 (got 28)"),
    ("negative peg", _score(instrument="peg", score=-1), "score: peg scores run from 0 to 10"),
    ("pgic 0", _score(instrument="pgic", score=0), "score: pgic scores run from 1 to 7"),
    ("odi above 100", _score(instrument="odi", score=101), "score: odi scores run from 0 to 100"),
    ("fractional phq9", _score(score=9.5), "score: phq9 scores are whole numbers"),
    ("score as text", _score(score="12"), "score: must be a number"),
    ("score as bool", _score(score=True), "score: must be a number"),
    ("score nan", _score(score=float("nan")), "score: must be a number"),
    ("naive time", _score(observed_at=datetime(2026, 3, 1, 9)), "observed_at: must be time-zone"),
    ("date not time", _score(observed_at=date(2026, 3, 1)), "observed_at: must be a date and time"),
    ("future", _score(observed_at=NOW + timedelta(hours=1)), "observed_at: is in the future"),
    ("item out of range", _score(items={"item9": 4}), "items: phq9 item9 answers are whole"),
    ("unknown item", _score(items={"item10": 1}), "items: unknown phq9 item 'item10'"),
    (
        "items not adding up",
        _score(items={f"item{n}": 1 for n in range(1, 10)}),
        "items: the phq9 item answers add up to 9, not the score 10",
    ),
    (
        "peg mean mismatch",
        _score(instrument="peg", score=5, items={"pain": 8, "enjoyment": 7, "activity": 6}),
        "items: the mean of the peg items is 7.00, not the score 5",
    ),
    ("odi items", _score(instrument="odi", score=40, items={"s1": 2}), "items: odi is licensed"),
    ("nrs items", _score(instrument="nrs", score=4, items={"a": 1}), "items: nrs has no items"),
    ("empty items", _score(items={}), "items: must be a non-empty mapping"),
    ("bad source", _score(source="fax"), "source: Value 'fax' is not a valid choice"),
    (
        "unknown procedure",
        lambda p: services.procedure_record(
            patient=p, procedure="vertebroplasty", performed_at=NOW
        ),
        "procedure: unknown procedure 'vertebroplasty'",
    ),
    (
        "relief above 100",
        lambda p: services.procedure_record(
            patient=p, procedure="esi", performed_at=NOW, relief_pct=120
        ),
        "relief_pct: relief is a percentage from 0 to 100",
    ),
    (
        "weeks without relief",
        lambda p: services.procedure_record(
            patient=p, procedure="esi", performed_at=NOW, relief_weeks=4
        ),
        "relief_weeks: needs relief_pct",
    ),
    (
        "negative weeks",
        lambda p: services.procedure_record(
            patient=p, procedure="esi", performed_at=NOW, relief_pct=50, relief_weeks=-1
        ),
        "relief_weeks: must be a number of weeks, 0 or more",
    ),
    (
        "unknown discipline",
        lambda p: services.session_record(
            patient=p, discipline="ot", attended=True, observed_at=NOW
        ),
        "discipline: unknown discipline 'ot'",
    ),
    (
        "attended not bool",
        lambda p: services.session_record(patient=p, discipline="pt", attended=1, observed_at=NOW),
        "attended: must be true or false",
    ),
    (
        "negative dose",
        lambda p: services.medication_record(
            patient=p, drug="morphine", daily_dose=-5, unit="mg", observed_at=NOW
        ),
        "daily_dose: the daily dose is a number, 0 (stopped) or more",
    ),
    (
        "opioid in the wrong unit",
        lambda p: services.medication_record(
            patient=p, drug="fentanyl_transdermal", daily_dose=25, unit="mg", observed_at=NOW
        ),
        "unit: fentanyl_transdermal is recorded in mcg/h (got mg)",
    ),
    (
        "unknown unit",
        lambda p: services.medication_record(
            patient=p, drug="gabapentin", daily_dose=900, unit="tablets", observed_at=NOW
        ),
        "unit: must be one of",
    ),
    (
        "drug code with punctuation",
        lambda p: services.medication_record(
            patient=p, drug="oxycodone/naloxone", daily_dose=20, unit="mg", observed_at=NOW
        ),
        "drug: 'oxycodone/naloxone' is not a drug code",
    ),
    (
        "unknown treatment class",
        lambda p: services.failed_treatment_record(
            patient=p, treatment_class="magnets", reason="insufficient_effect", observed_at=NOW
        ),
        "treatment_class: unknown treatment class 'magnets'",
    ),
    (
        "unknown reason",
        lambda p: services.failed_treatment_record(
            patient=p, treatment_class="nsaid", reason="cost", observed_at=NOW
        ),
        "reason: unknown reason 'cost'",
    ),
    (
        "negative duration",
        lambda p: services.failed_treatment_record(
            patient=p,
            treatment_class="nsaid",
            reason="adverse_effect",
            observed_at=NOW,
            duration_weeks=-2,
        ),
        "duration_weeks: must be a number, 0 or more",
    ),
    (
        "future onset",
        lambda p: services.pain_onset_record(patient=p, onset=date(2026, 3, 3)),
        "onset: 2026-03-03 is in the future",
    ),
    (
        "onset as datetime",
        lambda p: services.pain_onset_record(patient=p, onset=NOW),
        "onset: must be a date",
    ),
    (
        "future conservative care",
        lambda p: services.conservative_care_start_record(patient=p, started=date(2027, 1, 1)),
        "started: 2027-01-01 is in the future",
    ),
    (
        "unknown psych outcome",
        lambda p: services.psych_evaluation_record(patient=p, outcome="maybe", observed_at=NOW),
        "outcome: unknown outcome 'maybe'",
    ),
    (
        "unknown status",
        lambda p: services.status_record(patient=p, code="happy", value=True, observed_at=NOW),
        "code: unknown status 'happy'",
    ),
    (
        "boolean status without value",
        lambda p: services.status_record(
            patient=p, code="naloxone_offered", value=None, observed_at=NOW
        ),
        "value: naloxone_offered is true or false",
    ),
    (
        "occurrence with a value",
        lambda p: services.status_record(patient=p, code="udt_done", value=True, observed_at=NOW),
        "value: udt_done records that something was done: give no value",
    ),
]


@pytest.mark.parametrize(
    ("record", "message"), [case[1:] for case in INVALID], ids=[case[0] for case in INVALID]
)
def test_invalid_input_is_refused_with_the_field_named_and_nothing_written(
    patient: Patient, record: Callable[[Patient], Any], message: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        record(patient)
    assert message in caught.value.message
    field = message.split(":")[0]
    assert field in caught.value.extra["fields"]
    assert Observation.objects.count() == 0


def test_a_recording_call_takes_only_its_kinds_arguments(patient: Patient) -> None:
    """The services take their keyword arguments from one TypedDict a kind: a misspelt or a
    missing one is a TypeError, as for any Python call, and nothing is written."""
    call: Any = services.status_record
    with pytest.raises(TypeError, match=r"StatusArguments: unexpected \['valeu'\]"):
        call(patient=patient, code="pdmp_checked", valeu=None, observed_at=days_ago(1))
    with pytest.raises(TypeError, match=r"missing \['observed_at'\]"):
        call(patient=patient, code="pdmp_checked", value=None)
    call = services.score_record
    with pytest.raises(TypeError, match="ScoreArguments: unexpected none, missing"):
        call(patient=patient, instrument="peg", observed_at=days_ago(1))
    assert Observation.objects.count() == 0
    # Left-out optional arguments take the kind's defaults.
    score = services.score_record(
        patient=patient, instrument="nrs", score=6, observed_at=days_ago(1)
    )
    assert (score.source, score.is_baseline, score.recorded_by) == (Source.STAFF, True, None)


def test_onset_before_birth_is_refused(clinic: Any) -> None:
    from carehub.patients.services import patient_register

    young = patient_register(
        clinic=clinic,
        mrn="RV-0100",
        given_name="Cai",
        family_name="Lee",
        time_zone="Europe/London",
        date_of_birth=date(2000, 5, 1),
    )
    with pytest.raises(InvalidInput, match="onset: is before the patient's date of birth"):
        services.pain_onset_record(patient=young, onset=date(1999, 1, 1))


def test_staff_record_for_their_own_clinic_only(patient: Patient, outsider: User) -> None:
    with pytest.raises(InvalidInput, match="recorded_by: staff record observations of their own"):
        services.score_record(
            patient=patient, instrument="nrs", score=5, observed_at=NOW, recorded_by=outsider
        )
    assert not Observation.objects.exists()


def test_a_few_seconds_of_clock_drift_are_tolerated_not_more(patient: Patient, settings) -> None:  # type: ignore[no-untyped-def]
    services.score_record(
        patient=patient, instrument="nrs", score=5, observed_at=NOW + timedelta(seconds=4)
    )
    with pytest.raises(InvalidInput, match="observed_at: is in the future"):
        services.score_record(
            patient=patient, instrument="nrs", score=5, observed_at=NOW + timedelta(seconds=30)
        )
    settings.OBSERVATION_MAX_FUTURE_SKEW_SECONDS = 60
    services.score_record(
        patient=patient, instrument="nrs", score=5, observed_at=NOW + timedelta(seconds=30)
    )


# --- corrections, results and withdrawals --------------------------------------------------------


def test_a_correction_replaces_once(patient: Patient) -> None:
    original = services.score_record(patient=patient, instrument="nrs", score=9, observed_at=NOW)
    correction = services.score_record(
        patient=patient, instrument="nrs", score=6, observed_at=NOW, corrects=original
    )
    assert correction.corrects == original
    with pytest.raises(Conflict, match=f"already replaced by observation {correction.pk}"):
        services.score_record(
            patient=patient, instrument="nrs", score=5, observed_at=NOW, corrects=original
        )
    services.score_record(
        patient=patient, instrument="nrs", score=5, observed_at=NOW, corrects=correction
    )
    assert Observation.objects.count() == 3


def test_a_correction_must_be_of_the_same_patient_and_kind(
    patient: Patient, other_patient: Patient
) -> None:
    score = services.score_record(patient=patient, instrument="nrs", score=9, observed_at=NOW)
    with pytest.raises(InvalidInput, match="corrects: is an observation of another patient"):
        services.score_record(
            patient=other_patient, instrument="nrs", score=6, observed_at=NOW, corrects=score
        )
    with pytest.raises(InvalidInput, match="corrects: is a score observation, not a session"):
        services.session_record(
            patient=patient, discipline="pt", attended=True, observed_at=NOW, corrects=score
        )
    assert Observation.objects.count() == 1


def test_a_procedure_result_must_follow_the_current_record(patient: Patient) -> None:
    block = services.procedure_record(patient=patient, procedure="mbb2", performed_at=days_ago(1))
    with pytest.raises(InvalidInput, match="assessed_at: is before the procedure"):
        services.procedure_result_record(procedure=block, relief_pct=90, assessed_at=days_ago(2))
    services.procedure_result_record(procedure=block, relief_pct=90, assessed_at=days_ago(0.9))
    with pytest.raises(Conflict, match=r"procedure: observation \d+ was already replaced"):
        services.procedure_result_record(procedure=block, relief_pct=95, assessed_at=NOW)


def test_withdrawal(patient: Patient, nurse: User) -> None:
    wrong = services.session_record(
        patient=patient, discipline="pt", attended=True, observed_at=weeks_ago(1)
    )
    with pytest.raises(InvalidInput, match="reason: say why"):
        services.observation_withdraw(observation=wrong, reason="  ")
    withdrawal = services.observation_withdraw(
        observation=wrong, reason="Another patient's session", recorded_by=nurse
    )
    assert withdrawal.entered_in_error is True
    assert withdrawal.corrects == wrong
    assert withdrawal.data["withdrawal_reason"] == "Another patient's session"
    with pytest.raises(InvalidInput, match="observation: is already a withdrawal"):
        services.observation_withdraw(observation=withdrawal, reason="again")
    with pytest.raises(InvalidInput, match="corrects: is a withdrawal"):
        services.session_record(
            patient=patient,
            discipline="pt",
            attended=True,
            observed_at=weeks_ago(1),
            corrects=withdrawal,
        )


def test_observations_are_append_only(patient: Patient) -> None:
    observation = services.score_record(patient=patient, instrument="nrs", score=4, observed_at=NOW)
    observation.value_number = 2
    with pytest.raises(Conflict, match="append-only"):
        observation.save()
    observation.refresh_from_db()
    assert observation.value_number == 4


@pytest.mark.parametrize(
    ("values", "constraint"),
    [
        ({"kind": "score", "code": "peg"}, "observation_score_has_number"),
        ({"kind": "procedure", "code": "esi", "value_number": 150}, "observation_relief_is"),
        ({"kind": "medication", "code": "morphine"}, "observation_medication_has_dose"),
        ({"kind": "session", "code": "pt"}, "observation_session_has_attendance"),
        ({"kind": "failed_treatment", "code": "nsaid"}, "observation_failed_treatment_has"),
        ({"kind": "psych_evaluation", "code": "x", "value_text": "ok"}, "observation_psych"),
        ({"kind": "status", "code": "udt_done", "is_baseline": True}, "observation_baseline"),
        ({"kind": "status", "code": "udt_done", "entered_in_error": True}, "observation_withdr"),
        ({"kind": "nonsense", "code": "x"}, "observation_kind_valid"),
        ({"kind": "status", "code": ""}, "observation_code_given"),
    ],
)
def test_the_database_refuses_what_the_services_refuse(
    patient: Patient, values: dict[str, Any], constraint: str
) -> None:
    with pytest.raises(IntegrityError, match=constraint), transaction.atomic():
        Observation.objects.create(patient=patient, observed_at=NOW, **values)
