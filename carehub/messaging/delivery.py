"""Getting messages out: publish after commit, the dispatcher, the sweeper and the send itself.

The state of every message lives on its row; Redis carries ids only, and only for work that is
due now. The pieces:

- `publish_after_commit`: a message due now is published (its id) right after its transaction
  commits. A lost publish is found by the sweeper.
- `messages_dispatch_due` (beat, every MESSAGING_DISPATCH_INTERVAL_SECONDS): claims due rows
  (pending, deferred by quiet hours, waiting to retry) with FOR UPDATE SKIP LOCKED in batches,
  marks them queued and publishes them. Two dispatchers at once never queue a row twice.
- `messages_sweep`: republishes queued rows nobody started (a lost publish or broker message)
  and sending rows whose worker lease expired (a killed worker).
- `message_send` (the task body): claims the row, counting the attempt in its own committed
  transaction, applies the policy, renders, sends through the channel with the message's
  idempotency key outside any transaction, then marks it sent. Failures back off on the row
  (`not_before`), and end dead after MESSAGING_MAX_ATTEMPTS.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet

from carehub.core import clock
from carehub.core.publish import publish_ids_after_commit
from carehub.core.retry import append_error, exponential_backoff
from carehub.messaging.channels import PermanentDeliveryError, deliver
from carehub.messaging.models import (
    DUE_STATUSES,
    ContactPreference,
    DeliveryEvent,
    Message,
    MessageStatus,
    Purpose,
    StaffNotificationPreference,
    Urgency,
)
from carehub.messaging.policy import (
    CRISIS_PURPOSES,
    SEND,
    Decision,
    PatientContact,
    StaffContact,
    decide_for_patient,
    decide_for_staff,
    local_day_bounds,
)
from carehub.messaging.registry import render, suppression_reason

logger = logging.getLogger(__name__)

SKIPPED = "skipped"
# Statuses the send task leaves alone (a dead message comes back only through a resend).
NOT_CLAIMABLE = (
    MessageStatus.SENT,
    MessageStatus.SUPPRESSED,
    MessageStatus.OPTED_OUT,
    MessageStatus.OVER_BUDGET,
    MessageStatus.HELD_FOR_DIGEST,
    MessageStatus.DEAD,
)


# --- publishing ---------------------------------------------------------------------------------


def _send_task() -> Any:
    from carehub.messaging.tasks import message_send_task

    return message_send_task


def publish_after_commit(message_ids: list[int]) -> None:
    """After commit, one send task per id, all over one producer (a lost publish is found by
    the sweeper, which republishes queued rows nobody started)."""
    publish_ids_after_commit(_send_task, message_ids)


def event(
    message: Message,
    status: str,
    reason: str,
    *,
    at: datetime,
    related: Message | None = None,
) -> DeliveryEvent:
    return DeliveryEvent.objects.create(
        message=message, at=at, status=status, reason=reason[:1000], attempt=message.attempts,
        related_message=related,
    )  # fmt: skip


def max_attempts() -> int:
    return int(settings.MESSAGING_MAX_ATTEMPTS)


def backoff(attempt: int) -> timedelta:
    return exponential_backoff(
        attempt,
        base_seconds=settings.MESSAGING_RETRY_BASE_SECONDS,
        max_seconds=settings.MESSAGING_RETRY_MAX_SECONDS,
    )


# --- dispatcher and sweeper ---------------------------------------------------------------------


def due_messages_query(now: datetime, batch_size: int) -> QuerySet[Message]:
    """The claim: the oldest due rows nobody else holds (partial index `message_due`)."""
    return (
        Message.objects.select_for_update(skip_locked=True)
        .filter(status__in=DUE_STATUSES, not_before__lte=now)
        .order_by("not_before")[:batch_size]
    )


def messages_dispatch_due(
    *, now: datetime | None = None, batch_size: int | None = None, max_batches: int = 50
) -> int:
    """Queue and publish every message due by `now`, batch by batch; returns how many."""
    size = batch_size or int(settings.MESSAGING_DISPATCH_BATCH_SIZE)
    total = 0
    for _ in range(max_batches):
        at = now or clock.now()
        with transaction.atomic(durable=True):
            rows = list(due_messages_query(at, size).values_list("pk", "status", "not_before"))
            ids = [pk for pk, _, _ in rows]
            if ids:
                Message.objects.filter(pk__in=ids).update(
                    status=MessageStatus.QUEUED, claimed_at=at, updated_at=at
                )
                DeliveryEvent.objects.bulk_create(
                    DeliveryEvent(
                        message_id=pk, at=at, status=MessageStatus.QUEUED,
                        reason=f"Queued by the dispatcher: {status}, due "
                        f"{not_before:%Y-%m-%d %H:%M:%S} UTC",
                    )
                    for pk, status, not_before in rows
                )  # fmt: skip
                publish_after_commit(ids)
        total += len(ids)
        if len(ids) < size:
            break
    if total:
        logger.info("messaging dispatcher queued %s message(s)", total)
    return total


def messages_sweep(*, now: datetime | None = None, limit: int = 500) -> int:
    """Republish queued rows nobody started within MESSAGING_REQUEUE_AFTER_SECONDS and sending
    rows whose lease (MESSAGING_LEASE_SECONDS) expired; returns how many."""
    now = now or clock.now()
    requeue = timedelta(seconds=settings.MESSAGING_REQUEUE_AFTER_SECONDS)
    lease = timedelta(seconds=settings.MESSAGING_LEASE_SECONDS)
    with transaction.atomic(durable=True):
        rows = list(
            Message.objects.select_for_update(skip_locked=True)
            .filter(
                Q(status=MessageStatus.QUEUED, claimed_at__lte=now - requeue)
                | Q(status=MessageStatus.SENDING, claimed_at__lte=now - lease)
            )
            .order_by("claimed_at")
            .values_list("pk", "status", "attempts")[:limit]
        )
        ids = [pk for pk, _, _ in rows]
        if ids:
            # Queued again, and not swept again before another period.
            Message.objects.filter(pk__in=ids).update(
                status=MessageStatus.QUEUED, claimed_at=now, updated_at=now
            )
            DeliveryEvent.objects.bulk_create(
                DeliveryEvent(
                    message_id=pk, at=now, status=MessageStatus.QUEUED, attempt=attempts,
                    reason=(
                        f"Published again: queued for over {requeue.seconds} s and not started "
                        "(publish or broker message lost)"
                        if status == MessageStatus.QUEUED
                        else f"Published again: the worker's lease expired during attempt "
                        f"{attempts}/{max_attempts()} (worker lost)"
                    ),
                )
                for pk, status, attempts in rows
            )  # fmt: skip
            publish_after_commit(ids)
    if ids:
        logger.warning("messaging sweep republished %s message(s)", len(ids))
    return len(ids)


# --- the policy, with the facts it needs --------------------------------------------------------


def _sent_today(message: Message, now: datetime, tz: ZoneInfo) -> int:
    start, end = local_day_bounds(now, tz)
    return (
        Message.objects.filter(patient_id=message.patient_id, to_staff__isnull=True)
        .filter(
            Q(status=MessageStatus.SENT, sent_at__gte=start, sent_at__lt=end)
            | Q(status=MessageStatus.SENDING, claimed_at__gte=start, claimed_at__lt=end)
        )
        .exclude(pk=message.pk)
        .count()
    )


def _decide(message: Message, now: datetime) -> Decision:
    suppressed = suppression_reason(message)
    if not message.to_patient:
        assert message.to_staff is not None
        staff_pref = (
            StaffNotificationPreference.objects.filter(staff_id=message.to_staff_id).first()
            or StaffNotificationPreference()  # the defaults: no digest, in-app
        )
        staff_contact = StaffContact(
            daily_digest=staff_pref.daily_digest,
            digest_hour=staff_pref.digest_hour,
            channel=staff_pref.channel,
            email=message.to_staff.email,
        )
        return decide_for_staff(
            purpose=message.purpose, urgency=message.urgency, contact=staff_contact,
            suppressed_because=suppressed,
        )  # fmt: skip
    patient = message.patient
    assert patient is not None
    budgeted = message.urgency == Urgency.ROUTINE and message.purpose not in CRISIS_PURPOSES
    if budgeted:
        # Budget decisions for one patient are serialised on their preference row, so two
        # workers cannot both take the last slot of the day.
        pref, _ = ContactPreference.objects.select_for_update().get_or_create(patient=patient)
    else:
        pref = ContactPreference.objects.filter(patient=patient).first() or ContactPreference()
    contact = PatientContact(
        time_zone=patient.time_zone,
        window_start=patient.send_window_start,
        window_end=patient.send_window_end,
        preferred_channel=patient.preferred_channel,
        fallback_channel=patient.fallback_channel,
        phone=patient.phone,
        email=patient.email,
        opted_out=pref.opted_out,
        opted_out_channels=frozenset(
            channel for channel in ("sms", "email", "in_app") if pref.opted_out_of(channel)
        ),
        daily_budget=pref.daily_budget,
    )
    tz = ZoneInfo(patient.time_zone)
    return decide_for_patient(
        purpose=message.purpose, urgency=message.urgency, contact=contact, now=now,
        suppressed_because=suppressed, sent_today=lambda: _sent_today(message, now, tz),
        pinned_channel=message.channel if message.attempts else "",
    )  # fmt: skip


def _settle(message: Message, decision: Decision, now: datetime) -> None:
    """Record an outcome that is not a send (deferred, suppressed, opted out, ...)."""
    message.status = decision.outcome
    message.claimed_at = None
    fields = ["status", "claimed_at", "updated_at"]
    if decision.not_before is not None:
        message.not_before = decision.not_before
        fields.append("not_before")
    message.save(update_fields=fields)
    event(message, decision.outcome, decision.reason, at=now)


# --- sending ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    message: Message
    channel: str
    attempt: int


def message_claim(*, message_id: int, now: datetime) -> Claim | str:
    """Take a message for sending, or settle it by the policy. The attempt is counted in this
    committed transaction before the provider is called, so a message whose send kills its
    worker still ends dead after MESSAGING_MAX_ATTEMPTS."""
    lease = timedelta(seconds=settings.MESSAGING_LEASE_SECONDS)
    with transaction.atomic(durable=True):
        message = (
            Message.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("patient", "to_staff")
            .filter(pk=message_id)
            .first()
        )
        if message is None:
            logger.info("message %s not claimed: missing, or held by another worker", message_id)
            return SKIPPED
        if message.status in NOT_CLAIMABLE:
            return SKIPPED
        if (
            message.status == MessageStatus.SENDING
            and message.claimed_at is not None
            and message.claimed_at > now - lease
        ):
            logger.info("message %s not claimed: another worker holds its lease", message_id)
            return SKIPPED
        if message.status in DUE_STATUSES and message.not_before > now:
            return SKIPPED  # not due yet: the dispatcher queues it when it is
        if message.attempts >= max_attempts():
            _park_dead(message, now, f"gave up after {message.attempts} attempts")
            return MessageStatus.DEAD
        decision = _decide(message, now)
        if decision.outcome != SEND:
            _settle(message, decision, now)
            return decision.outcome
        message.attempts += 1
        message.status = MessageStatus.SENDING
        message.claimed_at = now
        message.channel = decision.channel
        message.save(update_fields=["attempts", "status", "claimed_at", "channel", "updated_at"])
        event(
            message, MessageStatus.SENDING,
            f"{decision.reason} (attempt {message.attempts}/{max_attempts()})", at=now,
        )  # fmt: skip
        return Claim(message=message, channel=decision.channel, attempt=message.attempts)


def message_send(*, message_id: int) -> str:
    """Send one message if it is due and the policy allows; returns its status afterwards
    ("skipped" when there was nothing to do). Safe to run any number of times."""
    claim = message_claim(message_id=message_id, now=clock.now())
    if not isinstance(claim, Claim):
        return str(claim)
    try:
        text = render(claim.message, claim.channel)
        provider_id = deliver(claim.message, claim.channel, text)
    except Exception as exc:
        return message_failed(message_id=message_id, attempt=claim.attempt, error=exc)
    return message_mark_sent(
        message_id=message_id, attempt=claim.attempt, channel=claim.channel,
        provider_id=provider_id,
    )  # fmt: skip


def message_mark_sent(*, message_id: int, attempt: int, channel: str, provider_id: str) -> str:
    """The provider accepted the message: it is sent, whatever happened to the row meanwhile."""
    now = clock.now()
    with transaction.atomic(durable=True):
        message = Message.objects.select_for_update(of=("self",)).get(pk=message_id)
        if message.status == MessageStatus.SENT:
            return SKIPPED
        if message.status != MessageStatus.SENDING or message.attempts != attempt:
            logger.warning(
                "message %s was sent by attempt %s while the row says %s/%s",
                message_id, attempt, message.status, message.attempts,
            )  # fmt: skip
        message.status = MessageStatus.SENT
        message.sent_at = now
        message.channel = channel
        message.provider_message_id = provider_id[:200]
        message.save(
            update_fields=["status", "sent_at", "channel", "provider_message_id", "updated_at"]
        )
        event(
            message, MessageStatus.SENT,
            f"Sent by {channel} (attempt {attempt}/{max_attempts()}), provider id {provider_id}",
            at=now,
        )  # fmt: skip
        if message.purpose == Purpose.DIGEST:
            _close_digested(message, now)
        return MessageStatus.SENT


def _close_digested(digest: Message, now: datetime) -> None:
    for held in Message.objects.select_for_update().filter(
        digest=digest, status=MessageStatus.HELD_FOR_DIGEST
    ):
        held.status = MessageStatus.SENT
        held.sent_at = now
        held.channel = digest.channel
        held.save(update_fields=["status", "sent_at", "channel", "updated_at"])
        event(
            held, MessageStatus.SENT, f"Sent in the daily digest #{digest.pk}", at=now,
            related=digest,
        )  # fmt: skip


def message_failed(*, message_id: int, attempt: int, error: BaseException) -> str:
    now = clock.now()
    line = f"attempt {attempt}/{max_attempts()} failed: {type(error).__name__}: {error}"
    with transaction.atomic(durable=True):
        message = Message.objects.select_for_update(of=("self",)).get(pk=message_id)
        if message.status != MessageStatus.SENDING or message.attempts != attempt:
            return str(message.status)  # the lease expired and another worker took it
        message.last_error = append_error(message.last_error, line)
        if isinstance(error, PermanentDeliveryError) or message.attempts >= max_attempts():
            message.save(update_fields=["last_error", "updated_at"])
            _park_dead(message, now, f"Failed (attempt {attempt}/{max_attempts()}): {error}")
            return MessageStatus.DEAD
        message.status = MessageStatus.RETRY
        message.not_before = now + backoff(message.attempts)
        message.claimed_at = None
        message.save(
            update_fields=["status", "not_before", "claimed_at", "last_error", "updated_at"]
        )
        event(
            message, MessageStatus.RETRY,
            f"Failed (attempt {attempt}/{max_attempts()}): {type(error).__name__}: {error}; "
            f"retry at {message.not_before:%Y-%m-%d %H:%M:%S} UTC",
            at=now,
        )  # fmt: skip
        logger.warning(
            "message %s failed, attempt %s/%s, retry at %s",
            message_id, attempt, max_attempts(), message.not_before.isoformat(),
        )  # fmt: skip
        return MessageStatus.RETRY


def _park_dead(message: Message, now: datetime, why: str) -> None:
    message.status = MessageStatus.DEAD
    message.claimed_at = None
    message.save(update_fields=["status", "claimed_at", "updated_at"])
    event(message, MessageStatus.DEAD, f"Dead: {why}", at=now)
    logger.error("message %s (%s) is dead: %s", message.pk, message.purpose, why)
