"""E-mail through django-anymail (Postmark here; any ESP by settings) against a fake ESP on a
local port, and the ESP's tracking webhooks turning into delivery events."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import nullcontext

import pytest
from django.test import Client, override_settings

from carehub.clinics.models import Clinic
from carehub.messaging.delivery import message_send
from carehub.messaging.models import (
    DELIVERED,
    DeliveryEvent,
    Message,
    MessageStatus,
    ProviderReport,
)
from tests.carehub.messaging.providers import (
    all_day_patient,
    postmark_sent,
    postmark_settings,
    postmark_webhook,
    quiet_queue,  # noqa: F401 (fixture)
    short_read_timeout,
    urgent,
)
from tests.support.fake_provider import (  # noqa: F401 (fixture)
    Answer,
    FakeProvider,
    fake_provider_factory,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("quiet_queue")]

ADDRESS = "grace@example.org"


@pytest.fixture
def postmark(fake_provider_factory: Callable[..., FakeProvider]) -> Iterator[FakeProvider]:  # noqa: F811
    provider = fake_provider_factory(postmark_sent)
    with override_settings(**postmark_settings(provider)):
        yield provider


@pytest.fixture
def hooks() -> Client:
    return Client(enforce_csrf_checks=True)


def send(clinic: Clinic, key: str = "e-1", *, slow: bool = False) -> Message:
    message = urgent(all_day_patient(clinic, preferred_channel="email"), key)
    with short_read_timeout() if slow else nullcontext():
        message_send(message_id=message.pk)
    message.refresh_from_db()
    return message


def last_reason(message: Message) -> str:
    return DeliveryEvent.objects.filter(message=message).order_by("-pk")[0].reason


def delivery(message_id: str) -> dict[str, object]:
    return {
        "RecordType": "Delivery", "ServerID": 23, "MessageStream": "outbound",
        "MessageID": message_id, "Recipient": ADDRESS, "Tag": "",
        "DeliveredAt": "2026-02-10T20:00:05Z", "Details": "Test delivery webhook details",
        "Metadata": {},
    }  # fmt: skip


def bounce(message_id: str) -> dict[str, object]:
    return {
        "RecordType": "Bounce", "ID": 4323372036854775807, "Type": "HardBounce", "TypeCode": 1,
        "Name": "Hard bounce", "MessageID": message_id, "MessageStream": "outbound",
        "Description": "The server was unable to deliver your message (ex: unknown user).",
        "Details": f"smtp;550 5.1.1 <{ADDRESS}>: Recipient address rejected",
        "Email": ADDRESS, "From": "care@carehub.example", "BouncedAt": "2026-02-10T20:00:05Z",
        "Inactive": True, "CanActivate": True, "Subject": "A message from your care team",
    }  # fmt: skip


def test_the_esp_accepts_and_the_message_keeps_the_esp_s_id(
    clinic: Clinic, postmark: FakeProvider
) -> None:
    message = send(clinic)
    assert message.status == MessageStatus.SENT
    assert message.channel == "email"
    [request] = postmark.requests
    assert request.path == "/email"
    assert request.headers["X-Postmark-Server-Token"] == "fake-server-token"
    assert request.json["To"] == ADDRESS
    assert request.json["TextBody"] == "Your appointment is tomorrow"
    headers = {h["Name"]: h["Value"] for h in request.json["Headers"]}
    assert headers["X-Idempotency-Key"] == "e-1"
    # Postmark's MessageID (what its webhooks name), not our Message-ID header.
    assert message.provider_message_id != headers.get("Message-ID")
    assert len(message.provider_message_id) == 36


def test_an_invalid_address_is_dead_with_the_esp_s_code(
    clinic: Clinic, postmark: FakeProvider
) -> None:
    postmark.answer(
        Answer(422, json={"ErrorCode": 300, "Message": f"Invalid 'To' address: '{ADDRESS}'."})
    )
    message = send(clinic)
    assert message.status == MessageStatus.DEAD
    reason = last_reason(message)
    assert "Postmark refused the recipient (invalid): HTTP 422 (error 300)" in reason
    assert ADDRESS not in reason + message.last_error


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (Answer(500, json={"ErrorCode": 0, "Message": "Internal error"}), "HTTP 500"),
        (Answer(429, json={"Message": "slow"}, headers={"Retry-After": "30"}), "HTTP 429"),
        (Answer(200, json={"To": ADDRESS}), "could not be read"),
        (Answer(200, text="<html>"), "could not be read"),
        (Answer(200, json={"ErrorCode": 0, "Message": "OK", "MessageID": "x"}, delay=1.5),
         "did not answer"),
    ],
    ids=["500", "429", "2xx-malformed", "2xx-not-json", "timeout"],
)  # fmt: skip
def test_transient_esp_failures_are_retried(
    clinic: Clinic, postmark: FakeProvider, answer: Answer, expected: str
) -> None:
    postmark.answer(answer)
    message = send(clinic, slow=bool(answer.delay))
    assert message.status == MessageStatus.RETRY
    reason = last_reason(message)
    assert expected in reason
    assert ADDRESS not in reason + message.last_error
    assert "TextBody" not in message.last_error  # anymail's own text shows the payload


def test_a_delivery_webhook_becomes_a_delivery_event_once(
    clinic: Clinic, postmark: FakeProvider, hooks: Client
) -> None:
    message = send(clinic)
    first = postmark_webhook(hooks, delivery(message.provider_message_id))
    assert first.status_code == 200
    again = postmark_webhook(hooks, delivery(message.provider_message_id))
    assert again.status_code == 200
    message.refresh_from_db()
    assert message.provider_status == "delivered"
    events = list(DeliveryEvent.objects.filter(message=message).values_list("status", flat=True))
    assert events.count(DELIVERED) == 1
    report = ProviderReport.objects.get(provider_message_id=message.provider_message_id)
    assert report.provider == "email:postmark"


def test_a_bounce_makes_the_message_dead(
    clinic: Clinic, postmark: FakeProvider, hooks: Client
) -> None:
    message = send(clinic)
    assert postmark_webhook(hooks, bounce(message.provider_message_id)).status_code == 200
    message.refresh_from_db()
    assert message.status == MessageStatus.DEAD
    assert message.provider_status == "undelivered"
    assert "reports bounced" in message.last_error
    assert ADDRESS not in message.last_error


@pytest.mark.parametrize(
    ("call", "status"),
    [
        (lambda c: postmark_webhook(c, delivery("x"), secret="postmark:wrong"), 403),
        (lambda c: c.post("/hooks/email/postmark/tracking/", json.dumps(delivery("x")),
                          content_type="application/json"), 403),
        (lambda c: postmark_webhook(c, b"{not json"), 400),
        (lambda c: postmark_webhook(c, [1, 2]), 400),
        (lambda c: postmark_webhook(c, {"RecordType": "Open", "MessageID": "x",
                                        "Recipient": ADDRESS,
                                        "ReceivedAt": "2026-02-10T20:00:05Z"}), 200),
    ],
    ids=["wrong-password", "no-auth", "not-json", "not-an-object", "open-not-kept"],
)  # fmt: skip
def test_tracking_webhooks_refuse_bad_input(
    postmark: FakeProvider, hooks: Client, call: Callable[[Client], object], status: int
) -> None:
    response = call(hooks)
    assert response.status_code == status  # type: ignore[attr-defined]
    assert not ProviderReport.objects.exists()


def test_without_a_webhook_secret_the_tracking_webhooks_refuse_everything(
    postmark: FakeProvider, hooks: Client
) -> None:
    settings = postmark_settings(postmark)
    anymail = {k: v for k, v in settings["ANYMAIL"].items() if k != "WEBHOOK_SECRET"}
    with override_settings(ANYMAIL=anymail):
        response = hooks.post(
            "/hooks/email/postmark/tracking/", json.dumps(delivery("x")),
            content_type="application/json",
        )  # fmt: skip
    assert response.status_code == 403
    assert not ProviderReport.objects.exists()
