"""Delivery-status callbacks (Twilio's signed StatusCallback, the generic provider's HMAC-signed
JSON) become delivery events on the right message: signatures checked before anything else,
repeated callbacks adding nothing, statuses only moving forward, undelivered messages dead, and a
callback that overtakes the send's own commit kept until the message is marked sent."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
from django.db import connection, transaction
from django.test import Client, override_settings
from django.utils import timezone
from twilio.request_validator import RequestValidator

from carehub.clinics.models import Clinic
from carehub.messaging.delivery import message_mark_sent, message_send
from carehub.messaging.models import (
    DELIVERED,
    DeliveryEvent,
    Message,
    MessageStatus,
    ProviderReport,
)
from carehub.messaging.provider_reports import (
    provider_reports_apply,
    provider_reports_lock,
    provider_reports_sweep,
)
from carehub.messaging.services import message_resend
from tests.carehub.messaging.providers import (
    AUTH_TOKEN,
    PHONE,
    TWILIO_STATUS_URL,
    all_day_patient,
    http_accepted,
    http_callback,
    http_settings,
    quiet_queue,  # noqa: F401 (fixture)
    short_read_timeout,
    twilio_callback,
    twilio_created,
    twilio_settings,
    urgent,
)
from tests.support.fake_provider import (  # noqa: F401 (fixture)
    Answer,
    FakeProvider,
    fake_provider_factory,
)

pytestmark = pytest.mark.usefixtures("quiet_queue")


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


@pytest.fixture
def hooks() -> Client:
    """Providers carry no session and no CSRF token."""
    return Client(enforce_csrf_checks=True)


def sent(clinic: Clinic, key: str = "m-1", mrn: str = "P-1") -> Message:
    message = urgent(all_day_patient(clinic, mrn=mrn), key)
    assert message_send(message_id=message.pk) == MessageStatus.SENT
    message.refresh_from_db()
    return message


def statuses(message: Message) -> list[str]:
    return list(DeliveryEvent.objects.filter(message=message).values_list("status", flat=True))


# --- Twilio -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_signed_delivered_callback_becomes_a_delivery_event(
    clinic: Clinic, twilio: FakeProvider, hooks: Client
) -> None:
    message = sent(clinic)
    response = twilio_callback(hooks, message.provider_message_id, "delivered")
    assert response.status_code == 200
    assert response.json() == {"outcome": "applied"}
    message.refresh_from_db()
    assert message.status == MessageStatus.SENT
    assert message.provider_status == "delivered"
    assert statuses(message)[-2:] == [MessageStatus.SENT, DELIVERED]
    event = DeliveryEvent.objects.filter(message=message).last()
    assert event is not None
    assert f"Twilio reports delivered for {message.provider_message_id}" in event.reason


@pytest.mark.django_db
def test_a_repeated_callback_adds_nothing(
    clinic: Clinic, twilio: FakeProvider, hooks: Client
) -> None:
    message = sent(clinic)
    assert twilio_callback(hooks, message.provider_message_id, "sent").json()["outcome"] == (
        "applied"
    )
    events, reports = DeliveryEvent.objects.count(), ProviderReport.objects.count()
    again = twilio_callback(hooks, message.provider_message_id, "sent")
    assert again.status_code == 200
    assert again.json() == {"outcome": "duplicate"}
    assert (DeliveryEvent.objects.count(), ProviderReport.objects.count()) == (events, reports)


@pytest.mark.django_db
def test_statuses_only_move_forward(clinic: Clinic, twilio: FakeProvider, hooks: Client) -> None:
    message = sent(clinic)
    sid = message.provider_message_id
    assert twilio_callback(hooks, sid, "queued").json()["outcome"] == "applied"
    assert twilio_callback(hooks, sid, "delivered").json()["outcome"] == "applied"
    # "sent" overtaken by "delivered": kept, changes nothing.
    late = twilio_callback(hooks, sid, "sent")
    assert late.json() == {"outcome": "ignored: already delivered"}
    # A contradicting final status after "delivered" changes nothing either.
    assert twilio_callback(hooks, sid, "undelivered").json()["outcome"] == (
        "ignored: already delivered"
    )
    message.refresh_from_db()
    assert (message.status, message.provider_status) == (MessageStatus.SENT, "delivered")
    assert statuses(message)[-2:] == [MessageStatus.SENT, DELIVERED]
    assert ProviderReport.objects.filter(provider_message_id=sid).count() == 4


@pytest.mark.django_db
def test_undelivered_makes_the_message_dead_with_the_carrier_s_code_and_resend_starts_afresh(
    clinic: Clinic, twilio: FakeProvider, hooks: Client
) -> None:
    message = sent(clinic)
    response = twilio_callback(
        hooks, message.provider_message_id, "undelivered",
        ErrorCode="30003", ErrorMessage=f"Unreachable destination handset {PHONE}",
    )  # fmt: skip
    assert response.json() == {"outcome": "applied"}
    message.refresh_from_db()
    assert message.status == MessageStatus.DEAD
    assert "error 30003" in message.last_error
    dead = DeliveryEvent.objects.filter(message=message).last()
    assert dead is not None
    assert dead.status == MessageStatus.DEAD
    assert "Twilio reports undelivered" in dead.reason
    # Staff resend it: a new send, a new sid, and its own statuses count again.
    message_resend(message_id=message.pk)
    assert message_send(message_id=message.pk) == MessageStatus.SENT
    message.refresh_from_db()
    assert message.provider_status == ""
    assert twilio_callback(hooks, message.provider_message_id, "delivered").json() == {
        "outcome": "applied"
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    "tamper",
    ["wrong token", "no signature", "changed field", "other url"],
)
def test_a_bad_signature_is_403_and_stores_nothing(
    clinic: Clinic, twilio: FakeProvider, hooks: Client, tamper: str
) -> None:
    message = sent(clinic)
    sid = message.provider_message_id
    if tamper == "wrong token":
        response = twilio_callback(hooks, sid, "delivered", token="not-our-token")
    elif tamper == "no signature":
        response = hooks.post(
            "/hooks/sms/twilio/status", {"MessageSid": sid, "MessageStatus": "delivered"}
        )
    elif tamper == "changed field":
        good = twilio_callback(hooks, sid, "sent")  # a valid one, replayed with a change
        assert good.status_code == 200
        signature = RequestValidator(AUTH_TOKEN).compute_signature(
            TWILIO_STATUS_URL, {"MessageSid": sid, "MessageStatus": "sent"}
        )
        response = hooks.post(
            "/hooks/sms/twilio/status", {"MessageSid": sid, "MessageStatus": "failed"},
            headers={"X-Twilio-Signature": signature},
        )  # fmt: skip
    else:
        with override_settings(MESSAGING_CALLBACK_BASE_URL="https://elsewhere.example"):
            response = twilio_callback(hooks, sid, "delivered")
    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"
    message.refresh_from_db()
    assert message.provider_status in ("", "sent")
    assert not ProviderReport.objects.filter(status__in=["delivered", "failed"]).exists()


@pytest.mark.django_db
def test_bad_input_is_4xx_never_500(clinic: Clinic, twilio: FakeProvider, hooks: Client) -> None:
    missing_status = twilio_callback(hooks, "SMabc", "", MessageStatus="", SmsStatus="")
    assert missing_status.status_code == 400
    assert hooks.get("/hooks/sms/twilio/status").status_code == 405
    huge = hooks.post(
        "/hooks/sms/twilio/status", "x=" + "a" * 70_000,
        content_type="application/x-www-form-urlencoded",
    )  # fmt: skip
    assert huge.status_code == 413
    untracked = twilio_callback(hooks, "SMabc", "receiving")
    assert untracked.status_code == 200
    assert untracked.json()["outcome"].startswith("ignored")
    assert not ProviderReport.objects.exists()


@pytest.mark.django_db
def test_an_unknown_message_id_is_kept_and_applied_when_a_message_carries_it(
    clinic: Clinic, twilio: FakeProvider, hooks: Client
) -> None:
    early = twilio_callback(hooks, "SMearly", "delivered")
    assert early.status_code == 200
    assert early.json() == {"outcome": "pending"}
    message = urgent(all_day_patient(clinic), "m-early")
    # Marked sent without the sender's own apply (e.g. it failed): the sweep applies it.
    message_mark_sent(message_id=message.pk, attempt=0, channel="sms", provider_id="SMearly")
    assert ProviderReport.objects.get(provider_message_id="SMearly").applied_at is None
    assert provider_reports_sweep() == 1
    message.refresh_from_db()
    assert message.provider_status == "delivered"
    assert statuses(message)[-1] == DELIVERED


@pytest.mark.django_db(transaction=True)
def test_a_callback_that_overtakes_the_send_s_commit_is_not_lost(
    clinic: Clinic, twilio: FakeProvider
) -> None:
    """Twilio calls back "delivered" before its answer to the send reaches our worker: the
    message does not carry the sid yet; the report waits and is applied when it is marked sent."""
    outcomes: list[str] = []

    def call_back_first(request: object) -> None:
        try:
            response = twilio_callback(Client(), sid, "delivered")
            outcomes.append(response.json()["outcome"])
        finally:
            connection.close()

    sid = "SMovertaken00000000000000000000000"
    twilio.answer(Answer(201, json={"sid": sid, "status": "queued"}, before=call_back_first))
    message = urgent(all_day_patient(clinic), "m-race")
    assert message_send(message_id=message.pk) == MessageStatus.SENT
    assert outcomes == ["pending"]
    message.refresh_from_db()
    assert (message.provider_message_id, message.provider_status) == (sid, "delivered")
    assert statuses(message)[-2:] == [MessageStatus.SENT, DELIVERED]
    assert ProviderReport.objects.get(provider_message_id=sid).message_id == message.pk


@pytest.mark.django_db(transaction=True)
def test_the_send_s_apply_waits_for_a_callback_still_committing(clinic: Clinic) -> None:
    """A callback has stored its report (it found no message with the sid) but not committed
    yet when the sender marks the message sent and looks for waiting reports: the sender's look
    waits for that commit (the advisory lock on the provider id), so it sees the report."""
    message = urgent(all_day_patient(clinic), "m-lock")
    Message.objects.filter(pk=message.pk).update(status=MessageStatus.SENDING, attempts=1)
    sid = "SMcommitting"
    stored, done = threading.Event(), threading.Event()

    def callback_in_flight() -> None:
        try:
            with transaction.atomic():
                provider_reports_lock(sid)
                ProviderReport.objects.create(
                    provider="twilio", provider_message_id=sid, status="delivered",
                    provider_status="delivered", received_at=timezone.now(),
                )  # fmt: skip
                stored.set()
                time.sleep(0.5)  # still committing when the sender looks
        finally:
            connection.close()
            done.set()

    thread = threading.Thread(target=callback_in_flight)
    thread.start()
    assert stored.wait(10)
    message_mark_sent(message_id=message.pk, attempt=1, channel="sms", provider_id=sid)
    applied = provider_reports_apply(provider_message_id=sid)
    thread.join()
    assert list(applied.values()) == ["applied"]
    message.refresh_from_db()
    assert message.provider_status == "delivered"


@pytest.mark.django_db
def test_a_report_about_a_send_whose_answer_was_lost_stops_the_second_send(
    clinic: Clinic, twilio: FakeProvider, hooks: Client
) -> None:
    """Twilio accepted the message but its answer came after our read timeout: the message waits
    to retry. Twilio's callback (its URL names the message) makes it sent with Twilio's sid, and
    the retry sends nothing."""
    twilio.answer(Answer(201, json={"sid": "SMlostanswer", "status": "queued"}, delay=1.2))
    message = urgent(all_day_patient(clinic), "checkin:7:request")
    with short_read_timeout():
        assert message_send(message_id=message.pk) == MessageStatus.RETRY
    response = twilio_callback(hooks, "SMlostanswer", "sent", ref="checkin:7:request")
    assert response.json() == {"outcome": "applied"}
    message.refresh_from_db()
    assert (message.status, message.provider_message_id) == (MessageStatus.SENT, "SMlostanswer")
    assert message.attempts == 1
    adopted = DeliveryEvent.objects.filter(message=message, status=MessageStatus.SENT).first()
    assert adopted is not None
    assert "whose answer was lost; not sent again" in adopted.reason
    Message.objects.filter(pk=message.pk).update(not_before=timezone.now())
    assert message_send(message_id=message.pk) == "skipped"
    assert len(twilio.requests) == 1
    assert twilio_callback(hooks, "SMlostanswer", "delivered", ref="checkin:7:request").json() == {
        "outcome": "applied"
    }


@pytest.mark.django_db
def test_a_reference_never_takes_over_a_send_in_progress_or_a_forged_url(
    clinic: Clinic, twilio: FakeProvider, hooks: Client
) -> None:
    message = urgent(all_day_patient(clinic), "m-busy")
    Message.objects.filter(pk=message.pk).update(
        status=MessageStatus.SENDING, attempts=1, channel="sms"
    )
    busy = twilio_callback(hooks, "SMother", "sent", ref="m-busy")
    assert busy.json() == {"outcome": "pending"}  # the attempt in progress decides
    # The ref is part of what Twilio signed: changing it breaks the signature.
    params = {"MessageSid": "SMother2", "MessageStatus": "sent"}
    signature = RequestValidator(AUTH_TOKEN).compute_signature(
        f"{TWILIO_STATUS_URL}?ref=m-other", params
    )
    forged = hooks.post(
        "/hooks/sms/twilio/status?ref=m-busy", params, headers={"X-Twilio-Signature": signature}
    )
    assert forged.status_code == 403
    message.refresh_from_db()
    assert message.status == MessageStatus.SENDING


# --- the generic HTTP provider ------------------------------------------------------------------


@pytest.mark.django_db
def test_an_hmac_signed_callback_becomes_a_delivery_event(
    clinic: Clinic, http: FakeProvider, hooks: Client
) -> None:
    message = sent(clinic)
    response = http_callback(hooks, {"id": message.provider_message_id, "status": "delivered"})
    assert response.status_code == 200
    assert response.json() == {"outcome": "applied"}
    assert http_callback(
        hooks, {"id": message.provider_message_id, "status": "delivered"}
    ).json() == {"outcome": "duplicate"}
    message.refresh_from_db()
    assert message.provider_status == "delivered"
    assert statuses(message).count(DELIVERED) == 1


@pytest.mark.django_db
def test_a_failed_http_callback_carries_the_provider_s_code(
    clinic: Clinic, http: FakeProvider, hooks: Client
) -> None:
    message = sent(clinic)
    response = http_callback(hooks, {
        "id": message.provider_message_id, "status": "failed", "error_code": "blocked",
        "error_message": "carrier blocked the message",
    })  # fmt: skip
    assert response.json() == {"outcome": "applied"}
    message.refresh_from_db()
    assert message.status == MessageStatus.DEAD
    assert "error blocked: carrier blocked the message" in message.last_error


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("send", "status"),
    [
        (lambda c: http_callback(c, {"id": "x", "status": "sent"}, secret="wrong"), 403),
        (lambda c: http_callback(c, {"id": "x", "status": "sent"}, age=3600), 403),
        (lambda c: c.post("/hooks/sms/http/status", b"{}", content_type="application/json"), 403),
        (lambda c: http_callback(c, b"not json"), 400),
        (lambda c: http_callback(c, [1, 2]), 400),
        (lambda c: http_callback(c, {"status": "sent"}), 400),
        (lambda c: http_callback(c, {"id": {"a": 1}, "status": "sent"}), 400),
        (lambda c: http_callback(c, {"id": "x", "status": "read-by-cat"}), 200),
    ],
    ids=["wrong-secret", "stale", "unsigned", "not-json", "not-object", "no-id", "id-object",
         "untracked-status"],
)  # fmt: skip
def test_http_callbacks_refuse_bad_input(
    http: FakeProvider, hooks: Client, send: Callable[[Client], object], status: int
) -> None:
    response = send(hooks)
    assert response.status_code == status  # type: ignore[attr-defined]
    assert not ProviderReport.objects.exists()
