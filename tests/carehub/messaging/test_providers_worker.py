"""End to end with a real Celery worker process sending through Twilio's SDK to a fake Twilio on
a local port: the first answer is a 503 (retried with backoff through the dispatcher), the second
accepts, and Twilio's signed "delivered" callback reaches carehub before the worker has even read
that answer. The message ends sent, delivered, with one delivery event per step."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import connection
from django.test import Client, override_settings

from carehub.clinics.models import Clinic
from carehub.messaging.delivery import messages_dispatch_due
from carehub.messaging.models import DELIVERED, DeliveryEvent, Message, MessageStatus
from tests.carehub.messaging.providers import (
    all_day_patient,
    quiet_queue,  # noqa: F401 (fixture)
    twilio_callback,
    twilio_created,
    twilio_settings,
    urgent,
)
from tests.support.celery_worker import running_worker, wait_until, worker_env
from tests.support.fake_provider import (  # noqa: F401 (fixture)
    Answer,
    FakeProvider,
    fake_provider_factory,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("quiet_queue"),
]

SID = "SM" + "e2e0" * 8


def test_a_worker_retries_a_503_then_sends_and_an_early_callback_is_applied(
    clinic: Clinic,
    fake_provider_factory: Callable[..., FakeProvider],  # noqa: F811
) -> None:
    twilio = fake_provider_factory(twilio_created)
    callbacks: list[str] = []

    def delivered_before_answering(request: object) -> None:
        try:
            callbacks.append(twilio_callback(Client(), SID, "delivered").json()["outcome"])
        finally:
            connection.close()

    twilio.answer(
        Answer(503, json={"code": 20503, "message": "Service Unavailable", "status": 503}),
        Answer(201, json={"sid": SID, "status": "queued"}, before=delivered_before_answering),
    )
    values = twilio_settings(twilio)
    env = {
        **worker_env(),
        **{name: str(value) for name, value in values.items()},
        "MESSAGING_RETRY_BASE_SECONDS": "0.2",
        "MESSAGING_RETRY_MAX_SECONDS": "0.5",
        # The callback below is answered before the send is: room for it within the timeout.
        "MESSAGING_PROVIDER_READ_TIMEOUT_SECONDS": "10",
    }
    with override_settings(**values), running_worker("providers-e2e", env=env):
        message = urgent(all_day_patient(clinic), "e2e-1")  # published after commit

        def sent() -> bool:
            messages_dispatch_due()  # what beat does: a retry that is due is queued again
            return Message.objects.get(pk=message.pk).status == MessageStatus.SENT

        wait_until(sent, timeout=60, interval=0.3)
    message.refresh_from_db()
    assert message.attempts == 2
    assert message.provider_message_id == SID
    assert message.provider_status == "delivered"
    assert callbacks == ["pending"]  # it overtook the send, then was applied by the worker
    assert len(twilio.requests) == 2
    steps = list(DeliveryEvent.objects.filter(message=message).values_list("status", "reason"))
    statuses = [status for status, _ in steps]
    assert statuses.count(MessageStatus.RETRY) == 1
    assert statuses[-2:] == [MessageStatus.SENT, DELIVERED]
    retry_reason = next(reason for status, reason in steps if status == MessageStatus.RETRY)
    assert "Twilio answered HTTP 503 (error 20503)" in retry_reason
