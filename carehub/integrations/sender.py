"""Sending webhook deliveries: claim, POST signed, record; in order per patient.

`webhooks_send` (the Celery beat task `carehub.integrations.webhooks_send`, every
`WEBHOOK_SEND_INTERVAL_SECONDS`) runs these steps:

1. Deliveries left `sending` longer than `WEBHOOK_LEASE_SECONDS` (their worker died mid-send)
   count a failed attempt ("worker lost") and go back to pending.
2. Claim due pending deliveries with `FOR UPDATE SKIP LOCKED`, only those whose event's
   transaction is older than every transaction still running (so an event committed late is
   never overtaken) and with no earlier undelivered delivery of the same subscription and
   patient (order per patient, hence per enrolment). A claim is committed (`sending`, one
   attempt counted) before anything is sent.
3. POST each one (Standard Webhooks: `webhook-id` is the event's id on every attempt, so a
   receiver dedupes; `webhook-timestamp`, the machine's time of the attempt, a sandbox's too;
   `webhook-signature`, HMAC-SHA256 with the subscription's secret), then record the answer in
   its own transaction: 2xx → delivered; anything else → retried with exponential backoff and
   jitter, or dead after `WEBHOOK_MAX_ATTEMPTS` (admin and API: resend). A dead delivery no
   longer holds back the patient's later events.

Delivery is at least once: a receiver that answered 200 to a request whose answer was lost gets
the same `webhook-id` again.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import requests
from django.conf import settings
from django.db import connection, transaction
from standardwebhooks.webhooks import Webhook

from carehub.clinics.clock import sandbox_clinic_ids
from carehub.core import clock
from carehub.core.retry import append_error, exponential_backoff
from carehub.integrations.horizon import HORIZON_SQL
from carehub.integrations.models import (
    ChangeEvent,
    DeliveryStatus,
    WebhookDelivery,
)

logger = logging.getLogger(__name__)

_d, _e = WebhookDelivery._meta.db_table, ChangeEvent._meta.db_table
# Which pending deliveries may go now (see the module's docstring, step 2).
_CLAIM_SQL = f"""
SELECT d.id FROM {_d} d JOIN {_e} e ON e.id = d.event_id
WHERE d.status = '{DeliveryStatus.PENDING.value}' AND d.next_attempt_at <= %(now)s
  AND (%(clinic)s::bigint IS NULL OR e.clinic_id = %(clinic)s::bigint)
  AND NOT (e.clinic_id = ANY(%(sandboxes)s::bigint[]))
  AND e.txid < {HORIZON_SQL}
  AND NOT EXISTS (
    SELECT 1 FROM {_d} p JOIN {_e} pe ON pe.id = p.event_id
    WHERE p.subscription_id = d.subscription_id
      AND p.status IN ('{DeliveryStatus.PENDING.value}', '{DeliveryStatus.SENDING.value}')
      AND coalesce(pe.patient_id, 0) = coalesce(e.patient_id, 0)
      AND (pe.txid, pe.id) < (e.txid, e.id))
