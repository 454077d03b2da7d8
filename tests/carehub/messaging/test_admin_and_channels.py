"""The admin pages (messages with their delivery log, sent messages, preferences, resend) and the
development backends, which deliver a key once like a real provider."""

from __future__ import annotations

import pytest
import time_machine
from django.core.mail import EmailMessage
from django.test import Client

from carehub.accounts.models import User
from carehub.messaging.channels import RecordingEmailBackend, RecordingSmsGateway, sms_gateway
from carehub.messaging.delivery import message_send
from carehub.messaging.models import ContactPreference, Message, MessageStatus, RecordedMessage
from carehub.messaging.services import PATIENT, message_enqueue
from carehub.patients.models import Patient
from tests.carehub.messaging.conftest import WEEKDAY_AFTERNOON
from tests.carehub.messaging.support import DOWN_GATEWAY

pytestmark = pytest.mark.django_db


def test_the_recording_gateway_delivers_a_key_once() -> None:
    gateway = sms_gateway()
    assert isinstance(gateway, RecordingSmsGateway)
    first = gateway.send("+15550100001", "Hello", "k1")
    again = gateway.send("+15550100001", "Hello", "k1")
    assert first == again
    recorded = RecordedMessage.objects.get()
    assert (recorded.channel, recorded.to, recorded.duplicate_requests) == (
        "sms",
        "+15550100001",
        1,
    )


def test_the_recording_email_backend_keys_by_header_or_message_id(settings) -> None:  # type: ignore[no-untyped-def]
    settings.EMAIL_BACKEND = "carehub.messaging.channels.RecordingEmailBackend"
    keyed = EmailMessage("S", "Body", to=["a@example.org"], headers={"X-Idempotency-Key": "e1"})
    assert keyed.send() == 1
    assert keyed.send() == 1
    plain = EmailMessage("Password reset", "Link", to=["b@example.org", "c@example.org"])
    assert RecordingEmailBackend().send_messages([plain]) == 1
    assert RecordedMessage.objects.get(idempotency_key="e1").duplicate_requests == 1
    assert sorted(RecordedMessage.objects.values_list("to", flat=True)) == [
        "a@example.org", "b@example.org", "c@example.org",
    ]  # fmt: skip


@pytest.fixture
def admin_client(staff: dict[str, User]) -> Client:
    admin = staff["clinic_admin"]
    admin.is_staff = admin.is_superuser = True
    admin.save()
    client = Client()
    client.force_login(admin)
    return client


@time_machine.travel(WEEKDAY_AFTERNOON, tick=False)
def test_admin_shows_messages_with_their_log_and_resends_dead_ones(
    admin_client: Client, patient: Patient, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.MESSAGING_SMS_GATEWAY = DOWN_GATEWAY
    message = message_enqueue(
        patient=patient, recipient=PATIENT, purpose="appointment_reminder", body="Check-in ready",
        idempotency_key="admin-1", why="weekly PEG",
    )  # fmt: skip
    for _ in range(settings.MESSAGING_MAX_ATTEMPTS):
        message_send(message_id=message.pk)
        Message.objects.filter(pk=message.pk, status="retry").update(status="queued")
    message.refresh_from_db()
    assert message.status == MessageStatus.DEAD

    listing = admin_client.get(
        "/admin/messaging/message/?status__exact=dead&purpose=appointment_reminder"
    )
    assert listing.status_code == 200
    assert "admin-1" not in listing.content.decode()  # keys are not shown in the list
    assert f'value="{message.pk}"' in listing.content.decode()
    page = admin_client.get(f"/admin/messaging/message/{message.pk}/change/")
    assert page.status_code == 200
    assert "Failed (attempt 5/5): provider unavailable" in page.content.decode()
    for url in (
        "/admin/messaging/recordedmessage/", "/admin/messaging/deliveryevent/",
        "/admin/messaging/contactpreference/add/", "/admin/messaging/inappnotification/",
        "/admin/messaging/staffnotificationpreference/add/",
    ):  # fmt: skip
        assert admin_client.get(url).status_code == 200, url

    settings.MESSAGING_SMS_GATEWAY = "carehub.messaging.channels.RecordingSmsGateway"
    admin_client.post(
        "/admin/messaging/message/", {"action": "resend_dead", "_selected_action": [message.pk]}
    )
    message.refresh_from_db()
    assert (message.status, message.attempts) == (MessageStatus.QUEUED, 0)
    assert message_send(message_id=message.pk) == MessageStatus.SENT


def test_preferences_are_saved_through_the_services(admin_client: Client, patient: Patient) -> None:
    admin_client.post(
        "/admin/messaging/contactpreference/add/",
        {"patient": patient.pk, "opted_out_sms": "on", "daily_budget": "2"},
    )
    pref = ContactPreference.objects.get(patient=patient)
    assert (pref.opted_out_sms, pref.opted_out, pref.daily_budget) == (True, False, 2)
