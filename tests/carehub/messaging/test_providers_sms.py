"""SMS through real provider adapters (Twilio's SDK, the generic HTTP adapter) against a fake
provider on a local port: each answer is accepted (the provider's id stored), a transient failure
(retried with backoff, Retry-After honoured) or a permanent one (dead with the provider's reason
code). No request leaves the machine."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from carehub.clinics.models import Clinic
from carehub.messaging.delivery import message_send
from carehub.messaging.models import DeliveryEvent, Message, MessageStatus
from tests.carehub.messaging.providers import (
    ACCOUNT_SID,
    FROM_NUMBER,
    PHONE,
    TWILIO_STATUS_URL,
    all_day_patient,
    http_accepted,
    http_settings,
    quiet_queue,  # noqa: F401 (fixture)
    short_read_timeout,
    twilio_created,
    twilio_settings,
    urgent,
)
from tests.support.fake_provider import Answer, FakeProvider, fake_provider_factory, free_port  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("quiet_queue")]


@pytest.fixture
def twilio(fake_provider_factory: Callable[..., FakeProvider]) -> Iterator[FakeProvider]:  # noqa: F811
    provider = fake_provider_factory(twilio_created)
    with override_settings(**twilio_settings(provider)):
        yield provider


@pytest.fixture
def http(fake_provider_factory: Callable[..., FakeProvider]) -> Iterator[FakeProvider]:  # noqa: F811
    provider = fake_provider_factory(http_accepted)
    with override_settings(**http_settings(provider)):
        yield provider


def send(clinic: Clinic, key: str = "m-1", *, slow: bool = False) -> Message:
    """A message sent once; `slow`: with a read timeout shorter than the fake's delay."""
    message = urgent(all_day_patient(clinic), key)
    with short_read_timeout() if slow else nullcontext():
        message_send(message_id=message.pk)
    message.refresh_from_db()
    return message


def last_reason(message: Message) -> str:
    return DeliveryEvent.objects.filter(message=message).order_by("-pk")[0].reason


# --- Twilio -------------------------------------------------------------------------------------


def test_twilio_accepts_and_the_message_keeps_its_sid(clinic: Clinic, twilio: FakeProvider) -> None:
    message = send(clinic)
    assert message.status == MessageStatus.SENT
    assert message.provider_message_id.startswith("SM")
    [request] = twilio.requests
    assert request.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert request.form["To"] == PHONE
    assert request.form["From"] == FROM_NUMBER
    assert request.form["Body"] == "Your appointment is tomorrow"
    # The message's idempotency key rides along, signed with the URL (see test_provider_callbacks)
    assert request.form["StatusCallback"] == f"{TWILIO_STATUS_URL}?ref=m-1"
    user, _ = base64.b64decode(request.headers["Authorization"].split()[1]).decode().split(":")
    assert user == ACCOUNT_SID


def test_twilio_slow_but_within_the_timeout_is_accepted(
    clinic: Clinic, twilio: FakeProvider
) -> None:
    twilio.answer(Answer(201, json={"sid": "SMslow", "status": "queued"}, delay=0.2))
    assert send(clinic).provider_message_id == "SMslow"


def test_twilio_429_is_retried_no_earlier_than_retry_after(
    clinic: Clinic, twilio: FakeProvider
) -> None:
    twilio.answer(Answer(
        429, json={"code": 20429, "message": "Too Many Requests", "status": 429},
        headers={"Retry-After": "120"},
    ))  # fmt: skip
    before = timezone.now()
    message = send(clinic)
    assert message.status == MessageStatus.RETRY
    assert message.not_before >= before + timedelta(seconds=120)
    assert "HTTP 429 (error 20429)" in last_reason(message)
    assert "wait 120 s" in last_reason(message)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (Answer(500, json={"code": 20500, "message": "Internal Server Error"}), "HTTP 500"),
        (Answer(503, text="<html>Service Unavailable</html>"), "HTTP 503"),
        (Answer(201, text="<html>not json</html>"), "could not be read"),
        (Answer(201, json={"status": "queued"}), "no message id"),
        (Answer(201, json={"sid": "SMlate"}, delay=1.5), "did not answer: ReadTimeout"),
        (Answer(401, json={"code": 20003, "message": "Authenticate"}), "refused our credentials"),
    ],
    ids=["500", "503-html", "2xx-not-json", "2xx-no-sid", "timeout", "401"],
)
def test_twilio_transient_failures_are_retried(
    clinic: Clinic, twilio: FakeProvider, answer: Answer, expected: str
) -> None:
    twilio.answer(answer)
    message = send(clinic, slow=bool(answer.delay))
    assert message.status == MessageStatus.RETRY
    assert message.attempts == 1
    assert expected in last_reason(message)
    assert message.provider_message_id == ""


