"""Incomplete answer sets are refused with the missing items named, and the check-in stays open
and usable, whatever the door; an instrument whose scoring rule allows items to be missing (the
block diary) is recorded with them missing. Staff totals: alone only where the instrument allows
it, and with the items only when they agree."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from carehub.checkins.models import Checkin, CheckinStatus
from carehub.core.exceptions import InvalidInput
from carehub.observations.models import Observation
from carehub.observations.scores import score_observation_record
from carehub.pathways.models import Enrolment
from carehub.worklists.models import Flag
from tests.support.patients import (
    Clinicians,
    clinic_with_team,
    enrolled_patient,
    open_checkin,
    patient_user,
    send_link,
)

pytestmark = pytest.mark.django_db

PEG_WITHOUT_ACTIVITY = {"pain": 6, "enjoyment": 5}
PEG = PEG_WITHOUT_ACTIVITY | {"activity": 4}


@pytest.fixture(autouse=True)
def frozen_clock() -> None:
    """Real time (this package's conftest freezes it; check-ins open relative to now)."""


@pytest.fixture
def team() -> Clinicians:
    return clinic_with_team("pa")


@pytest.fixture
def enrolment(team: Clinicians) -> Enrolment:
    return enrolled_patient(team, "PA-1", username="pa-patient")


def still_open(checkin: Checkin) -> None:
    checkin.refresh_from_db()
    assert (checkin.status, checkin.answers, checkin.score) == (CheckinStatus.OPEN, {}, None)
    assert checkin.observation_id is None
    assert not Observation.objects.filter(patient_id=checkin.patient_id).exists()


def form_data(answers: dict[str, Any]) -> dict[str, str]:
    return {key: str(value) for key, value in answers.items()}


# --- check-ins: API, link page, portal ----------------------------------------------------------


@pytest.mark.parametrize("role", ["patient", "coordinator"])
def test_api_a_peg_missing_an_item_is_refused_and_the_checkin_stays_usable(
    team: Clinicians, enrolment: Enrolment, role: str
) -> None:
    checkin = open_checkin(enrolment, "peg")
    client = APIClient()
    client.force_authenticate(patient_user(enrolment) if role == "patient" else team.coordinator)
    url = f"/api/v1/checkins/{checkin.pk}/answers"
    refused = client.post(
        url, {"answers": PEG_WITHOUT_ACTIVITY}, format="json", HTTP_IDEMPOTENCY_KEY="partial"
    )
    assert refused.status_code == 400
    assert refused["Content-Type"] == "application/problem+json"
    errors = refused.json()["errors"]
    assert list(errors) == ["answers.activity"]
    assert "Please answer this question" in errors["answers.activity"][0]
    still_open(checkin)
    # The refusal released the key: the corrected answers may reuse it.
    done = client.post(url, {"answers": PEG}, format="json", HTTP_IDEMPOTENCY_KEY="partial")
    assert done.status_code == 201, done.content
    assert done.json()["score"] == 5.0
    checkin.refresh_from_db()
    assert (checkin.status, checkin.score) == (CheckinStatus.ANSWERED, 5.0)


def test_link_page_a_peg_missing_an_item_shows_the_error_and_stays_open(
    enrolment: Enrolment,
) -> None:
    checkin = open_checkin(enrolment, "peg")
    token = send_link(checkin)
    client = Client()
    refused = client.post(f"/c/{token}", form_data(PEG_WITHOUT_ACTIVITY))
    assert refused.status_code == 400
    body = refused.content.decode()
    assert "Nothing has been sent yet" in body
    assert '<a href="#q-activity">Question 3</a>: Please answer this question.' in body
    still_open(checkin)
    assert client.get(f"/c/{token}").status_code == 200  # the link still works
    assert client.post(f"/c/{token}", form_data(PEG)).status_code == 200
    checkin.refresh_from_db()
    assert (checkin.status, checkin.score) == (CheckinStatus.ANSWERED, 5.0)


def test_portal_a_peg_missing_an_item_shows_the_error_and_stays_open(
    enrolment: Enrolment,
) -> None:
    checkin = open_checkin(enrolment, "peg")
    client = Client()
    client.force_login(patient_user(enrolment))
    url = f"/me/checkins/{checkin.pk}/"
    refused = client.post(url, form_data(PEG_WITHOUT_ACTIVITY))
    assert refused.status_code == 400
    assert '<a href="#q-activity">Question 3</a>: Please answer this question.' in (
        refused.content.decode()
    )
    still_open(checkin)
    assert client.post(url, form_data(PEG)).status_code == 200
    checkin.refresh_from_db()
    assert checkin.status == CheckinStatus.ANSWERED


# --- an instrument that allows missing items -----------------------------------------------------


def test_the_block_diary_allows_missing_time_points_as_its_rule_says(
    enrolment: Enrolment,
) -> None:
    """Up to 5 of its 7 ratings may be missing, never the pre-block one: the page asks only
    for that one, and the answers it allows are scored."""
    checkin = open_checkin(enrolment, "block_diary")
    token = send_link(checkin)
    client = Client()
    form = client.get(f"/c/{token}").content.decode()
    required = re.findall(r'id="q-(\w+)"[^>]*data-required="yes"', form)
    assert required == ["pre"]
    without_pre = client.post(f"/c/{token}", {"m30": "2", "h1": "3"})
    assert without_pre.status_code == 400
    assert "Please answer this question" in without_pre.content.decode()
    only_pre = client.post(f"/c/{token}", {"pre": "8"})
    assert only_pre.status_code == 400
    assert "at most 5 of the scored questions may be left unanswered" in (only_pre.content.decode())
    still_open(checkin)
    done = client.post(f"/c/{token}", {"pre": "8", "m30": "2", "h1": "3"})
    assert done.status_code == 200
    checkin.refresh_from_db()
    assert (checkin.status, checkin.score) == (CheckinStatus.ANSWERED, 75.0)


# --- staff entries -------------------------------------------------------------------------------


def post_scores(client: APIClient, patient_id: int, body: dict[str, Any], key: str):  # type: ignore[no-untyped-def]
    body = {"observed_at": (timezone.now() - timedelta(hours=1)).isoformat(), **body}
    return client.post(
        f"/api/v1/patients/{patient_id}/scores", body, format="json", HTTP_IDEMPOTENCY_KEY=key
    )


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"instrument": "peg", "items": PEG_WITHOUT_ACTIVITY}, "items.activity", "Please answer"),
        ({"instrument": "phq9", "score": 12}, "items.item9", "checked for red flags"),
        (
            {"instrument": "phq9", "items": {f"item{n}": 1 for n in range(1, 9)}},
            "items.item9",
            "it is a safety question",
        ),
        (
            {"instrument": "phq9", "items": {f"item{n}": 1 for n in range(1, 10)}, "score": 12},
            "score",
            "the item answers give 9, not 12",
        ),
        ({"instrument": "peg", "items": PEG, "score": 6}, "score", "give 5, not 6"),
        ({"instrument": "odi", "items": {"s1": 2}, "score": 40}, "items", "licensed"),
        ({"instrument": "peg", "score": 11}, "score", "out of range"),
        ({"instrument": "peg", "score": 4.555}, "score", "more than 2 decimal"),
        ({"instrument": "peg"}, "score", "give the item answers"),
        ({"instrument": "trial_diary", "items": {"average_pain": 3}}, "items.worst_pain", ""),
        ({"instrument": "no_such_thing", "score": 3}, "instrument", "no_such_thing"),
    ],
)
def test_staff_entries_are_refused_with_the_field_named(
    team: Clinicians, enrolment: Enrolment, body: dict[str, Any], field: str, message: str
) -> None:
    client = APIClient()
    client.force_authenticate(team.physician)
    response = post_scores(client, enrolment.patient_id, body, "refused")
    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert field in errors, errors
    assert message in " ".join(errors[field])
    assert not Observation.objects.exists()
    assert not Flag.objects.exists()


