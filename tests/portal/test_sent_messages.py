"""The "Sent messages" page of the development backends: staff of the clinic only, only when
the recording backends are configured, links usable, tokens never logged."""

from __future__ import annotations

import logging

import pytest
from django.test import Client, override_settings

from carehub.audit.models import AuditEvent
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
RECORDING_SMS = "carehub.messaging.channels.RecordingSmsGateway"


def client_for(user) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    return client


def test_staff_see_their_clinics_messages_with_a_working_link(
    team: Clinicians, enrolment: Enrolment, caplog: pytest.LogCaptureFixture
) -> None:
    token = send_link(open_checkin(enrolment))
    elsewhere = clinic_with_team("other")
    foreign_token = send_link(open_checkin(enrolled_patient(elsewhere, "OT-1")))
    with caplog.at_level(logging.INFO):
        page = client_for(team.coordinator).get("/dev/sent-messages/")
    body = page.content.decode()
    assert page.status_code == 200
    assert f'href="http://127.0.0.1:8000/c/{token}"' in body
    assert foreign_token not in body
    assert "PP-1" in body
    assert page["Referrer-Policy"] == "no-referrer"
    assert token not in caplog.text
    viewed = AuditEvent.objects.get(action="sent_messages.view")
    assert (viewed.actor_id, viewed.patient_id) == (team.coordinator.pk, enrolment.patient_id)
    # The link in the body opens the patient's check-in.
    assert Client().get(f"/c/{token}").status_code == 200


def test_patients_are_refused(enrolment: Enrolment) -> None:
    assert client_for(patient_user(enrolment)).get("/dev/sent-messages/").status_code == 403


def test_logged_out_visitors_go_to_the_login_page() -> None:
    assert Client().get("/dev/sent-messages/").status_code == 302


@override_settings(
    MESSAGING_SMS_GATEWAY="tests.portal.test_sent_messages.RealGateway",
    EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
)
def test_not_there_without_the_recording_backends(team: Clinicians) -> None:
    assert client_for(team.coordinator).get("/dev/sent-messages/").status_code == 404


@override_settings(
    MESSAGING_SMS_GATEWAY="tests.portal.test_sent_messages.RealGateway",
    EMAIL_BACKEND="carehub.messaging.channels.RecordingEmailBackend",
)
def test_there_with_the_recording_email_backend_alone(team: Clinicians) -> None:
    assert client_for(team.coordinator).get("/dev/sent-messages/").status_code == 200


class RealGateway:
    """Stands for a production SMS gateway (never called here)."""
