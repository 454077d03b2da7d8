"""The domain rules every door now shares: the first score of an instrument is the baseline
unless told otherwise, and recording then telling the pathways is one service."""

from __future__ import annotations

from datetime import timedelta

import pytest
from rest_framework.test import APIClient

from carehub.accounts.models import User
from carehub.core.exceptions import InvalidInput, NotPermitted
from carehub.observations import services
from carehub.observations.models import Observation
from carehub.observations.scores import score_observation_record
from carehub.pathways.models import Enrolment, PathwayStep
from carehub.pathways.recording import observation_record_and_tell
from carehub.pathways.services import enrolment_pause, enrolment_start
from carehub.patients.models import Patient
from tests.carehub.observations.conftest import NOW, days_ago

pytestmark = pytest.mark.django_db

PEG = {"pain": 6, "enjoyment": 5, "activity": 4}


# --- the baseline rule ---------------------------------------------------------------------------


def test_the_first_current_score_of_an_instrument_is_the_baseline(patient: Patient) -> None:
    first = services.score_record(
        patient=patient, instrument="nrs", score=7, observed_at=days_ago(9)
    )
    second = services.score_record(patient=patient, instrument="nrs", score=5, observed_at=NOW)
    other = services.score_record(patient=patient, instrument="peg", score=5, observed_at=NOW)
    assert (first.is_baseline, second.is_baseline, other.is_baseline) == (True, False, True)
    # A correction keeps the mark of what it corrects; explicit values win.
    fixed = services.score_record(
        patient=patient, instrument="nrs", score=6, observed_at=days_ago(9), corrects=first
    )
    assert fixed.is_baseline is True
    explicit = services.score_record(
        patient=patient, instrument="nrs", score=4, observed_at=NOW, is_baseline=True
    )
    assert explicit.is_baseline is True
    # A withdrawn first score does not count: the next one recorded is the baseline.
    gad7 = services.score_record(patient=patient, instrument="gad7", score=8, observed_at=NOW)
    services.observation_withdraw(observation=gad7, reason="wrong patient")
    again = services.score_record(patient=patient, instrument="gad7", score=3, observed_at=NOW)
    assert again.is_baseline is True


def test_the_api_field_is_optional_and_omitted_means_the_domain_rule(
    patient: Patient, nurse: User
) -> None:
    client = APIClient()
    client.force_authenticate(nurse)

    def post(key: str, **extra: object) -> dict:  # type: ignore[type-arg]
        body = {"instrument": "peg", "items": PEG, "observed_at": days_ago(1).isoformat(), **extra}
        response = client.post(
            f"/api/v1/patients/{patient.pk}/scores", body, format="json", HTTP_IDEMPOTENCY_KEY=key
        )
        assert response.status_code == 201, response.content
        return response.json()["observation"]

    assert post("a", is_baseline=None)["is_baseline"] is True
    assert post("b")["is_baseline"] is False
    assert post("c", is_baseline=True)["is_baseline"] is True
    assert post("d", instrument="nrs", items={"pain": 4}, is_baseline=False)["is_baseline"] is False


def test_a_patients_first_checkin_score_is_their_baseline_too(patient: Patient) -> None:
    recorded = score_observation_record(
        patient=patient, instrument="peg", items=PEG, observed_at=NOW, source="patient"
    )
    assert recorded.observation is not None
    assert recorded.observation.is_baseline is True
    assert recorded.observation.data == {
        "items": PEG, "band": "moderate", "instrument_version": 1,
    }  # fmt: skip


# --- record, then tell the pathways --------------------------------------------------------------


@pytest.fixture
def enrolment(patient: Patient) -> Enrolment:
    return enrolment_start(patient=patient, definition_key="intractable-pain")


def session(patient: Patient, nurse: User):  # type: ignore[no-untyped-def]
    return lambda: services.session_record(
        patient=patient, discipline="pt", attended=True, observed_at=NOW - timedelta(hours=1),
        recorded_by=nurse,
    )  # fmt: skip


def test_the_event_goes_to_the_pathways_with_one_key_and_a_retry_replays(
    enrolment: Enrolment, physio: User
) -> None:
    patient = enrolment.patient
    told = observation_record_and_tell(
        patient=patient, record=session(patient, physio), event="pt_session_logged",
        idempotency_key="form-1", user=physio, require_listener=True,
    )  # fmt: skip
    assert isinstance(told.recorded, Observation)
    [result] = told.results
    assert (result.step.event, result.replayed) == ("pt_session_logged", False)
    step = PathwayStep.objects.get(enrolment=enrolment, event="pt_session_logged")
    assert step.actor == physio
    again = observation_record_and_tell(
        patient=patient, record=lambda: told.recorded, event="pt_session_logged",
        idempotency_key="form-1", user=physio, require_listener=True,
    )  # fmt: skip
    assert again.results[0].replayed is True
    assert PathwayStep.objects.filter(enrolment=enrolment, event="pt_session_logged").count() == 1


def test_an_event_nobody_accepts_is_refused_first_or_recorded_anyway_as_the_door_says(
    enrolment: Enrolment, physio: User
) -> None:
    patient = enrolment.patient
    called = []
    with pytest.raises(InvalidInput, match="No active pathway of this patient accepts"):
        observation_record_and_tell(
            patient=patient, record=lambda: called.append(1), event="no_such_event",
            idempotency_key="k", user=physio, require_listener=True,
        )  # fmt: skip
    with pytest.raises(NotPermitted, match="nobody sends it"):  # a timer's own event
        observation_record_and_tell(
            patient=patient, record=lambda: called.append(1), event="cbt_session_due",
            idempotency_key="k", user=physio, require_listener=True,
        )  # fmt: skip
    assert called == []  # refused before recording
    enrolment_pause(enrolment_id=enrolment.pk, reason="Hospital stay", user=physio)
    told = observation_record_and_tell(
        patient=patient, record=session(patient, physio), event="pt_session_logged",
        idempotency_key="k2", user=physio, require_listener=False,
    )  # fmt: skip
    assert (told.results, told.paused, told.not_told) == ([], True, None)
    assert Observation.objects.filter(patient=patient, kind="session").count() == 1


def test_a_refusal_after_recording_keeps_the_observation_and_says_why(
    enrolment: Enrolment, physio: User
) -> None:
    """The pathway paused between the check and the event (another user): the session stays
    recorded and the refusal comes back for the door to say."""
    patient = enrolment.patient

    def record_while_paused() -> Observation:
        observation = session(patient, physio)()
        enrolment_pause(enrolment_id=enrolment.pk, reason="Meanwhile", user=physio)
        return observation

    told = observation_record_and_tell(
        patient=patient, record=record_while_paused, event="pt_session_logged",
        idempotency_key="k3", user=physio, require_listener=True,
    )  # fmt: skip
    assert told.results == []
    assert told.not_told is not None
    assert Observation.objects.filter(pk=told.recorded.pk).exists()


def test_answers_that_are_not_scored_items_are_kept_with_the_score(patient: Patient) -> None:
    answers = {f"item{n}": 1 for n in range(1, 10)} | {"difficulty": 2}
    recorded = score_observation_record(
        patient=patient, instrument="phq9", items=answers, observed_at=NOW, source="staff"
    )
    assert recorded.observation is not None
    data = recorded.observation.data
    assert (data["items"]["item9"], data["other_answers"], data["band"]) == (
        1,
        {"difficulty": 2},
        "mild",
    )
