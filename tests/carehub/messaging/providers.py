"""Fakes of the real providers' HTTP APIs (on a local port, see tests/support/fake_provider.py),
their settings, and signed callbacks as the providers send them."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import time as dtime
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.test import Client, override_settings
from django.utils import timezone
from twilio.request_validator import RequestValidator
from werkzeug import Request

from carehub.clinics.models import Clinic
from carehub.messaging.models import Message
from carehub.messaging.providers.http import sign
from carehub.messaging.services import PATIENT, message_enqueue
from carehub.patients.models import Patient
from carehub.patients.services import patient_register
from tests.support.celery_worker import purge_queue
from tests.support.fake_provider import Answer, FakeProvider

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "fake-auth-token-0123456789abcdef"
FROM_NUMBER = "+15005550006"
CALLBACK_BASE = "https://carehub.example"
TWILIO_STATUS_URL = f"{CALLBACK_BASE}/hooks/sms/twilio/status"
HTTP_SECRET = "fake-hmac-secret"
WEBHOOK_SECRET = "postmark:fake-webhook-password"
PHONE = "+15550107777"


def new_sid() -> str:
    return "SM" + uuid.uuid4().hex


def twilio_created(request: Request) -> Answer:
    """What Twilio answers to a message it accepts."""
    return Answer(201, json={
        "sid": new_sid(), "status": "queued", "account_sid": ACCOUNT_SID,
        "to": request.form.get("To"), "from": request.form.get("From"), "num_segments": "1",
    })  # fmt: skip


def twilio_settings(provider: FakeProvider, **extra: Any) -> dict[str, Any]:
    return {
        "MESSAGING_SMS_GATEWAY": "twilio", "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "TWILIO_FROM_NUMBER": FROM_NUMBER,
        "TWILIO_API_BASE_URL": provider.url, "MESSAGING_CALLBACK_BASE_URL": CALLBACK_BASE,
        "MESSAGING_PROVIDER_CONNECT_TIMEOUT_SECONDS": 2,
        "MESSAGING_PROVIDER_READ_TIMEOUT_SECONDS": 10,
        **extra,
    }  # fmt: skip


def http_accepted(request: Request) -> Answer:
    return Answer(202, json={"data": {"message_id": "hp-" + uuid.uuid4().hex}})


def http_settings(provider: FakeProvider, **extra: Any) -> dict[str, Any]:
    return {
        "MESSAGING_SMS_GATEWAY": "http", "SMS_HTTP_URL": f"{provider.url}/v1/sms",
        "SMS_HTTP_AUTH_HEADER": "Authorization: Bearer fake-api-key",
        "SMS_HTTP_BODY_TEMPLATE": json.dumps({
            "recipient": "{to}", "sender": "{from}", "message": {"text": "{body}"},
            "client_ref": "{reference}", "webhook": "{callback_url}", "priority": 1,
        }),
        "SMS_HTTP_FROM": "carehub", "SMS_HTTP_ID_FIELD": "data.message_id",
        "SMS_HTTP_CALLBACK_SECRET": HTTP_SECRET, "MESSAGING_CALLBACK_BASE_URL": CALLBACK_BASE,
        "MESSAGING_PROVIDER_CONNECT_TIMEOUT_SECONDS": 2,
        "MESSAGING_PROVIDER_READ_TIMEOUT_SECONDS": 10,
        **extra,
    }  # fmt: skip


def postmark_sent(request: Request) -> Answer:
    payload = json.loads(request.get_data())
    return Answer(200, json={
        "To": payload["To"], "SubmittedAt": "2026-02-10T20:00:00Z",
        "MessageID": str(uuid.uuid4()), "ErrorCode": 0, "Message": "OK",
    })  # fmt: skip


def postmark_settings(provider: FakeProvider) -> dict[str, Any]:
    return {
        "EMAIL_BACKEND": "anymail.backends.postmark.EmailBackend",
        "ANYMAIL": {
            "POSTMARK_SERVER_TOKEN": "fake-server-token", "POSTMARK_API_URL": provider.url + "/",
            "WEBHOOK_SECRET": WEBHOOK_SECRET, "REQUESTS_TIMEOUT": (2, 10),
        },
        "DEFAULT_FROM_EMAIL": "care@carehub.example",
    }  # fmt: skip


@pytest.fixture
def quiet_queue() -> Iterator[None]:
    """Messages enqueued in a test publish send tasks no worker takes: purge them."""
    purge_queue()
    yield
    purge_queue()


@contextmanager
def short_read_timeout(seconds: float = 0.3) -> Iterator[None]:
    """A read timeout shorter than a fake answer's delay (the usual one is long enough for a
    busy machine)."""
    anymail = {**settings.ANYMAIL, "REQUESTS_TIMEOUT": (2, seconds)}
    with override_settings(MESSAGING_PROVIDER_READ_TIMEOUT_SECONDS=seconds, ANYMAIL=anymail):
        yield


def all_day_patient(clinic: Clinic, mrn: str = "P-1", **extra: Any) -> Patient:
    return patient_register(
        clinic=clinic, mrn=mrn, given_name="Grace", family_name="Hopper",
        time_zone="America/New_York", phone=PHONE, email="grace@example.org",
        send_window_start=dtime(0), send_window_end=dtime(23, 59, 59), **extra,
    )  # fmt: skip


def urgent(patient: Patient, key: str, body: str = "Your appointment is tomorrow") -> Message:
    """A message to the patient, due now (urgent: no daily budget)."""
    return message_enqueue(
        patient=patient, recipient=PATIENT, purpose="appointment_reminder", body=body,
        idempotency_key=key, urgency="urgent", why="test",
        not_before=timezone.now() - timedelta(seconds=1),
    )  # fmt: skip


def twilio_callback(
    client: Client,
    sid: str,
    status: str,
    *,
    token: str = AUTH_TOKEN,
    ref: str = "",
    **fields: str,
) -> Any:
    """Twilio's StatusCallback, signed as Twilio signs it (the URL it was given, and the form)."""
    params = {
        "MessageSid": sid, "SmsSid": sid, "MessageStatus": status, "SmsStatus": status,
        "AccountSid": ACCOUNT_SID, "From": FROM_NUMBER, "To": PHONE, "ApiVersion": "2010-04-01",
        **fields,
    }  # fmt: skip
    query = f"?{urlencode({'ref': ref})}" if ref else ""
    signature = RequestValidator(token).compute_signature(TWILIO_STATUS_URL + query, params)
    return client.post(
        "/hooks/sms/twilio/status" + query, params, headers={"X-Twilio-Signature": signature}
    )


def http_callback(
    client: Client, payload: Any, *, secret: str = HTTP_SECRET, age: float = 0
) -> Any:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    timestamp = str(int(time.time() - age))
    return client.post(
        "/hooks/sms/http/status", body, content_type="application/json",
        headers={"X-Carehub-Timestamp": timestamp,
                 "X-Carehub-Signature": sign(body, timestamp, secret)},
    )  # fmt: skip


def postmark_webhook(client: Client, payload: Any, *, secret: str = WEBHOOK_SECRET) -> Any:
    auth = base64.b64encode(secret.encode()).decode()
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return client.post(
        "/hooks/email/postmark/tracking/",
        body,
        content_type="application/json",
        headers={"Authorization": f"Basic {auth}"},
    )
