"""One display time zone per clinic everywhere staff look: the staff pages, the sent-messages
page and the admin show the same event at the same local time, and name the zone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.test import Client

from carehub.accounts.models import User
from carehub.messaging.models import Message, MessageStatus, RecordedMessage
from carehub.messaging.services import message_enqueue
from carehub.patients.models import Patient

pytestmark = pytest.mark.django_db

AT = datetime(2026, 1, 15, 15, 0, tzinfo=UTC)  # 10:00 in New York (EST)


@pytest.fixture
def new_york_message(patient: Patient) -> Message:
    clinic = patient.clinic
    clinic.time_zone = "America/New_York"
    clinic.save(update_fields=["time_zone"])
    message = message_enqueue(
        patient=patient, recipient="patient", purpose="pathway_notice", body="Hello",
        idempotency_key="tz-1", why="test",
    )  # fmt: skip
    Message.objects.filter(pk=message.pk).update(
        status=MessageStatus.DEAD, created_at=AT, sent_at=AT, not_before=AT
    )
    RecordedMessage.objects.create(
        channel="sms", to="+15555550100", body="Hello", idempotency_key="tz-1",
        provider_id="p-1", at=AT,
    )  # fmt: skip
    return message


def test_staff_pages_sent_messages_and_admin_agree_and_name_the_zone(
    new_york_message: Message, staff: dict[str, User], client_for, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.MESSAGING_SMS_GATEWAY = "carehub.messaging.channels.RecordingSmsGateway"
    coordinator: Client = client_for(staff["coordinator"])
    dead = coordinator.get("/messages/dead/").content.decode()
    assert "15 Jan 2026 10:00" in dead
    assert "Times in America/New_York" in dead
    sent = coordinator.get("/dev/sent-messages/").content.decode()
    assert "2026-01-15 10:00" in sent  # was 15:00 (UTC)
    assert "Times in America/New_York" in sent

    admin_user = staff["clinic_admin"]
    User.objects.filter(pk=admin_user.pk).update(is_staff=True, is_superuser=True)
    admin_user.refresh_from_db()
    admin = client_for(admin_user)
    page = admin.get("/admin/messaging/message/").content.decode()
    assert "times in America/New_York" in page
    assert "15 Jan 2026, 10 a.m." in page  # was 3 p.m. (UTC)
    assert "3 p.m." not in page


def test_the_zone_follows_the_clinic(
    new_york_message: Message, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    clinic = new_york_message.clinic
    clinic.time_zone = "Asia/Tokyo"
    clinic.save(update_fields=["time_zone"])
    dead = client_for(staff["coordinator"]).get("/messages/dead/").content.decode()
    assert "16 Jan 2026 00:00" in dead
    assert "Times in Asia/Tokyo" in dead
