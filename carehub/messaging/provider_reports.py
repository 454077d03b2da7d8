"""Delivery-status reports from providers (SMS and e-mail callbacks) becoming delivery events.

A report names the message by the provider's id. It is stored first (once: a repeated report of
the same status is recognised and adds nothing), then applied to the message that carries that
provider id, under the message's row lock:

- queued / sent: the provider's progress, an event on the (still sent) message;
- delivered: a `delivered` event; the message stays sent;
- undelivered / failed: the message is dead with the provider's reason code (staff resend it).

States only move forward (queued < sent < delivered | undelivered | failed): a report of an
earlier or equal state than the message's (`provider_status`) is kept but changes nothing, so
reports arriving out of order do no harm.

Ordering with the send: a provider may call back before our worker has committed the provider's
id on the message. Such a report waits, unapplied, and is applied right after the send is marked
sent (`provider_reports_apply`, called by the sender), or else by the sweep. Both the callback
and the apply take one transaction-level advisory lock per provider id, so whichever commits
second sees the other's work: no report is lost between them.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from anymail.signals import AnymailTrackingEvent
from django.conf import settings
from django.db import connection, transaction

from carehub.core import clock
from carehub.core.retry import append_error
from carehub.messaging.models import (
    DELIVERED,
    PROVIDER_STATUS_RANK,
    DeliveryEvent,
    Message,
    MessageStatus,
    ProviderReport,
    ProviderStatus,
)
from carehub.messaging.providers import scrub
from carehub.messaging.providers.email import EVENT_STATUSES, provider_name

logger = logging.getLogger(__name__)

DUPLICATE = "duplicate"
PENDING = "pending"
APPLIED = "applied"

LABELS = {"twilio": "Twilio", "http": "The SMS provider"}


def _label(provider: str) -> str:
    if provider.startswith("email:"):
        return f"The e-mail provider ({provider.removeprefix('email:')})"
    return LABELS.get(provider, provider)


def provider_reports_lock(provider_message_id: str) -> None:
    """Serialise everything done about one provider id (callbacks and the send's apply)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
            [f"carehub.provider_report:{provider_message_id}"],
        )


def provider_report_receive(
    *,
    provider: str,
    provider_message_id: str,
    status: str,
    provider_status: str,
    error_code: str = "",
    error: str = "",
    reference: str = "",
) -> str:
    """Record one status report and apply it if its message is known. Returns `duplicate` (the
    same report came before: nothing added), `pending` (no message carries this id yet: it
    waits), `applied`, or `ignored: <why>`.

    `reference` (a message's idempotency key, from a signed callback URL) names the message when
    no message carries the provider id because the answer to its send was lost (a read
    timeout): see `_adopt`."""
    if status not in ProviderStatus.values:
        raise ValueError(f"unknown provider status {status!r}")
    now = clock.now()
    with transaction.atomic(durable=True):
        provider_reports_lock(provider_message_id)
        seen = ProviderReport.objects.filter(
            provider=provider, provider_message_id=provider_message_id, status=status
        ).exists()
        if seen:
            return DUPLICATE
        report = ProviderReport.objects.create(
            provider=provider,
            provider_message_id=provider_message_id[:200],
            status=status,
            provider_status=provider_status[:40],
            error_code=error_code[:40],
            error=scrub(error),
            received_at=now,
        )
        outcomes = _apply_pending(provider_message_id, now)
        if report.pk not in outcomes and reference and _adopt(reference, report, now):
            outcomes = _apply_pending(provider_message_id, now)
    return outcomes.get(report.pk, PENDING)


# A message waiting to be sent again (or given up) after an attempt whose answer never came.
ADOPTABLE = (MessageStatus.RETRY, MessageStatus.QUEUED, MessageStatus.DEAD)


def _adopt(reference: str, report: ProviderReport, now: datetime) -> bool:
    """The provider reports on a message it accepted, whose answer we never read: the message
    (by its idempotency key) is waiting to retry, queued for it, or dead after its last attempt.
    It is sent: it takes the provider's id, and is not sent a second time. A message another
    worker is sending right now (`sending`) is left alone: that attempt decides."""
    message = (
        Message.objects.select_for_update(of=("self",))
        .filter(idempotency_key=reference, channel="sms")
        .first()
    )
    if message is None or message.status not in ADOPTABLE or message.attempts == 0:
        return False
    if message.status == MessageStatus.DEAD and message.provider_status:
        return False  # dead because the provider said so: not a lost answer
    message.status = MessageStatus.SENT
    message.sent_at = now
    message.claimed_at = None
    message.provider_message_id = report.provider_message_id
    message.provider_status = ""
    message.updated_at = now
    message.save(
        update_fields=[
            "status",
            "sent_at",
            "claimed_at",
            "provider_message_id",
            "provider_status",
            "updated_at",
        ]
    )
    DeliveryEvent.objects.create(
        message=message,
        at=now,
        status=MessageStatus.SENT,
        attempt=message.attempts,
        reason=(
            f"Sent: {_label(report.provider)} reports {report.provider_status} for "
            f"{report.provider_message_id}, accepted by attempt {message.attempts} whose answer "
            "was lost; not sent again"
        )[:1000],
    )
    logger.warning(
        "message %s adopted provider id %s: its send's answer was lost",
        message.pk,
        report.provider_message_id,
    )
    return True