@pytest.mark.parametrize(
    ("body", "score", "band"),
    [
        ({"instrument": "odi", "score": 42.5}, 42.5, "severe disability"),
        ({"instrument": "peg", "score": 6.33}, 6.33, "moderate"),
        ({"instrument": "gad7", "score": 16}, 16, "severe"),
        ({"instrument": "peg", "items": PEG, "score": 5}, 5.0, "moderate"),
        (
            {"instrument": "peg", "items": {"pain": 6, "enjoyment": 5, "activity": 5}},
            5.33,
            "moderate",
        ),
    ],
)
def test_staff_totals_where_the_instrument_allows_them(
    team: Clinicians, enrolment: Enrolment, body: dict[str, Any], score: float, band: str
) -> None:
    client = APIClient()
    client.force_authenticate(team.coordinator)
    response = post_scores(client, enrolment.patient_id, body, "ok")
    assert response.status_code == 201, response.content
    observation = response.json()["observation"]
    assert observation["value_number"] == score
    assert observation["data"]["band"] == band
    # GAD-7's rule reads the total (15 or more): a total alone raises it.
    codes = set(Flag.objects.values_list("code", flat=True))
    assert codes == ({"gad7_total_severe"} if body["instrument"] == "gad7" else set())


def test_a_patient_answers_the_items_a_total_is_for_staff(enrolment: Enrolment) -> None:
    with pytest.raises(InvalidInput, match="items: the item answers are required") as refused:
        score_observation_record(
            patient=enrolment.patient, instrument="peg", score=5, source="patient",
            observed_at=timezone.now(),
        )  # fmt: skip
    assert refused.value.extra["fields"] == {
        "items": "the item answers are required (staff may enter a total)"
    }
    with pytest.raises(InvalidInput, match="source: odi is licensed"):
        score_observation_record(
            patient=enrolment.patient, instrument="odi", score=40, source="patient",
            observed_at=timezone.now(),
        )  # fmt: skip
    assert not Observation.objects.exists()