def test_twilio_unreachable_is_retried(clinic: Clinic, twilio: FakeProvider) -> None:
    closed = free_port(exclude=frozenset({twilio.port}))
    with override_settings(TWILIO_API_BASE_URL=f"http://127.0.0.1:{closed}"):
        message = send(clinic)
    assert message.status == MessageStatus.RETRY
    assert "did not answer: ConnectionError" in last_reason(message)


def test_twilio_invalid_number_is_dead_with_twilio_s_code(
    clinic: Clinic, twilio: FakeProvider
) -> None:
    twilio.answer(Answer(400, json={
        "code": 21211, "message": f"The 'To' number {PHONE} is not a valid phone number.",
        "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400,
    }))  # fmt: skip
    message = send(clinic)
    assert message.status == MessageStatus.DEAD
    assert message.attempts == 1
    reason = last_reason(message)
    assert "Twilio answered HTTP 400 (error 21211)" in reason
    assert "is not a valid phone number" in reason
    assert PHONE not in reason + message.last_error  # no phone number in the log


def test_twilio_retry_after_the_backoff_is_sent(clinic: Clinic, twilio: FakeProvider) -> None:
    twilio.answer(Answer(503, json={"code": 20503, "message": "Service Unavailable"}))
    message = send(clinic)
    assert message.status == MessageStatus.RETRY
    Message.objects.filter(pk=message.pk).update(not_before=timezone.now())
    assert message_send(message_id=message.pk) == MessageStatus.SENT
    assert len(twilio.requests) == 2


# --- the generic HTTP adapter -------------------------------------------------------------------


def test_http_adapter_fills_the_template_and_sends_the_idempotency_key(
    clinic: Clinic, http: FakeProvider
) -> None:
    message = send(clinic, key="http-1")
    assert message.status == MessageStatus.SENT
    assert message.provider_message_id.startswith("hp-")
    [request] = http.requests
    assert request.path == "/v1/sms"
    assert request.headers["Authorization"] == "Bearer fake-api-key"
    assert request.headers["Idempotency-Key"] == "http-1"
    assert request.json == {
        "recipient": PHONE, "sender": "carehub",
        "message": {"text": "Your appointment is tomorrow"}, "client_ref": "http-1", "webhook": "https://carehub.example/hooks/sms/http/status",
        "priority": 1,
    }  # fmt: skip


def test_http_adapter_keeps_a_body_with_quotes_valid_json(
    clinic: Clinic, http: FakeProvider
) -> None:
    message = urgent(all_day_patient(clinic), "q-1", body='He said "hi" \\ {to}')
    message_send(message_id=message.pk)
    assert http.requests[0].json["message"]["text"] == 'He said "hi" \\ {to}'


def test_http_adapter_honours_a_retry_after_date(clinic: Clinic, http: FakeProvider) -> None:
    later = timezone.now() + timedelta(minutes=10)
    http.answer(Answer(429, json={"error": "slow down"}, headers={
        "Retry-After": later.strftime("%a, %d %b %Y %H:%M:%S GMT"),
    }))  # fmt: skip
    message = send(clinic)
    assert message.status == MessageStatus.RETRY
    assert message.not_before >= later - timedelta(seconds=2)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (Answer(502, text="Bad Gateway"), "HTTP 502"),
        (Answer(202, text="accepted"), "could not be read"),
        (Answer(202, json={"data": {}}), "no message id (data.message_id)"),
        (Answer(202, json={"data": {"message_id": "x"}}, delay=1.5), "did not answer"),
    ],
    ids=["502", "2xx-not-json", "2xx-no-id", "timeout"],
)
def test_http_adapter_transient_failures_are_retried(
    clinic: Clinic, http: FakeProvider, answer: Answer, expected: str
) -> None:
    http.answer(answer)
    message = send(clinic, slow=bool(answer.delay))
    assert message.status == MessageStatus.RETRY
    assert expected in last_reason(message)


def test_http_adapter_refusal_is_dead_with_the_provider_s_code(
    clinic: Clinic, http: FakeProvider
) -> None:
    http.answer(Answer(422, json={"code": "invalid_number", "message": f"{PHONE} is unknown"}))
    message = send(clinic)
    assert message.status == MessageStatus.DEAD
    reason = last_reason(message)
    assert "HTTP 422 (error invalid_number)" in reason
    assert PHONE not in reason