def provider_reports_apply(*, provider_message_id: str) -> dict[int, str]:
    """Apply the reports that arrived before the send was marked sent (usually none: one indexed
    query). Returns each applied report's outcome."""
    if not provider_message_id:
        return {}
    with transaction.atomic(durable=True):
        provider_reports_lock(provider_message_id)
        return _apply_pending(provider_message_id, clock.now())


def provider_reports_sweep(*, now: datetime | None = None, limit: int = 200) -> int:
    """Apply waiting reports whose message is now known (a safety net behind the sender's own
    apply), and close as unmatched those older than MESSAGING_PROVIDER_REPORT_PENDING_DAYS.
    Returns how many reports were settled."""
    now = now or clock.now()
    pending = ProviderReport.objects.filter(applied_at__isnull=True)
    ids = list(
        pending.filter(
            provider_message_id__in=Message.objects.exclude(provider_message_id="").values(
                "provider_message_id"
            )
        )
        .values_list("provider_message_id", flat=True)
        .distinct()[:limit]
    )
    settled = 0
    for provider_message_id in ids:
        settled += len(provider_reports_apply(provider_message_id=provider_message_id))
    cutoff = now - timedelta(days=settings.MESSAGING_PROVIDER_REPORT_PENDING_DAYS)
    settled += pending.filter(received_at__lt=cutoff).update(
        applied_at=now, outcome="unmatched: no message carries this provider id"
    )
    return settled


def _apply_pending(provider_message_id: str, now: datetime) -> dict[int, str]:
    """Inside the caller's transaction and advisory lock."""
    reports = list(
        ProviderReport.objects.filter(
            provider_message_id=provider_message_id, applied_at__isnull=True
        ).order_by("pk")
    )
    if not reports:
        return {}
    message = (
        Message.objects.select_for_update(of=("self",))
        .filter(provider_message_id=provider_message_id)
        .order_by("-pk")
        .first()
    )
    if message is None:
        return {}
    reports.sort(key=lambda r: (PROVIDER_STATUS_RANK[r.status], r.pk))
    events: list[DeliveryEvent] = []
    outcomes: dict[int, str] = {}
    before = (message.status, message.provider_status, message.last_error)
    for report in reports:
        outcome = _apply(message, report, now, events)
        report.message = message
        report.applied_at = now
        report.outcome = outcome[:200]
        outcomes[report.pk] = outcome
    ProviderReport.objects.bulk_update(reports, ["message", "applied_at", "outcome"])
    if (message.status, message.provider_status, message.last_error) != before:
        message.updated_at = now
        message.save(
            update_fields=["status", "provider_status", "claimed_at", "last_error", "updated_at"]
        )
    DeliveryEvent.objects.bulk_create(events)
    return outcomes


def _apply(
    message: Message, report: ProviderReport, now: datetime, events: list[DeliveryEvent]
) -> str:
    if message.status not in (MessageStatus.SENT, MessageStatus.DEAD):
        return f"ignored: the message is {message.status} (sent again since)"
    if message.status == MessageStatus.DEAD and not message.provider_status:
        return "ignored: the message is dead"
    if PROVIDER_STATUS_RANK[report.status] <= PROVIDER_STATUS_RANK[message.provider_status]:
        return f"ignored: already {message.provider_status}"
    message.provider_status = report.status
    label = _label(report.provider)
    said = f"{label} reports {report.provider_status} for {report.provider_message_id}"
    if report.error_code or report.error:
        said += f" (error {report.error_code or '?'}{': ' + report.error if report.error else ''})"
    at = report.received_at

    def add(status: str, reason: str) -> None:
        events.append(
            DeliveryEvent(
                message=message,
                at=at,
                status=status,
                reason=reason[:1000],
                attempt=message.attempts,
            )
        )

    if report.status in (ProviderStatus.QUEUED, ProviderStatus.SENT):
        add(MessageStatus.SENT, said)
    elif report.status == ProviderStatus.DELIVERED:
        add(DELIVERED, f"Delivered: {said}")
    else:
        message.status = MessageStatus.DEAD
        message.claimed_at = None
        message.last_error = append_error(message.last_error, said)
        add(MessageStatus.DEAD, f"Dead: not delivered. {said}")
        logger.error("message %s (%s) was not delivered: %s", message.pk, message.purpose, said)
    return APPLIED


def tracking_received(
    sender: Any, event: AnymailTrackingEvent, esp_name: str, **kwargs: Any
) -> None:
    """anymail's `tracking` signal: a delivery event of the ESP becomes a status report."""
    status = EVENT_STATUSES.get(str(event.event_type))
    if status is None or not event.message_id:
        return
    provider_report_receive(
        provider=provider_name(esp_name),
        provider_message_id=str(event.message_id),
        status=status,
        provider_status=str(event.event_type),
        error_code=str(event.reject_reason or ""),
        error=scrub(str(event.description or event.mta_response or "")),
    )
