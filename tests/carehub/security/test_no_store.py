"""Pages and API answers carry patient data: no browser or shared cache may store them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.test import Client
from rest_framework.test import APIClient

from carehub.api.services import api_token_issue
from carehub.pathways.models import Enrolment
from tests.support.patients import (
    Clinicians,
    clinic_with_team,
    enrolled_patient,
    open_checkin,
    patient_user,
    send_link,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def afternoon_in_london() -> Iterator[None]:
    with time_machine.travel(
        datetime(2026, 6, 2, 14, 0, tzinfo=ZoneInfo("Europe/London")), tick=True
    ):
        yield


@pytest.fixture
def team() -> Clinicians:
    return clinic_with_team("ns")


@pytest.fixture
def enrolment(team: Clinicians) -> Enrolment:
    return enrolled_patient(team, "NS-1", username="ns-pat")


def assert_not_stored(response) -> None:  # type: ignore[no-untyped-def]
    assert "no-store" in response["Cache-Control"], response.get("Cache-Control")
    assert "private" in response["Cache-Control"]


def test_api_answers_are_not_stored(team: Clinicians, enrolment: Enrolment) -> None:
    token, _expiry = api_token_issue(user=team.coordinator)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    listed = client.get("/api/v1/patients")
    assert listed.status_code == 200
    assert_not_stored(listed)
    detail = client.get(f"/api/v1/patients/{enrolment.patient_id}")
    assert detail.status_code == 200
    assert_not_stored(detail)
    # Errors too: a refusal may still name what was asked for.
    refused = APIClient().get("/api/v1/patients")
    assert refused.status_code == 401
    assert_not_stored(refused)


def test_staff_pages_are_not_stored(team: Clinicians, enrolment: Enrolment) -> None:
    client = Client()
    client.force_login(team.coordinator)
    for url in ("/caseload/", f"/patients/{enrolment.patient_id}/"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert_not_stored(response)


def test_portal_pages_are_not_stored(enrolment: Enrolment) -> None:
    client = Client()
    client.force_login(patient_user(enrolment))
    for url in ("/me/", "/me/progress/", "/me/next/"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert_not_stored(response)


def test_the_checkin_link_page_is_not_stored(enrolment: Enrolment) -> None:
    token = send_link(open_checkin(enrolment))
    response = Client().get(f"/c/{token}")
    assert response.status_code == 200
    assert_not_stored(response)


def test_static_files_and_the_health_probe_keep_their_own_caching() -> None:
    stylesheet = Client().get("/static/checkins/checkin.css")
    assert stylesheet.status_code == 200
    assert "no-store" not in stylesheet.get("Cache-Control", "")
    health = Client().get("/healthz")
    assert "no-store" not in health.get("Cache-Control", "")
