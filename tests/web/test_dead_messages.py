"""Dead messages: a number that is not in service is corrected (the patients' service, audited)
and the message resent through the messaging service; a message no longer needed is not offered
a resend that would only be suppressed."""

from __future__ import annotations

import re
from datetime import time, timedelta

import pytest
from django.test import Client

from carehub.accounts.models import User
from carehub.audit.models import AuditEvent
from carehub.checkins.models import Checkin, CheckinStatus
from carehub.checkins.services import checkin_series_start
from carehub.core import clock
from carehub.messaging.delivery import message_send
from carehub.messaging.models import DeliveryEvent, Message, MessageStatus, RecordedMessage
from carehub.messaging.services import message_enqueue
from carehub.patients.models import Patient
from carehub.patients.services import patient_update

pytestmark = pytest.mark.django_db

DISCONNECTED = "+15555550199"  # the demo gateway's number "not in service"


def _key(html: str, action: str) -> str:
    start = html.index(f'action="{action}"')
    match = re.search(r'name="form_key" value="([^"]+)"', html[start:])
    assert match
    return match.group(1)


@pytest.fixture
def unreachable(patient: Patient, settings) -> Message:  # type: ignore[no-untyped-def]
    """A notice the SMS provider refused: "number not in service" (a real send, dead at once)."""
    settings.MESSAGING_SMS_GATEWAY = "carehub.demo.gateway.DemoSmsGateway"
    patient_update(
        patient=patient, phone=DISCONNECTED, send_window_start=time(0, 0),
        send_window_end=time(23, 59),
    )  # fmt: skip
    message = message_enqueue(
        patient=patient, recipient="patient", purpose="pathway_notice", body="Your plan changed",
        idempotency_key="dead-sms", why="test", not_before=clock.now(),
    )  # fmt: skip
    assert message_send(message_id=message.pk) == MessageStatus.DEAD
    message.refresh_from_db()
    assert "not in service" in message.last_error
    return message


def test_a_number_not_in_service_is_fixed_then_the_message_resent(
    unreachable: Message, patient: Patient, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    client: Client = client_for(staff["coordinator"])
    html = client.get("/messages/dead/").content.decode()
    row = html[html.index(f'id="message-{unreachable.pk}"') :]
    row = row[: row.index("</tr>")]
    # No plain Resend: the number cannot work; the row offers to correct it.
    assert f"/messages/{unreachable.pk}/resend" not in row
    url = f"/messages/{unreachable.pk}/fix-contact"
    assert f'action="{url}"' in row
    assert f'value="{DISCONNECTED}"' in row

    # The same number again, or no number at all: refused by its field, nothing changes.
    response = client.post(url, {"form_key": _key(html, url), "phone": DISCONNECTED,
                                 "email": patient.email})  # fmt: skip
    assert response.status_code == 400
    page = response.content.decode()
    pk = unreachable.pk
    assert f'aria-describedby="message-{pk}-phone-hint message-{pk}-phone-error"' in page
    response = client.post(url, {"form_key": _key(html, url), "phone": "07700 900",
                                 "email": patient.email})  # fmt: skip
    assert response.status_code == 400
    assert "international form" in response.content.decode()
    unreachable.refresh_from_db()
    assert unreachable.status == MessageStatus.DEAD

    response = client.post(url, {"form_key": _key(html, url), "phone": "+447700900123",
                                 "email": patient.email})  # fmt: skip
    assert response.status_code == 302
    patient.refresh_from_db()
    assert patient.phone == "+447700900123"
    audit = AuditEvent.objects.get(action="patient.contact_update")
    assert (audit.patient_id, audit.actor_id) == (patient.pk, staff["coordinator"].pk)
    assert audit.detail["fields"] == ["phone"]
    unreachable.refresh_from_db()
    assert unreachable.status == MessageStatus.QUEUED
    assert message_send(message_id=unreachable.pk) == MessageStatus.SENT
    assert RecordedMessage.objects.filter(to="+447700900123", body="Your plan changed").exists()


def test_a_message_no_longer_needed_is_not_resent_into_a_suppression(
    patient: Patient, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    series = checkin_series_start(
        enrolment=patient.enrolments.get(), series="peg-test", instrument="peg",
        every=timedelta(days=7), at=clock.now() - timedelta(days=8),
    )  # fmt: skip
    answered = series.checkins.get()
    Checkin.objects.filter(pk=answered.pk).update(status=CheckinStatus.ANSWERED)
    message = message_enqueue(
        patient=patient, recipient="patient", purpose="checkin_reminder",
        body="A reminder: {link}", idempotency_key="dead-reminder",
        subject_key=f"checkin:{answered.pk}", why="test", not_before=clock.now(),
    )  # fmt: skip
    Message.objects.filter(pk=message.pk).update(
        status=MessageStatus.DEAD, attempts=5, last_error="attempt 5/5 failed: 503"
    )
    client: Client = client_for(staff["coordinator"])
    html = client.get("/messages/dead/").content.decode()
    row = html[html.index(f'id="message-{message.pk}"') :]
    row = row[: row.index("</tr>")]
    assert "Not resent: no longer needed (already answered)." in row
    assert "<button" not in row
    response = client.post(f"/messages/{message.pk}/resend", {"form_key": "k" * 32})
    assert response.status_code == 302
    message.refresh_from_db()
    assert message.status == MessageStatus.DEAD
    assert not DeliveryEvent.objects.filter(message=message, reason__startswith="Suppressed")
    assert not DeliveryEvent.objects.filter(message=message, reason__startswith="Resent")


def test_a_contact_is_fixed_even_when_the_message_is_no_longer_needed(
    patient: Patient, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    series = checkin_series_start(
        enrolment=patient.enrolments.get(), series="peg-test", instrument="peg",
        every=timedelta(days=7), at=clock.now() - timedelta(days=8),
    )  # fmt: skip
    answered = series.checkins.get()
    Checkin.objects.filter(pk=answered.pk).update(status=CheckinStatus.ANSWERED)
    message = message_enqueue(
        patient=patient, recipient="patient", purpose="checkin_request",
        body="Your PEG: {link}", idempotency_key="dead-request",
        subject_key=f"checkin:{answered.pk}", why="test", not_before=clock.now(),
    )  # fmt: skip
    Message.objects.filter(pk=message.pk).update(
        status=MessageStatus.DEAD, attempts=1,
        last_error="attempt 1/5 failed: UnreachableContact: number not in service",
    )  # fmt: skip
    client: Client = client_for(staff["coordinator"])
    html = client.get("/messages/dead/").content.decode()
    url = f"/messages/{message.pk}/fix-contact"
    assert "Save contact<span" in html
    response = client.post(
        url, {"form_key": _key(html, url), "phone": "+447700900123", "email": ""}, follow=True
    )
    assert "Contact details saved. Not resent: this message is no longer needed" in (
        response.content.decode()
    )
    patient.refresh_from_db()
    assert patient.phone == "+447700900123"
    message.refresh_from_db()
    assert message.status == MessageStatus.DEAD
    assert not DeliveryEvent.objects.filter(message=message, reason__startswith="Suppressed")
