"""Messages and their delivery records over the API: staff only, tokens never shown, dead
messages listed for the clinic and resent by the coordinator or clinic admin."""

from __future__ import annotations

import pytest

from carehub.accounts.models import User
from carehub.messaging.models import Message, MessageStatus
from carehub.patients.models import Patient
from carehub.patients.services import patient_account_create
from tests.api.conftest import PASSWORD, assert_problem, dead_message, new_key

pytestmark = pytest.mark.django_db
TOKEN = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-abcdef"


def test_staff_see_the_patients_messages_with_why_sent_or_not(
    client_for, staff: dict[str, User], checkin, message: Message
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["physical_therapist"])
    rows = client.get(f"/api/v1/patients/{checkin.patient_id}/messages").json()["results"]
    by_id = {row["id"]: row for row in rows}
    assert by_id[message.pk]["status"] == "dead"
    assert by_id[message.pk]["events"][-1]["reason"].startswith("Dead:")
    request = next(row for row in rows if row["purpose"] == "checkin_request")
    assert request["to_patient"] is True
    assert request["events"][0]["status"] == "queued"
    assert "{link}" in request["body"]  # the stored body: the token is minted at send time


def test_a_token_that_reached_a_row_is_redacted(
    client_for, staff: dict[str, User], patient: Patient
) -> None:  # type: ignore[no-untyped-def]
    leaked = dead_message(patient, "leak", body=f"Your PEG: https://care.example/c/{TOKEN}")
    Message.objects.filter(pk=leaked.pk).update(last_error=f"POST /c/{TOKEN} failed")
    response = client_for(staff["coordinator"]).get(f"/api/v1/patients/{patient.pk}/messages")
    assert TOKEN not in response.content.decode()
    [row] = response.json()["results"]
    assert row["body"] == "Your PEG: https://care.example/c/[redacted]"
    assert row["last_error"] == "POST /c/[redacted] failed"


def test_dead_messages_are_resent_by_the_coordinator_or_the_clinic_admin(
    client_for, staff: dict[str, User], message: Message
) -> None:  # type: ignore[no-untyped-def]
    dead = client_for(staff["clinic_admin"]).get("/api/v1/messages/dead").json()["results"]
    assert [row["id"] for row in dead] == [message.pk]
    assert_problem(
        client_for(staff["physician"]).post(f"/api/v1/messages/{message.pk}/resend", **new_key()),
        403,
        "not_permitted",
    )
    response = client_for(staff["coordinator"]).post(
        f"/api/v1/messages/{message.pk}/resend", **new_key()
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["attempts"]) == ("queued", 0)
    assert body["events"][-1]["reason"] == "Resent by staff: a fresh set of attempts"
    message.refresh_from_db()
    assert message.status == MessageStatus.QUEUED
    again = client_for(staff["coordinator"]).post(
        f"/api/v1/messages/{message.pk}/resend", **new_key()
    )
    assert assert_problem(again, 409, "conflict")["current"]["status"] == "queued"
    assert client_for(staff["coordinator"]).get("/api/v1/messages/dead").json()["results"] == []


def test_a_patient_sees_no_messages_here(client_for, patient: Patient, message: Message) -> None:  # type: ignore[no-untyped-def]
    client = client_for(
        patient_account_create(patient=patient, username="alice", password=PASSWORD)
    )
    assert_problem(client.get(f"/api/v1/patients/{patient.pk}/messages"), 403, "not_permitted")
    assert_problem(client.get("/api/v1/messages/dead"), 403, "not_permitted")
    assert_problem(
        client.post(f"/api/v1/messages/{message.pk}/resend", **new_key()), 403, "not_permitted"
    )
