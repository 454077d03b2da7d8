"""Delivery channels behind one interface: SMS through a gateway, e-mail through Django's e-mail
backends, in-app as a row. Each send passes the message's idempotency key to the provider.

The development backends (`RecordingSmsGateway`, `RecordingEmailBackend`) deliver nothing: they
record what would have been sent in `RecordedMessage` (check-in link tokens redacted), and like a
real provider they deliver a key once (a unique constraint), counting repeated requests.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from functools import lru_cache

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.db import connection
from django.utils.module_loading import import_string

from carehub.core import clock
from carehub.core.logging import redact
from carehub.messaging.models import (
    DeliveryChannel,
    InAppNotification,
    Message,
    RecordedMessage,
    new_provider_id,
)


class DeliveryError(Exception):
    """A provider refused or failed a send; retrying may succeed. `retry_after` (seconds) is
    the provider's own wish (HTTP Retry-After): the retry is not earlier; `code` is the
    provider's reason code, when it gave one."""

    def __init__(self, reason: str, *, retry_after: float | None = None, code: str = "") -> None:
        super().__init__(reason)
        self.retry_after = retry_after
        self.code = code


class PermanentDeliveryError(DeliveryError):
    """A send that cannot succeed by retrying (e.g. an invalid number): dead at once."""


class UnreachableContact(PermanentDeliveryError):
    """The patient's phone number or e-mail address cannot be reached (missing, not in service,
    refused by the provider): only correcting it helps, then the message can be resent. Gateways
    raise it for such refusals; the dead-messages page offers to fix the contact."""


# --- providers ----------------------------------------------------------------------------------


class SmsGateway(ABC):
    """An SMS provider. `send` returns the provider's message id; a provider given the same
    idempotency key twice must not deliver twice. A gateway whose provider calls back with
    delivery statuses (`reports_status`) has its pending reports applied when a send is marked
    sent."""

    reports_status: bool = False

    @abstractmethod
    def send(self, to: str, body: str, idempotency_key: str) -> str: ...


def record_delivery(
    *, channel: str, to: str, body: str, idempotency_key: str, subject: str = ""
) -> str:
    """Store one delivery of the development backends; a repeated key is counted, not stored.
    A check-in link's token is a live credential: the row keeps `/c/[redacted]` instead.

    Called outside our transactions, it commits on its own, like a provider's API call: one
    statement (`INSERT … ON CONFLICT (idempotency_key) DO UPDATE` counting the repeat)."""
    table = RecordedMessage._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {table}
                (channel, "to", subject, body, idempotency_key, provider_id, at,
                 duplicate_requests)
            VALUES (%s, %s, %s, %s, %s, %s, %s, 0)
            ON CONFLICT (idempotency_key) DO UPDATE
                SET duplicate_requests = {table}.duplicate_requests + 1
            RETURNING provider_id
            """,  # noqa: S608 (the table name is ours; values are parameters)
            [
                channel,
                to,
                redact(subject)[:300],
                redact(body),
                idempotency_key,
                new_provider_id(),
                clock.now(),
            ],
        )
        row = cursor.fetchone()
    return str(row[0])


class RecordingSmsGateway(SmsGateway):
    """Development and demo gateway: records every SMS in RecordedMessage, sends nothing."""

    def send(self, to: str, body: str, idempotency_key: str) -> str:
        return record_delivery(channel="sms", to=to, body=body, idempotency_key=idempotency_key)


IDEMPOTENCY_HEADER = "X-Idempotency-Key"


class RecordingEmailBackend(BaseEmailBackend):
    """Django e-mail backend for development and demo: records each e-mail in RecordedMessage
    (one row per recipient), keyed by the X-Idempotency-Key header or else the Message-ID."""

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        sent = 0
        for email in email_messages:
            recipients = email.recipients()
            if not recipients:
                continue
            key = email.extra_headers.get(IDEMPOTENCY_HEADER) or email.extra_headers.get(
                "Message-ID"
            )
            if not key:
                key = str(email.message()["Message-ID"])
            for recipient in recipients:
                record_delivery(
                    channel="email",
                    to=recipient,
                    body=str(email.body),
                    subject=str(email.subject),
                    idempotency_key=key if len(recipients) == 1 else f"{key}:{recipient}",
                )
            sent += 1
        return sent


# Short names for MESSAGING_SMS_GATEWAY; anything else is a dotted path to an SmsGateway.
SMS_GATEWAYS = {
    "twilio": "carehub.messaging.providers.twilio.TwilioSmsGateway",
    "http": "carehub.messaging.providers.http.HttpSmsGateway",
    "recording": "carehub.messaging.channels.RecordingSmsGateway",
}
# The e-mail sender of an anymail backend, by its dotted path like the SMS gateways (the
# providers import this module for its errors and base classes).
ANYMAIL_SENDER = "carehub.messaging.providers.email.send_through_anymail"


def sms_gateway_path(value: str | None = None) -> str:
    """The dotted path MESSAGING_SMS_GATEWAY (or `value`) names."""
    name = settings.MESSAGING_SMS_GATEWAY if value is None else value
    return SMS_GATEWAYS.get(name, name)


@lru_cache(maxsize=8)
def _gateway_class(path: str) -> type[SmsGateway]:
    cls = import_string(sms_gateway_path(path))
    if not (isinstance(cls, type) and issubclass(cls, SmsGateway)):
        raise TypeError(f"MESSAGING_SMS_GATEWAY {path} is not an SmsGateway")
    return cls


def sms_gateway_class() -> type[SmsGateway]:
    return _gateway_class(settings.MESSAGING_SMS_GATEWAY)


def sms_gateway() -> SmsGateway:
    """The configured gateway (setting MESSAGING_SMS_GATEWAY: `twilio`, `http`, `recording` or
    a dotted path)."""
    return sms_gateway_class()()


def email_reports_status() -> bool:
    """Whether the e-mail backend's provider calls back with delivery statuses (anymail's)."""
    return str(settings.EMAIL_BACKEND).startswith("anymail.")


def expects_reports(channel: str) -> bool:
    """Whether a send by `channel` may have delivery-status reports waiting for it."""
    if channel == DeliveryChannel.SMS:
        return sms_gateway_class().reports_status
    return channel == DeliveryChannel.EMAIL and email_reports_status()


# --- channels -----------------------------------------------------------------------------------


class Channel(ABC):
    name: str

    @abstractmethod
    def send(self, message: Message, text: str) -> str:
        """Deliver `text` for `message` (keyed by its idempotency key); the provider's id."""


