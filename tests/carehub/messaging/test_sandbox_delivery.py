"""A sandbox clinic's messages reach the recording backends only (ADR 0024), whatever providers
are configured: with Twilio and an ESP set up (fakes on local ports), the sandbox's SMS and
e-mail are recorded and the providers hear nothing, while a production clinic's SMS reaches
the provider. Enforced in the one delivery path (`carehub.messaging.channels.deliver`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from django.test import override_settings

from carehub.clinics.models import Clinic
from carehub.clinics.services import clinic_create
from carehub.core import clock
from carehub.messaging.delivery import message_send
from carehub.messaging.models import Message, MessageStatus, RecordedMessage
from carehub.patients.models import Channel
from tests.carehub.messaging.providers import (
    PHONE,
    all_day_patient,
    postmark_sent,
    postmark_settings,
    quiet_queue,  # noqa: F401 (fixture)
    twilio_created,
    twilio_settings,
    urgent,
)
from tests.support.fake_provider import FakeProvider, fake_provider_factory, free_port  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("quiet_queue")]


@pytest.fixture
def providers(
    fake_provider_factory: Callable[..., FakeProvider],  # noqa: F811
) -> Iterator[tuple[FakeProvider, FakeProvider]]:
    twilio = fake_provider_factory(twilio_created)
    esp = fake_provider_factory(postmark_sent)
    with override_settings(**twilio_settings(twilio), **postmark_settings(esp)):
        yield twilio, esp


@pytest.fixture
def sandbox(db: None) -> Clinic:
    return clinic_create(
        name="Sandbox", slug="sandbox", time_zone="America/New_York", sandbox=True,
        test_clock_start=clock.now() + timedelta(hours=1),
    )  # fmt: skip


def _sent(message: Message) -> Message:
    message_send(message_id=message.pk)
    message.refresh_from_db()
    return message


def test_a_sandbox_s_messages_are_only_recorded(
    sandbox: Clinic, clinic: Clinic, providers: tuple[FakeProvider, FakeProvider]
) -> None:
    twilio, esp = providers
    by_sms = _sent(urgent(all_day_patient(sandbox, "S-1"), "s-sms"))
    by_email = _sent(
        urgent(all_day_patient(sandbox, "S-2", preferred_channel=Channel.EMAIL), "s-email")
    )
    assert (by_sms.status, by_sms.channel) == (MessageStatus.SENT, "sms")
    assert (by_email.status, by_email.channel) == (MessageStatus.SENT, "email")
    assert RecordedMessage.objects.filter(idempotency_key="s-sms", channel="sms", to=PHONE).exists()
    assert RecordedMessage.objects.filter(
        idempotency_key="s-email", channel="email", to="grace@example.org"
    ).exists()
    assert twilio.requests == []
    assert esp.requests == []
    # Sent at the sandbox's now (its test clock), not the wall clock's.
    assert by_sms.sent_at == sandbox.test_clock_at
    # The same configuration sends a production clinic's SMS through the provider.
    real = _sent(urgent(all_day_patient(clinic, "P-1"), "p-sms"))
    assert real.status == MessageStatus.SENT
    assert len(twilio.requests) == 1
    assert not RecordedMessage.objects.filter(idempotency_key="p-sms").exists()
    assert real.sent_at is not None
    assert real.sent_at < sandbox.test_clock_at
