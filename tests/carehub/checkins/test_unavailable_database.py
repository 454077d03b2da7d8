"""When the database refuses writes (read-only: a failover in progress, maintenance), or fails
otherwise, nobody gets a traceback and no patient loses their answers (ADR 0016).

The refusals are real: the test's PostgreSQL session is set to `default_transaction_read_only`
(the pages run on that same connection), or a trigger on the test database makes saving a score
fail. Patient pages: the form comes back with the answers filled in, says the link still works,
the check-in stays open, and sending again after the database is back records the answers.
Staff pages and the API: 503 with Retry-After (problem+json under /api/).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test import Client

from carehub.accounts.models import User
from carehub.checkins.models import Checkin, CheckinStatus
from carehub.observations.models import Observation
from carehub.pathways.models import Enrolment
from tests.support.patients import (
    clinic_with_team,
    enrolled_patient,
    open_checkin,
    patient_user,
    send_link,
)

# Autocommit between requests, so that every transaction a request opens starts read-only.
pytestmark = pytest.mark.django_db(transaction=True)

PEG = {"pain": "6", "enjoyment": "5", "activity": "4"}


@pytest.fixture(autouse=True)
def afternoon() -> Iterator[None]:
    with time_machine.travel(
        datetime(2026, 6, 2, 14, 0, tzinfo=ZoneInfo("Europe/London")), tick=True
    ):
        yield


@pytest.fixture
def enrolment() -> Enrolment:
    return enrolled_patient(clinic_with_team("ro"), "RO-1", username="ro-patient")


def refuse_writes() -> None:
    """From now on the database refuses writes in this session (as a standby would)."""
    with connection.cursor() as cursor:
        cursor.execute("SET default_transaction_read_only = on")


def _checked(body: str, key: str, value: str) -> bool:
    """The radio button `key` = `value` is checked in the page."""
    pattern = rf'name="{key}" value="{value}"[^>]*\bchecked\b'
    return re.search(pattern, body) is not None


def _database_back() -> None:
    """What Django does when the request ends: the connection marked by the failure is closed,
    and the next request opens a fresh one (read-write once the database is)."""
    assert connection.close_at is not None
    assert connection.close_at <= time.monotonic()
    connection.close_if_unusable_or_obsolete()
    assert connection.connection is None


def test_a_link_submit_with_a_read_only_database_keeps_the_answers(
    enrolment: Enrolment, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.DEBUG = True  # never the debug page for a patient
    token = send_link(open_checkin(enrolment))
    client = Client()
    refuse_writes()
    response = client.post(f"/c/{token}", PEG)
    body = response.content.decode()
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert "We could not save your answers just now" in body
    assert "your link still works" in body
    assert all(_checked(body, key, value) for key, value in PEG.items())
    assert "Traceback" not in body
    assert "ReadOnlySqlTransaction" not in body
    assert "SECRET_KEY" not in body
    assert token not in body.replace(f"/c/{token}", "")  # only the form's own address
    checkin = Checkin.objects.get(patient_id=enrolment.patient_id, instrument="peg")
    assert checkin.status == CheckinStatus.OPEN
    assert not Observation.objects.filter(patient_id=enrolment.patient_id, code="peg").exists()

    _database_back()
    again = client.post(f"/c/{token}", PEG)
    assert again.status_code == 200
    assert "Thank you" in again.content.decode()
    checkin.refresh_from_db()
    assert checkin.status == CheckinStatus.ANSWERED
    assert Observation.objects.filter(patient_id=enrolment.patient_id, code="peg").count() == 1


def test_a_portal_submit_with_a_read_only_database_keeps_the_answers(
    enrolment: Enrolment,
) -> None:
    checkin = open_checkin(enrolment)
    client = Client()
    client.force_login(patient_user(enrolment))
    assert client.get(f"/me/checkins/{checkin.pk}/").status_code == 200
    refuse_writes()
    response = client.post(f"/me/checkins/{checkin.pk}/", PEG)
    body = response.content.decode()
    assert response.status_code == 503, body[:2000]
    assert "We could not save your answers just now" in body
    assert all(_checked(body, key, value) for key, value in PEG.items())
    _database_back()
    again = client.post(f"/me/checkins/{checkin.pk}/", PEG)
    assert again.status_code == 200
    checkin.refresh_from_db()
    assert checkin.status == CheckinStatus.ANSWERED


@pytest.fixture
def failing_scores() -> Iterator[None]:
    """Saving any observation fails in the database (not an outage: an error carehub does not
    expect), through a trigger on the test database."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION test_refuse() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'refused by the test trigger'; END $$"
        )
        cursor.execute(
            "CREATE TRIGGER test_refuse BEFORE INSERT ON observations_observation "
            "FOR EACH ROW EXECUTE FUNCTION test_refuse()"
        )
    yield
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER IF EXISTS test_refuse ON observations_observation")
        cursor.execute("DROP FUNCTION IF EXISTS test_refuse()")


@pytest.mark.db_owner  # a trigger, a renamed table: the owner's rights
def test_an_unexpected_failure_keeps_the_answers_without_a_traceback(
    enrolment: Enrolment, settings, failing_scores: None
) -> None:  # type: ignore[no-untyped-def]
    settings.DEBUG = True
    token = send_link(open_checkin(enrolment))
    response = Client().post(f"/c/{token}", PEG)
    body = response.content.decode()
    assert response.status_code == 500
    assert "We could not save your answers just now" in body
    assert all(_checked(body, key, value) for key, value in PEG.items())
    assert "refused by the test trigger" not in body
    assert "Traceback" not in body
    assert Checkin.objects.get(patient_id=enrolment.patient_id).status == CheckinStatus.OPEN


@pytest.mark.db_owner  # a trigger, a renamed table: the owner's rights
def test_a_link_page_that_cannot_be_read_says_the_link_still_works(
    enrolment: Enrolment, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.DEBUG = True
    token = send_link(open_checkin(enrolment))
    # The check-in table cannot be read (a real database error, not an outage).
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE checkins_checkin RENAME TO checkins_checkin_away")
    try:
        response = Client().get(f"/c/{token}")
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE checkins_checkin_away RENAME TO checkins_checkin")
    body = response.content.decode()
    assert response.status_code == 500
    assert "We can't open this page just now" in body
    assert "still work" in body
    assert "Traceback" not in body
    assert token not in body
    assert "checkins_checkin" not in body


def test_staff_pages_and_the_api_answer_503_while_the_database_refuses_writes(
    enrolment: Enrolment,
) -> None:
    coordinator = User.objects.get(username="ro-coordinator")
    staff = Client()
    staff.force_login(coordinator)
    assert staff.get("/caseload/").status_code == 200
    refuse_writes()
    page = staff.get("/caseload/")  # every page writes its audit rows
    assert page.status_code == 503
    assert page["Retry-After"] == "30"
    assert "carehub is unavailable for a moment" in page.content.decode()
    api = staff.get("/api/v1/patients")
    assert api.status_code == 503
    assert api["Content-Type"].startswith("application/problem+json")
    assert api["Retry-After"] == "30"
    assert api.json()["code"] == "service_unavailable"
    _database_back()
    assert staff.get("/caseload/").status_code == 200
