"""The "Sent messages" page of the development backends: staff only, only about the patients in
their scope, only when the recording backends are configured; stored links are redacted, and a
fresh link to an open check-in is minted on request; tokens never logged."""

from __future__ import annotations

import logging

import pytest
from django.test import Client, override_settings

from carehub.audit.models import AuditEvent
from carehub.checkins.models import Checkin, CheckinLink, CheckinStatus
from carehub.messaging.models import Message, RecordedMessage
from carehub.pathways.models import Enrolment
from carehub.patients.models import CareTeamMembership
from carehub.patients.services import care_team_end
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


def test_staff_see_their_clinics_messages_and_open_a_fresh_link(
    team: Clinicians, enrolment: Enrolment, caplog: pytest.LogCaptureFixture
) -> None:
    token = send_link(open_checkin(enrolment))
    elsewhere = clinic_with_team("other")
    send_link(open_checkin(enrolled_patient(elsewhere, "OT-1")))
    coordinator = client_for(team.coordinator)
    with caplog.at_level(logging.INFO):
        page = coordinator.get("/dev/sent-messages/")
    body = page.content.decode()
    assert page.status_code == 200
    assert token not in body  # the row keeps the link redacted
    assert "/c/[redacted]" in body
    assert "PP-1" in body
    assert "OT-1" not in body
    assert page["Referrer-Policy"] == "strict-origin"
    viewed = AuditEvent.objects.get(action="sent_messages.view")
    assert (viewed.actor_id, viewed.patient_id) == (team.coordinator.pk, enrolment.patient_id)
    # "Open the check-in" mints a fresh link (stored as its hash only) and goes there.
    request = Message.objects.get(patient_id=enrolment.patient_id, purpose="checkin_request")
    recorded = RecordedMessage.objects.get(idempotency_key=request.idempotency_key)
    assert f'action="/dev/sent-messages/{recorded.pk}/open"' in body
    with caplog.at_level(logging.INFO):
        opened = coordinator.post(f"/dev/sent-messages/{recorded.pk}/open")
    assert opened.status_code == 302
    fresh = opened["Location"].removeprefix("/c/")
    assert fresh != token
    assert not RecordedMessage.objects.filter(body__contains=fresh).exists()
    assert Client().get(f"/c/{fresh}").status_code == 200
    assert Client().get(f"/c/{token}").status_code == 200  # the patient's own link still works
    assert token not in caplog.text
    assert fresh not in caplog.text


def test_the_page_shows_only_patients_in_the_viewers_care_teams(
    team: Clinicians, enrolment: Enrolment, other_enrolment: Enrolment
) -> None:
    send_link(open_checkin(enrolment))
    send_link(open_checkin(other_enrolment))
    membership = CareTeamMembership.objects.get(
        patient_id=other_enrolment.patient_id, staff=team.psychologist
    )
    care_team_end(membership=membership)
    body = client_for(team.psychologist).get("/dev/sent-messages/").content.decode()
    assert "PP-1" in body
    assert "PP-2" not in body
    # Nor can they mint a link to a check-in of a patient outside their scope.
    hidden = RecordedMessage.objects.exclude(
        idempotency_key__in=Message.objects.filter(patient_id=enrolment.patient_id).values(
            "idempotency_key"
        )
    ).get()
    opened = client_for(team.psychologist).post(f"/dev/sent-messages/{hidden.pk}/open")
    assert opened.status_code == 404
    assert CheckinLink.objects.filter(checkin__patient_id=other_enrolment.patient_id).count() == 1


def test_a_closed_checkin_has_no_link_to_open(team: Clinicians, enrolment: Enrolment) -> None:
    checkin = open_checkin(enrolment)
    send_link(checkin)
    Checkin.objects.filter(pk=checkin.pk).update(status=CheckinStatus.MISSED)
    recorded = RecordedMessage.objects.get()
    opened = client_for(team.coordinator).post(f"/dev/sent-messages/{recorded.pk}/open")
    assert opened.status_code == 410
    assert CheckinLink.objects.filter(checkin=checkin).count() == 1


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