def test_the_staff_page_refuses_an_incomplete_form_next_to_the_question(
    team: Clinicians, enrolment: Enrolment
) -> None:
    client = Client()
    client.force_login(team.physician)
    url = f"/patients/{enrolment.patient_id}/score/peg"
    html = client.get(f"/patients/{enrolment.patient_id}/").content.decode()
    form = html[html.index(f'action="{url}"') :]
    key = re.search(r'name="sc-peg-form_key" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
    answered = (timezone.localtime() - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M")
    data = {"sc-peg-form_key": key, "sc-peg-observed_at": answered, "sc-peg-pain": "6",
            "sc-peg-enjoyment": "5"}  # fmt: skip
    refused = client.post(url, data)
    assert refused.status_code == 400
    page = refused.content.decode()
    assert '<p class="field-error" id="id_sc-peg-activity-error">Please answer this question.' in (
        page
    )
    assert 'aria-describedby="id_sc-peg-activity-error"' in page
    assert "<details open>" in page
    assert not Observation.objects.exists()
    assert client.post(url, {**data, "sc-peg-activity": "4"}).status_code == 302
    observation = Observation.objects.get()
    assert (observation.code, observation.value_number, observation.data["band"]) == (
        "peg", 5.0, "moderate",
    )  # fmt: skip
    assert observation.data["items"] == PEG


def test_only_coordinators_and_physicians_record_scores_on_the_page(
    team: Clinicians, enrolment: Enrolment
) -> None:
    client = Client()
    client.force_login(team.psychologist)
    page = client.get(f"/patients/{enrolment.patient_id}/").content.decode()
    assert "Record a score" not in page
    url = f"/patients/{enrolment.patient_id}/score/peg"
    assert client.post(url, {"sc-peg-form_key": "a" * 32}).status_code == 403
    client.force_login(team.coordinator)
    assert client.post(f"/patients/{enrolment.patient_id}/score/odi", {}).status_code == 404
    assert not Observation.objects.exists()