ORDER BY e.txid, e.id
LIMIT %(batch)s
FOR UPDATE OF d SKIP LOCKED
"""  # noqa: S608 - names from the models' metadata, values bound


def event_body(event: ChangeEvent) -> dict[str, Any]:
    """What a receiver (and the feed) gets for an event: ids and codes only."""
    return {
        "id": str(event.public_id),
        "type": event.type,
        "timestamp": event.occurred_at.isoformat(),
        "data": {
            "clinic_id": event.clinic_id,
            "patient_id": event.patient_id,
            # The API names enrolments by their public id.
            "enrolment_id": str(event.enrolment.public_id) if event.enrolment else None,
            "subject_id": event.subject_id,
            **event.data,
        },
    }


def signed_request(
    *, secret: str, event: ChangeEvent, at: datetime
) -> tuple[bytes, dict[str, str]]:
    """The body and the Standard Webhooks headers of one attempt."""
    body = json.dumps(event_body(event), separators=(",", ":")).encode()
    msg_id = str(event.public_id)
    return body, {
        "content-type": "application/json",
        "user-agent": "carehub-webhooks/1",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body),
    }


@dataclass(frozen=True)
class Attempt:
    delivered: bool
    status_code: int | None
    error: str


def _post(url: str, body: bytes, headers: dict[str, str]) -> Attempt:
    timeout = float(settings.WEBHOOK_TIMEOUT_SECONDS)
    try:
        response = requests.post(
            url,
            data=body,
            headers=headers,
            timeout=(min(timeout, 5.0), timeout),
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        return Attempt(False, None, f"{type(exc).__name__}: {str(exc)[:300]}")
    if 200 <= response.status_code < 300:
        return Attempt(True, response.status_code, "")
    return Attempt(False, response.status_code, f"HTTP {response.status_code}")


def _release_lost(now: datetime) -> int:
    """Deliveries whose sender died mid-send: a failed attempt, then pending (or dead)."""
    lease = timedelta(seconds=settings.WEBHOOK_LEASE_SECONDS)
    released = 0
    with transaction.atomic():
        lost = WebhookDelivery.objects.select_for_update(skip_locked=True).filter(
            status=DeliveryStatus.SENDING, claimed_at__lt=now - lease
        )
        for delivery in lost:
            _failed(delivery, Attempt(False, None, "worker lost mid-send"), now)
            released += 1
    return released


def _claim(now: datetime, batch_size: int, clinic_id: int | None = None) -> list[WebhookDelivery]:
    """The due deliveries: of every production clinic (the wall clock's run leaves sandboxes
    out), or of one sandbox clinic when its test clock is advanced (ADR 0024)."""
    sandboxes = sandbox_clinic_ids() if clinic_id is None else []
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            _CLAIM_SQL,
            {"now": now, "batch": batch_size, "clinic": clinic_id, "sandboxes": sandboxes},
        )
        ids = [row[0] for row in cursor.fetchall()]
        if not ids:
            return []
        for delivery in WebhookDelivery.objects.filter(pk__in=ids):
            delivery.status = DeliveryStatus.SENDING
            delivery.claimed_at = now
            delivery.attempts += 1
            delivery.save(update_fields=["status", "claimed_at", "attempts"])
    order = {pk: n for n, pk in enumerate(ids)}
    claimed = WebhookDelivery.objects.filter(pk__in=ids).select_related(
        "event__enrolment", "subscription"
    )
    return sorted(claimed, key=lambda delivery: order[delivery.pk])


def _failed(delivery: WebhookDelivery, attempt: Attempt, now: datetime) -> None:
    delivery.last_status_code = attempt.status_code
    delivery.last_error = append_error(
        delivery.last_error, f"{now:%Y-%m-%d %H:%M:%S} attempt {delivery.attempts}: {attempt.error}"
    )
    delivery.claimed_at = None
    if delivery.attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
        delivery.status = DeliveryStatus.DEAD
        logger.error(
            "webhook delivery %s dead after %s attempts: %s",
            delivery.pk,
            delivery.attempts,
            attempt.error,
        )
    else:
        delivery.status = DeliveryStatus.PENDING
        delivery.next_attempt_at = now + exponential_backoff(
            delivery.attempts,
            base_seconds=settings.WEBHOOK_RETRY_BASE_SECONDS,
            max_seconds=settings.WEBHOOK_RETRY_MAX_SECONDS,
        )
    delivery.save(
        update_fields=["status", "next_attempt_at", "claimed_at", "last_status_code", "last_error"]
    )


def _record(delivery_id: int, attempt: Attempt) -> None:
    now = clock.now()
    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery_id)
        if delivery.status != DeliveryStatus.SENDING:  # released by the lease meanwhile
            return
        if attempt.delivered:
            delivery.status = DeliveryStatus.DELIVERED
            delivery.delivered_at = now
            delivery.claimed_at = None
            delivery.last_status_code = attempt.status_code
            delivery.save(
                update_fields=["status", "delivered_at", "claimed_at", "last_status_code"]
            )
        else:
            _failed(delivery, attempt, now)


def webhooks_send(
    *, batch_size: int | None = None, max_batches: int = 20, clinic_id: int | None = None
) -> int:
    """Send what is due, batch after batch, until nothing is; the number delivered (of one
    sandbox clinic when its test clock is advanced: `clinic_id`)."""
    size = batch_size or settings.WEBHOOK_BATCH_SIZE
    delivered = 0
    _release_lost(clock.now())
    for _ in range(max_batches):
        claimed = _claim(clock.now(), size, clinic_id)
        if not claimed:
            break
        for delivery in claimed:
            # Signed at the machine's time, even when a sandbox's test clock runs the send:
            # the receiver checks `webhook-timestamp` against its own clock (replay
            # protection); the event's own time is the body's `timestamp`.
            body, headers = signed_request(
                secret=delivery.subscription.secret, event=delivery.event, at=clock.wall_now()
            )
            attempt = _post(delivery.subscription.url, body, headers)
            _record(delivery.pk, attempt)
            delivered += attempt.delivered
    return delivered