class SmsChannel(Channel):
    name = DeliveryChannel.SMS

    def send(self, message: Message, text: str) -> str:
        patient = message.patient
        if not message.to_patient or patient is None:
            raise PermanentDeliveryError("SMS goes to patients only")
        if not patient.phone:
            raise UnreachableContact("the patient has no phone number")
        gateway = RecordingSmsGateway() if in_sandbox(message) else sms_gateway()
        return gateway.send(patient.phone, text, message.idempotency_key)


def email_message_id(idempotency_key: str) -> str:
    """A Message-ID derived from the key: the same message keeps the same id on every attempt."""
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:40]
    return f"<{digest}@carehub>"


class EmailChannel(Channel):
    name = DeliveryChannel.EMAIL

    def send(self, message: Message, text: str) -> str:
        if message.to_patient:
            assert message.patient is not None
            address = message.patient.email
            subject = settings.MESSAGING_EMAIL_SUBJECT
        else:
            assert message.to_staff is not None
            address = message.to_staff.email
            subject = f"carehub: {message.purpose.replace('_', ' ')}"
        if not address:
            if message.to_patient:
                raise UnreachableContact("the patient has no e-mail address")
            raise PermanentDeliveryError("no e-mail address")
        message_id = email_message_id(message.idempotency_key)
        email = EmailMessage(
            subject=subject,
            body=text,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[address],
            headers={"Message-ID": message_id, IDEMPOTENCY_HEADER: message.idempotency_key},
        )
        if in_sandbox(message):
            # A sandbox clinic's e-mail is recorded, whatever EMAIL_BACKEND says.
            email.connection = get_connection(RECORDING_EMAIL_BACKEND)
            email.send(fail_silently=False)
            return message_id
        if email_reports_status():
            # The ESP's own id: its tracking webhooks name the message by it.
            return import_string(ANYMAIL_SENDER)(email) or message_id
        email.send(fail_silently=False)
        return message_id


class InAppChannel(Channel):
    name = DeliveryChannel.IN_APP

    def send(self, message: Message, text: str) -> str:
        notification, _ = InAppNotification.objects.get_or_create(
            message=message,
            defaults={
                "patient_id": message.patient_id if message.to_patient else None,
                "staff_id": message.to_staff_id,
                "body": text,
            },
        )
        return f"in-app-{notification.pk}"


CHANNELS: dict[str, Channel] = {
    channel.name: channel for channel in (SmsChannel(), EmailChannel(), InAppChannel())
}


RECORDING_EMAIL_BACKEND = "carehub.messaging.channels.RecordingEmailBackend"


def in_sandbox(message: Message) -> bool:
    """Whether the message is a sandbox clinic's (ADR 0024): then it reaches the recording
    backends only, never a real provider, whatever MESSAGING_SMS_GATEWAY and EMAIL_BACKEND say.
    Read from the database (the clinic row), not from a cache."""
    clinic = message.clinic  # loaded with the claim
    return bool(clinic.is_sandbox)


def deliver(message: Message, channel: str, text: str) -> str:
    """The one way out of carehub for a message: the channel's provider, or the recording
    backends for a sandbox clinic's message."""
    try:
        implementation = CHANNELS[channel]
    except KeyError:
        raise PermanentDeliveryError(f"unknown channel '{channel}'") from None
    return implementation.send(message, text)
