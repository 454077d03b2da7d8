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
- `messages_send` (the task body, a batch of up to MESSAGING_SEND_BATCH_SIZE ids): claims the
  rows, counting each attempt in one committed transaction, applies the policy, renders, sends
  each through its channel with the message's idempotency key outside any transaction, then
  marks each sent on its own. Failures back off on the row (`not_before`), and end dead after
  MESSAGING_MAX_ATTEMPTS.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, QuerySet

from carehub.clinics.clock import clinic_time, exclude_sandboxes
from carehub.core import clock
from carehub.core.models import Urgency
from carehub.core.publish import publish_ids, queued_tasks, task_named
from carehub.core.retry import (
    append_error,
    describe_error,
    exponential_backoff,
    is_transient_database_error,
)
from carehub.integrations.models import ChangeType
from carehub.integrations.services import change_record
from carehub.messaging.channels import PermanentDeliveryError, deliver, expects_reports
from carehub.messaging.models import (
    DUE_STATUSES,
    ContactPreference,
    DeliveryEvent,
    Message,
    MessageStatus,
    Purpose,
    StaffNotificationPreference,
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
from carehub.messaging.provider_reports import provider_reports_apply
from carehub.messaging.registry import preload, render_many, suppression_reason
from carehub.patients.models import Patient

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


# carehub.messaging.tasks.messages_send_task, published by name (that module imports this one).
MESSAGES_SEND = "carehub.messaging.send_many"


def publish_after_commit(message_ids: list[int], *, recovered: bool = False) -> None:
    """After commit, one send task per MESSAGING_SEND_BATCH_SIZE ids, all over one producer. A
    publish that fails (the broker is down or restarting) leaves the rows queued and marks them
    for the sweeper's next run, instead of waiting MESSAGING_REQUEUE_AFTER_SECONDS.

    `recovered`: work a fault interrupted (claims released by their batch, claims whose lease
    expired) goes out at MESSAGING_RECOVERY_PRIORITY, ahead of the queue's backlog (published at
    CELERY_TASK_DEFAULT_PRIORITY): it has waited its turn once already."""
    if not message_ids:
        return
    ids = list(message_ids)
    priority = int(settings.MESSAGING_RECOVERY_PRIORITY) if recovered else None
    transaction.on_commit(lambda: _publish_or_mark_lost(ids, priority), robust=True)


def _publish_or_mark_lost(ids: list[int], priority: int | None = None) -> None:
    try:
        publish_ids(
            task_named(MESSAGES_SEND),
            ids,
            per_task=int(settings.MESSAGING_SEND_BATCH_SIZE),
            priority=priority,
        )
    except Exception as exc:
        logger.warning(
            "publishing %s message id(s) failed (%s); the sweeper publishes them again",
            len(ids),
            describe_error(exc),
        )
        requeue = timedelta(seconds=settings.MESSAGING_REQUEUE_AFTER_SECONDS)
        # Queued "long ago": the next sweep takes them (the rows stay queued either way).
        Message.objects.filter(pk__in=ids, status=MessageStatus.QUEUED).update(
            claimed_at=F("claimed_at") - requeue
        )


def _event(
    message: Message, status: str, reason: str, *, at: datetime, related_id: int | None = None
) -> DeliveryEvent:
    """An unsaved delivery event (batches write theirs with one bulk insert)."""
    return DeliveryEvent(
        message=message,
        at=at,
        status=status,
        reason=reason[:1000],
        attempt=message.attempts,
        related_message_id=related_id,
    )


def event(
    message: Message, status: str, reason: str, *, at: datetime, related_id: int | None = None
) -> DeliveryEvent:
    record = _event(message, status, reason, at=at, related_id=related_id)
    record.save()
    return record


def max_attempts() -> int:
    return int(settings.MESSAGING_MAX_ATTEMPTS)


def backoff(attempt: int) -> timedelta:
    return exponential_backoff(
        attempt,
        base_seconds=settings.MESSAGING_RETRY_BASE_SECONDS,
        max_seconds=settings.MESSAGING_RETRY_MAX_SECONDS,
    )


def retry_delay(attempt: int, error: BaseException) -> timedelta:
    """The backoff, or longer when the provider asked to wait (Retry-After, honoured up to
    MESSAGING_RETRY_AFTER_MAX_SECONDS)."""
    delay = backoff(attempt)
    wait = getattr(error, "retry_after", None)
    if wait:
        wait = min(float(wait), float(settings.MESSAGING_RETRY_AFTER_MAX_SECONDS))
        delay = max(delay, timedelta(seconds=wait))
    return delay


# --- dispatcher and sweeper ---------------------------------------------------------------------


def due_messages_query(
    now: datetime, batch_size: int, *, clinic_id: int | None = None
) -> QuerySet[Message]:
    """The claim: the oldest due rows nobody else holds (partial index `message_due`). The wall
    clock's dispatcher leaves sandbox clinics out; an advance of a sandbox's test clock takes
    that clinic's alone (`clinic_id`, ADR 0024)."""
    messages = Message.objects.select_for_update(skip_locked=True)
    if clinic_id is None:
        messages = messages.filter(exclude_sandboxes("clinic_id"))
    else:
        messages = messages.filter(clinic_id=clinic_id)
    return messages.filter(status__in=DUE_STATUSES, not_before__lte=now).order_by("not_before")[
        :batch_size
    ]


def _mark_queued(at: datetime, events: list[tuple[int, int, str]]) -> None:
    """Mark the messages queued (claimed at `at`), each with its delivery event: (message id,
    attempt, reason)."""
    Message.objects.filter(pk__in=[pk for pk, _, _ in events]).update(
        status=MessageStatus.QUEUED, claimed_at=at, updated_at=at
    )
    DeliveryEvent.objects.bulk_create(
        DeliveryEvent(
            message_id=pk, at=at, status=MessageStatus.QUEUED, attempt=attempt, reason=reason
        )
        for pk, attempt, reason in events
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
                _mark_queued(
                    at,
                    [
                        (
                            pk,
                            0,
                            f"Queued by the dispatcher: {status}, due "
                            f"{not_before:%Y-%m-%d %H:%M:%S} UTC",
                        )
                        for pk, status, not_before in rows
                    ],
                )
                publish_after_commit(ids)
        total += len(ids)
        if len(ids) < size:
            break
    if total:
        logger.info("messaging dispatcher queued %s message(s)", total)
    return total


def messages_sweep(*, now: datetime | None = None, limit: int = 500) -> int:
    """Republish queued rows nobody started within MESSAGING_REQUEUE_AFTER_SECONDS and sending
    rows whose lease (MESSAGING_LEASE_SECONDS) was not renewed, i.e. whose worker stopped (a live
    send task renews the lease of its batch every third of it); returns how many."""
    now = now or clock.now()
    requeue = timedelta(seconds=settings.MESSAGING_REQUEUE_AFTER_SECONDS)
    if _broker_carries_queued():
        # Behind a backlog the broker still holds, a row queued a minute ago is waiting its
        # turn: publishing it again would only lengthen the backlog. Past the longer wait,
        # it goes again all the same (a lost publish among tasks that are not).
        requeue = timedelta(seconds=settings.MESSAGING_REQUEUE_BEHIND_BACKLOG_SECONDS)
    lease = timedelta(seconds=settings.MESSAGING_LEASE_SECONDS)
    with transaction.atomic(durable=True):
        # Stranded claims first: behind a long backlog, queued rows are mostly just waiting
        # their turn, while a claim whose lease expired is certainly lost.
        rows: list[tuple[int, str, int, datetime | None]] = []
        for status, older_than in (
            (MessageStatus.SENDING, now - lease),
            (MessageStatus.QUEUED, now - requeue),
        ):
            rows += list(
                Message.objects.select_for_update(skip_locked=True)
                .filter(status=status, claimed_at__lte=older_than)
                .order_by("claimed_at")
                .values_list("pk", "status", "attempts", "claimed_at")[: limit - len(rows)]
            )
            if len(rows) >= limit:
                break
        ids = [pk for pk, _, _, _ in rows]
        started = _server_started() if any(r[1] == MessageStatus.SENDING for r in rows) else None
        if ids:
            # Queued again, and not swept again before another period.
            _mark_queued(
                now,
                [
                    (
                        pk,
                        attempts,
                        f"Published again: queued for over {requeue.seconds} s and not started "
                        "(publish or broker message lost)"
                        if status == MessageStatus.QUEUED
                        else _lease_reason(attempts, claimed_at, started, lease),
                    )
                    for pk, status, attempts, claimed_at in rows
                ],
            )
            # Expired claims are certainly stranded: ahead of the backlog. Queued rows are
            # mostly waiting their turn in a long backlog (their first task is still there):
            # at the end of it, not ahead of rows that waited as long.
            claims = {pk for pk, status, _, _ in rows if status == MessageStatus.SENDING}
            publish_after_commit([pk for pk in ids if pk in claims], recovered=True)
            publish_after_commit([pk for pk in ids if pk not in claims])
    if ids:
        logger.warning("messaging sweep republished %s message(s)", len(ids))
    return len(ids)


def _broker_carries_queued() -> bool:
    """The send queue holds enough tasks to carry every queued row (a task carries at most
    MESSAGING_SEND_BATCH_SIZE ids). Fewer proves that publishes were lost (a broker restarted
    without its data); an empty queue, or a broker that does not answer, leaves the sweeper's
    usual wait."""
    waiting = queued_tasks(task_named(MESSAGES_SEND))
    if not waiting:
        return False
    queued = Message.objects.filter(status=MessageStatus.QUEUED).count()
    return waiting * int(settings.MESSAGING_SEND_BATCH_SIZE) >= queued


def _server_started() -> datetime | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_postmaster_start_time()")
        row = cursor.fetchone()
    return row[0] if row else None


def _lease_reason(
    attempts: int, claimed_at: datetime | None, started: datetime | None, lease: timedelta
) -> str:
    """Why a claim's lease expired: a PostgreSQL restart when the server started after the claim
    was last renewed (its worker could not renew it), else its worker stopped. (A server start
    after our clock's now means the clocks disagree: no conclusion.)"""
    head = (
        f"Published again: its lease was not renewed for {lease.seconds} s during attempt "
        f"{attempts}/{max_attempts()}"
    )
    if started is not None and claimed_at is not None and claimed_at < started <= clock.now():
        return (
            f"{head} (PostgreSQL restarted at {started:%Y-%m-%d %H:%M:%S} UTC: the database was "
            "unavailable to its worker)"
        )
    return f"{head} (the worker stopped: killed, or cut off from the database or the broker)"


# --- the policy, with the facts it needs --------------------------------------------------------


def _budgeted(message: Message) -> bool:
    return (
        message.to_patient
        and message.urgency == Urgency.ROUTINE
        and message.purpose not in CRISIS_PURPOSES
    )


@dataclass
class PolicyFacts:
    """What the policy needs for a batch of messages, read in a constant number of queries.

    Budget decisions for one patient are serialised on their preference row (locked here, in
    patient order, so two workers never deadlock), so two workers cannot both take the last slot
    of a day; the day's counts are read after those locks are held, and messages of the batch
    sent meanwhile are counted as they are decided."""

    patient_prefs: dict[int, ContactPreference]
    staff_prefs: dict[int, StaffNotificationPreference]
    sent_today: dict[int, int]

    @classmethod
    def load(cls, messages: Sequence[Message], now: datetime) -> PolicyFacts:
        to_patients = [m for m in messages if m.to_patient and m.patient_id is not None]
        patient_ids = sorted({m.patient_id for m in to_patients if m.patient_id is not None})
        prefs: dict[int, ContactPreference] = {}
        if patient_ids:
            prefs = _locked_preferences(patient_ids)
            missing = sorted(
                {m.patient_id for m in to_patients if _budgeted(m) and m.patient_id is not None}
                - prefs.keys()
            )
            if missing:  # a patient without a preference row yet: create it, then lock it
                ContactPreference.objects.bulk_create(
                    [ContactPreference(patient_id=pk) for pk in missing], ignore_conflicts=True
                )
                prefs |= _locked_preferences(missing)
        staff_ids = {m.to_staff_id for m in messages if not m.to_patient and m.to_staff_id}
        staff_prefs = {
            pref.staff_id: pref
            for pref in StaffNotificationPreference.objects.filter(staff_id__in=staff_ids)
        }
        budgeted = {
            m.patient_id: m.patient
            for m in to_patients
            if _budgeted(m) and m.patient_id is not None and m.patient is not None
        }
        return cls(
            patient_prefs=prefs,
            staff_prefs=staff_prefs,
            sent_today=_sent_today(budgeted, [m.pk for m in messages], now),
        )


def _locked_preferences(patient_ids: list[int]) -> dict[int, ContactPreference]:
    rows = ContactPreference.objects.select_for_update().filter(patient_id__in=patient_ids)
    return {pref.patient_id: pref for pref in rows.order_by("patient_id")}


def _sent_today(patients: dict[int, Patient], exclude: list[int], now: datetime) -> dict[int, int]:
    """Per patient: their messages sent, or being sent, during their local day (outside this
    batch), in one query (each patient's day has its own bounds, from their time zone)."""
    bounds = [
        (pk, *local_day_bounds(now, ZoneInfo(patient.time_zone)))
        for pk, patient in patients.items()
    ]
    if not bounds:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT day.patient_id, count(m.id)
            FROM unnest(%s::bigint[], %s::timestamptz[], %s::timestamptz[])
                 AS day(patient_id, starts, ends)
            LEFT JOIN messaging_message m
              ON m.patient_id = day.patient_id AND m.to_staff_id IS NULL
             AND NOT (m.id = ANY(%s::bigint[]))
             AND ((m.status = %s AND m.sent_at >= day.starts AND m.sent_at < day.ends)
                  OR (m.status = %s AND m.claimed_at >= day.starts AND m.claimed_at < day.ends))
            GROUP BY day.patient_id
            """,
            [
                [pk for pk, _, _ in bounds],
                [start for _, start, _ in bounds],
                [end for _, _, end in bounds],
                exclude,
                MessageStatus.SENT,
                MessageStatus.SENDING,
            ],
        )
        return {int(pk): int(count) for pk, count in cursor.fetchall()}


def _decide(message: Message, now: datetime, facts: PolicyFacts) -> Decision:
    suppressed = suppression_reason(message)
    if not message.to_patient:
        assert message.to_staff is not None
        staff_pref = facts.staff_prefs.get(message.to_staff_id or 0) or (
            StaffNotificationPreference()  # the defaults: no digest, in-app
        )
        staff_contact = StaffContact(
            daily_digest=staff_pref.daily_digest,
            digest_hour=staff_pref.digest_hour,
            channel=staff_pref.channel,
            email=message.to_staff.email,
        )
        return decide_for_staff(
            purpose=message.purpose,
            urgency=message.urgency,
            contact=staff_contact,
            suppressed_because=suppressed,
        )
    patient = message.patient
    assert patient is not None
    if suppressed is None and not patient.active:
        suppressed = "The patient is inactive (deactivated): nothing more is sent to them."
    pref = facts.patient_prefs.get(patient.pk) or ContactPreference()
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
    return decide_for_patient(
        purpose=message.purpose,
        urgency=message.urgency,
        contact=contact,
        now=now,
        suppressed_because=suppressed,
        sent_today=lambda: facts.sent_today.get(patient.pk, 0),
        pinned_channel=message.channel if message.attempts else "",
    )


# --- sending ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    message: Message
    channel: str
    attempt: int


def _claimable(message: Message, now: datetime, lease: timedelta) -> bool:
    if message.status in NOT_CLAIMABLE:
        return False
    if (
        message.status == MessageStatus.SENDING
        and message.claimed_at is not None
        and message.claimed_at > now - lease
    ):
        logger.info("message %s not claimed: another worker holds its lease", message.pk)
        return False
    # A due row that is not due yet: the dispatcher queues it when it is.
    return not (message.status in DUE_STATUSES and message.not_before > now)


CLAIM_FIELDS = ["attempts", "status", "claimed_at", "channel", "not_before", "updated_at"]


def messages_claim(
    *, message_ids: Sequence[int], now: datetime
) -> tuple[list[Claim], dict[int, str]]:
    """Take a batch of messages for sending, or settle each by the policy, in one committed
    transaction and a constant number of queries. Returns the claims and every id's outcome
    ("skipped": missing, held by another worker, not due or already final).

    Each claimed message's attempt is counted in this transaction, before the provider is
    called, so a message whose send kills its worker still ends dead after
    MESSAGING_MAX_ATTEMPTS."""
    lease = timedelta(seconds=settings.MESSAGING_LEASE_SECONDS)
    outcomes: dict[int, str] = dict.fromkeys(message_ids, SKIPPED)
    claims: list[Claim] = []
    with transaction.atomic(durable=True):
        rows = (
            Message.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("patient", "to_staff", "clinic")
            .filter(pk__in=list(outcomes))
            .order_by("pk")
        )
        messages = [message for message in rows if _claimable(message, now, lease)]
        if not messages:
            return claims, outcomes
        preload(messages)
        facts = PolicyFacts.load(messages, now)
        events: list[DeliveryEvent] = []
        for message in messages:
            message.updated_at = now
            if message.attempts >= max_attempts():
                _make_dead(message, now, f"gave up after {message.attempts} attempts", events)
                outcomes[message.pk] = MessageStatus.DEAD
                continue
            decision = _decide(message, now, facts)
            outcomes[message.pk] = decision.outcome
            if decision.outcome != SEND:  # deferred, suppressed, opted out, ...
                message.status = decision.outcome
                message.claimed_at = None
                if decision.not_before is not None:
                    message.not_before = decision.not_before
                events.append(_event(message, decision.outcome, decision.reason, at=now))
                continue
            message.attempts += 1
            message.status = MessageStatus.SENDING
            message.claimed_at = now
            message.channel = decision.channel
            if message.to_patient and message.patient_id is not None:
                counted = facts.sent_today.get(message.patient_id, 0)
                facts.sent_today[message.patient_id] = counted + 1
            events.append(
                _event(
                    message,
                    MessageStatus.SENDING,
                    f"{decision.reason} (attempt {message.attempts}/{max_attempts()})",
                    at=now,
                )
            )
            claims.append(Claim(message, decision.channel, message.attempts))
        _save_claimed(messages)
        DeliveryEvent.objects.bulk_create(events)
    return claims, outcomes


def _save_claimed(messages: list[Message]) -> None:
    """Write the batch's new states with one UPDATE per distinct set of values (usually one for
    the sends, plus one per other outcome); the rows are locked by the caller."""
    groups: dict[tuple[object, ...], list[int]] = {}
    for message in messages:
        values = tuple(getattr(message, field) for field in CLAIM_FIELDS)
        groups.setdefault(values, []).append(message.pk)
    for values, ids in groups.items():
        Message.objects.filter(pk__in=ids).update(**dict(zip(CLAIM_FIELDS, values, strict=True)))


def message_claim(*, message_id: int, now: datetime) -> Claim | str:
    """`messages_claim` for one message: its claim, or its outcome."""
    claims, outcomes = messages_claim(message_ids=[message_id], now=now)
    return claims[0] if claims else outcomes[message_id]


class DeliveryInterrupted(Exception):
    """The database (or the broker) failed while a batch was in flight and did not come back
    within the task's own retries. `unsettled` says what is still to be recorded (JSON-able, ids
    and numbers only: it travels in the retried task's payload)."""

    def __init__(self, cause: BaseException, unsettled: list[dict[str, Any]]) -> None:
        super().__init__(describe_error(cause))
        self.cause = cause
        self.unsettled = unsettled


def renew_every() -> float:
    """How often a send task renews the lease of its unsent claims (a third of the lease)."""
    return float(settings.MESSAGING_LEASE_SECONDS) / 3


class LeaseKeeper:
    """Renews the lease of a batch's unsent claims every `renew_every()` from a thread of its
    own (with a database connection of its own, opened only when a renewal is due), whatever
    the task does meanwhile: rendering, waiting for the provider (a call may last up to the
    provider's timeouts), waiting for a CPU on a loaded machine. So the lease says whether the
    worker's process lives, not how long one call takes, and it can be short: a killed
    worker's claims expire within MESSAGING_LEASE_SECONDS. The thread dies with its process
    (SIGKILL, an OOM kill, the task's hard time limit), never outliving the batch.

    The task still checks before each send (`check`): claims the sweeper took over (a renewal
    found them no longer held) are dropped, and when the last renewal is older than
    `renew_every()` (1.5 times that while the thread runs: it is merely late) the task renews
    itself, as it did before the thread, so no claim is sent on a lease older than that. Inside
    a transaction (tests, eager runs) no thread is started: another connection would not see
    the claims."""

    def __init__(self, claims: Sequence[Claim]) -> None:
        self._lock = threading.Lock()
        # One renewal at a time (the task's own and the thread's would lock the same rows).
        self._renewing = threading.Lock()
        self._held: dict[int, Claim] = {claim.message.pk: claim for claim in claims}
        self._lost: set[int] = set()
        self.renewed = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> LeaseKeeper:
        if self._held and not connection.in_atomic_block:
            self._thread = threading.Thread(
                target=self._run, name="carehub-lease-keeper", daemon=True
            )
            self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        """No more renewals (before the task releases or settles its claims in one transaction,
        which must not wait on the thread's statement)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=renew_every())
            self._thread = None

    def done(self, message_id: int) -> None:
        """The provider answered for this claim: its lease no longer needs renewing."""
        with self._lock:
            self._held.pop(message_id, None)

    def renew(self) -> None:
        with self._renewing:
            with self._lock:
                claims = list(self._held.values())
            held = lease_renew(claims)
            with self._lock:
                for claim in claims:
                    pk = claim.message.pk
                    if pk not in held and pk in self._held:  # not finished meanwhile: taken over
                        self._lost.add(pk)
                        del self._held[pk]
                self.renewed = time.monotonic()

    def check(self, pending: list[Claim]) -> tuple[list[Claim], list[Claim]]:
        """(the claims still held, the claims taken over), renewing first when the lease is
        older than it should be (see the class)."""
        late = renew_every() * (1.5 if self._thread is not None else 1.0)
        if time.monotonic() - self.renewed >= late:
            self.renew()
        with self._lock:
            lost = set(self._lost)
        return (
            [c for c in pending if c.message.pk not in lost],
            [c for c in pending if c.message.pk in lost],
        )

    def _run(self) -> None:
        try:
            while not self._stop.wait(max(0.0, self.renewed + renew_every() - time.monotonic())):
                if time.monotonic() - self.renewed < renew_every():
                    continue  # the task renewed meanwhile
                try:
                    self.renew()
                except Exception as exc:  # the task meets the same database and settles
                    logger.warning("lease renewal failed (%s)", describe_error(exc))
                    _drop_broken_connection()
                    self._stop.wait(1.0)
        finally:
            connection.close()


def messages_send(
    *, message_ids: Sequence[int], unsettled: Sequence[dict[str, Any]] = ()
) -> dict[int, str]:
    """`_messages_send` at the clinic's now: the messages of a sandbox clinic are sent at its
    test clock (ADR 0024), on their own, the others at the wall clock (one query to tell)."""
    if clock.replaying() or not message_ids:
        return _messages_send(message_ids=message_ids, unsettled=unsettled)
    sandboxed: dict[int, list[int]] = {}
    for pk, clinic_id in Message.objects.filter(
        pk__in=list(message_ids), clinic__is_sandbox=True
    ).values_list("pk", "clinic_id"):
        sandboxed.setdefault(clinic_id, []).append(pk)
    if not sandboxed:
        return _messages_send(message_ids=message_ids, unsettled=unsettled)
    inside = {pk for ids in sandboxed.values() for pk in ids}
    outcomes = _messages_send(
        message_ids=[pk for pk in message_ids if pk not in inside], unsettled=unsettled
    )
    for clinic_id, ids in sorted(sandboxed.items()):
        with clinic_time(clinic_id):
            outcomes.update(_messages_send(message_ids=ids))
    return outcomes


def _messages_send(
    *, message_ids: Sequence[int], unsettled: Sequence[dict[str, Any]] = ()
) -> dict[int, str]:
    """Send a batch of messages that are due and that the policy allows; returns each id's
    status afterwards ("skipped" when there was nothing to do). Safe to run any number of
    times, with any overlap between batches.

    The batch is claimed at once; then each claimed message is rendered, sent through its
    channel with its idempotency key outside any transaction, and marked sent (or failed) on
    its own. While it sends, the task renews the lease of its unsent claims every third of
    MESSAGING_LEASE_SECONDS (so a dead worker's claims are taken over within a lease, and a
    claim taken over is never sent by this task). Claimed messages not sent within
    MESSAGING_SEND_BATCH_SECONDS (a slow provider) are released and published again.

    When the database fails mid-batch, the task stops calling the provider, waits for the
    database with backoff, records what the provider accepted and releases the rest at once
    (`settle`), naming the cause; if the database stays down, `DeliveryInterrupted` carries
    what is left to the retried task (`unsettled`)."""
    outcomes: dict[int, str] = {}
    if unsettled:
        outcomes.update(settle(list(unsettled)))
    started = time.monotonic()
    claims, claimed = messages_claim(message_ids=message_ids, now=clock.now())
    outcomes = {**claimed, **outcomes}
    with LeaseKeeper(claims) as keeper:
        _send_claimed(claims, outcomes, keeper, started=started)
    return outcomes


def _send_claimed(
    claims: list[Claim], outcomes: dict[int, str], keeper: LeaseKeeper, *, started: float
) -> None:
    budget = float(settings.MESSAGING_SEND_BATCH_SECONDS)
    texts = render_many([(claim.message, claim.channel) for claim in claims])
    pending = list(claims)
    while pending:
        claim = pending[0]
        message_id = claim.message.pk
        try:
            if time.monotonic() - started > budget:
                keeper.stop()
                released = messages_release(pending, cause=None)
                outcomes.update(dict.fromkeys(released, MessageStatus.QUEUED))
                break
            pending, lost = keeper.check(pending)
            for gone in lost:
                logger.warning("message %s: lease taken over, not sent", gone.message.pk)
                outcomes[gone.message.pk] = SKIPPED
            if not pending:
                break
            claim = pending[0]
            message_id = claim.message.pk
        except Exception as exc:
            if not is_transient_database_error(exc):
                raise
            keeper.stop()
            _interrupted(exc, [_release_entry(c) for c in pending], outcomes)
            break
        pending.pop(0)
        try:
            try:
                text = texts[message_id]
                if isinstance(text, Exception):
                    raise text
                provider_id = deliver(claim.message, claim.channel, text)
            finally:
                keeper.done(message_id)
        except Exception as exc:
            if is_transient_database_error(exc):  # reading for the render or the channel
                keeper.stop()
                _interrupted(exc, [_release_entry(c) for c in (claim, *pending)], outcomes)
                break
            # Only the error's type travels (a provider's message may quote the recipient).
            entry = {
                "kind": "failed",
                "id": message_id,
                "attempt": claim.attempt,
                "error": f"{type(exc).__name__} (recorded after the database came back)",
                "permanent": isinstance(exc, PermanentDeliveryError),
            }
            try:
                outcomes[message_id] = message_failed(
                    message_id=message_id, attempt=claim.attempt, error=exc
                )
            except Exception as db_exc:
                if not is_transient_database_error(db_exc):
                    raise
                keeper.stop()
                _interrupted(db_exc, [entry, *map(_release_entry, pending)], outcomes)
                break
            continue
        entry = {
            "kind": "sent",
            "id": message_id,
            "attempt": claim.attempt,
            "channel": claim.channel,
            "provider_id": provider_id,
            "purpose": claim.message.purpose,
        }
        try:
            outcomes[message_id] = message_mark_sent(
                message_id=message_id,
                attempt=claim.attempt,
                channel=claim.channel,
                provider_id=provider_id,
                purpose=claim.message.purpose,
            )
        except Exception as exc:
            if not is_transient_database_error(exc):
                raise
            keeper.stop()
            _interrupted(exc, [entry, *map(_release_entry, pending)], outcomes)
            break
        if expects_reports(claim.channel):
            _apply_early_reports(provider_id)


def _release_entry(claim: Claim) -> dict[str, Any]:
    return {"kind": "release", "id": claim.message.pk, "attempt": claim.attempt}


def _interrupted(
    exc: BaseException, unsettled: list[dict[str, Any]], outcomes: dict[int, str]
) -> None:
    """The database failed mid-batch: stop sending, wait for it (a few tries with backoff, in
    this task) and settle; if it stays down, hand what is left to the retried task."""
    cause = describe_error(exc)
    logger.warning("send batch interrupted (%s): settling %s", cause, len(unsettled))
    for entry in unsettled:
        entry.setdefault("cause", cause)
    tries = int(settings.MESSAGING_SETTLE_TRIES)
    for attempt in range(1, tries + 1):
        _drop_broken_connection()
        time.sleep(exponential_backoff(attempt, base_seconds=0.5, max_seconds=4).total_seconds())
        try:
            outcomes.update(settle(unsettled))
            return
        except DeliveryInterrupted as again:
            exc = again.cause
    raise DeliveryInterrupted(exc, unsettled)


def _drop_broken_connection() -> None:
    if not connection.in_atomic_block:
        connection.close()


def settle(unsettled: list[dict[str, Any]]) -> dict[int, str]:
    """Record what an interrupted batch left: sends the provider accepted (marked sent), sends
    that failed (counted as failures) and claims not yet sent (released at once, the attempt not
    counted, published again, the event naming the cause). Raises `DeliveryInterrupted` with
    what is still left while the database stays unavailable."""
    outcomes: dict[int, str] = {}
    left = list(unsettled)
    try:
        for entry in list(left):
            if entry["kind"] == "sent":
                outcomes[entry["id"]] = message_mark_sent(
                    message_id=entry["id"],
                    attempt=entry["attempt"],
                    channel=entry["channel"],
                    provider_id=entry["provider_id"],
                    purpose=entry.get("purpose", ""),
                )
                left.remove(entry)
            elif entry["kind"] == "failed":
                outcomes[entry["id"]] = _failed_recorded(entry)
                left.remove(entry)
        releases = [e for e in left if e["kind"] == "release"]
        if releases:
            claims = [(e["id"], e["attempt"]) for e in releases]
            released = _release(claims, _release_reason(releases[0].get("cause", "")))
            outcomes.update(dict.fromkeys(released, MessageStatus.QUEUED))
            outcomes.update({pk: SKIPPED for pk, _ in claims if pk not in released})
            left = [e for e in left if e["kind"] != "release"]
    except Exception as exc:
        if not is_transient_database_error(exc):
            raise
        raise DeliveryInterrupted(exc, left) from exc
    return outcomes


def _failed_recorded(entry: dict[str, Any]) -> str:
    text = entry["error"]
    error: BaseException = (
        PermanentDeliveryError(text) if entry.get("permanent") else ProviderFailure(text)
    )
    return message_failed(message_id=entry["id"], attempt=entry["attempt"], error=error)


class ProviderFailure(Exception):
    """A provider failure recorded after the database came back (its text, as it was)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _release_reason(cause: str) -> str:
    if not cause:
        return (
            "Released unsent: its batch ran out of time (MESSAGING_SEND_BATCH_SECONDS); "
            "queued again"
        )
    return f"Released unsent: the database failed during its batch ({cause}); queued again"


def _apply_early_reports(provider_id: str) -> None:
    """Status reports the provider sent before the message was marked sent (the sweep retries
    what fails here)."""
    try:
        provider_reports_apply(provider_message_id=provider_id)
    except Exception:
        logger.exception("status reports for a provider id not applied yet (the sweep will)")


def message_send(*, message_id: int) -> str:
    """`messages_send` for one message: its status afterwards."""
    return messages_send(message_ids=[message_id])[message_id]


def lease_renew(claims: Sequence[Claim]) -> set[int]:
    """Renew the lease of claims this task still holds (sending, same attempt) in one
    statement; returns their ids (a claim the sweeper took over is not among them)."""
    if not claims:
        return set()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {Message._meta.db_table} AS m SET claimed_at = %s
              FROM unnest(%s::bigint[], %s::int[]) AS c(id, attempt)
             WHERE m.id = c.id AND m.attempts = c.attempt AND m.status = %s
            RETURNING m.id
            """,  # noqa: S608 (table name is ours; values are parameters)
            [
                clock.now(),
                [c.message.pk for c in claims],
                [c.attempt for c in claims],
                MessageStatus.SENDING,
            ],
        )
        return {int(row[0]) for row in cursor.fetchall()}


def messages_release(claims: Sequence[Claim], *, cause: str | None = None) -> list[int]:
    """Give back claims a batch had no time to send: the attempt is not counted, the rows are
    queued again and published after commit. Returns the ids released."""
    return _release([(c.message.pk, c.attempt) for c in claims], _release_reason(cause or ""))


def _release(claims: Sequence[tuple[int, int]], reason: str) -> list[int]:
    now = clock.now()
    attempts = dict(claims)
    with transaction.atomic(durable=True):
        rows = list(
            Message.objects.select_for_update(of=("self",))
            .filter(pk__in=list(attempts), status=MessageStatus.SENDING)
            .order_by("pk")
        )
        released = [m for m in rows if m.attempts == attempts[m.pk]]
        for message in released:
            message.attempts -= 1
            message.status = MessageStatus.QUEUED
            message.claimed_at = now
            message.updated_at = now
        Message.objects.bulk_update(released, ["attempts", "status", "claimed_at", "updated_at"])
        DeliveryEvent.objects.bulk_create(
            _event(message, MessageStatus.QUEUED, reason, at=now) for message in released
        )
        ids = [message.pk for message in released]
        publish_after_commit(ids, recovered=True)
    if ids:
        logger.warning("released %s unsent message(s): %s", len(ids), reason)
    return ids


def message_mark_sent(
    *, message_id: int, attempt: int, channel: str, provider_id: str, purpose: str = ""
) -> str:
    """The provider accepted the message: it is sent, whatever happened to the row meanwhile."""
    now = clock.now()
    reason = f"Sent by {channel} (attempt {attempt}/{max_attempts()}), provider id {provider_id}"
    # A digest also closes the messages it holds, in the same transaction (below).
    if purpose != Purpose.DIGEST and _mark_sent_claimed(
        message_id, attempt, channel, provider_id, reason, now
    ):
        return MessageStatus.SENT
    with transaction.atomic(durable=True):
        message = Message.objects.select_for_update(of=("self",)).get(pk=message_id)
        if message.status == MessageStatus.SENT:
            return SKIPPED
        if message.status != MessageStatus.SENDING or message.attempts != attempt:
            logger.warning(
                "message %s was sent by attempt %s while the row says %s/%s",
                message_id,
                attempt,
                message.status,
                message.attempts,
            )
        message.status = MessageStatus.SENT
        message.sent_at = now
        message.channel = channel
        message.provider_message_id = provider_id[:200]
        message.provider_status = ""
        message.save(
            update_fields=[
                "status",
                "sent_at",
                "channel",
                "provider_message_id",
                "provider_status",
                "updated_at",
            ]
        )
        event(message, MessageStatus.SENT, reason, at=now)
        if message.purpose == Purpose.DIGEST:
            _close_digested(message_id, channel, now)
        return MessageStatus.SENT


def _mark_sent_claimed(
    message_id: int, attempt: int, channel: str, provider_id: str, reason: str, now: datetime
) -> bool:
    """The usual case of `message_mark_sent` in one statement (atomic on its own): the row still
    holds this attempt's claim; it becomes sent and its event is written. False otherwise."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH sent AS (
                UPDATE {Message._meta.db_table}
                   SET status = %(sent)s, sent_at = %(now)s, channel = %(channel)s,
                       provider_message_id = %(provider_id)s, provider_status = '',
                       updated_at = %(now)s
                 WHERE id = %(id)s AND status = %(sending)s AND attempts = %(attempt)s
             RETURNING id
            )
            INSERT INTO {DeliveryEvent._meta.db_table}
                (message_id, at, status, reason, attempt, related_message_id)
            SELECT id, %(now)s, %(sent)s, %(reason)s, %(attempt)s, NULL FROM sent
            RETURNING message_id
            """,  # noqa: S608 (table names are ours; values are parameters)
            {
                "id": message_id,
                "attempt": attempt,
                "channel": channel,
                "now": now,
                "provider_id": provider_id[:200],
                "reason": reason[:1000],
                "sent": MessageStatus.SENT,
                "sending": MessageStatus.SENDING,
            },
        )
        return cursor.fetchone() is not None


def _close_digested(digest_id: int, channel: str, now: datetime) -> None:
    for held in Message.objects.select_for_update().filter(
        digest_id=digest_id, status=MessageStatus.HELD_FOR_DIGEST
    ):
        held.status = MessageStatus.SENT
        held.sent_at = now
        held.channel = channel
        held.save(update_fields=["status", "sent_at", "channel", "updated_at"])
        event(
            held,
            MessageStatus.SENT,
            f"Sent in the daily digest #{digest_id}",
            at=now,
            related_id=digest_id,
        )


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
        message.not_before = now + retry_delay(message.attempts, error)
        message.claimed_at = None
        message.save(
            update_fields=["status", "not_before", "claimed_at", "last_error", "updated_at"]
        )
        event(
            message,
            MessageStatus.RETRY,
            f"Failed (attempt {attempt}/{max_attempts()}): {type(error).__name__}: {error}; "
            f"retry at {message.not_before:%Y-%m-%d %H:%M:%S} UTC",
            at=now,
        )
        logger.warning(
            "message %s failed, attempt %s/%s, retry at %s",
            message_id,
            attempt,
            max_attempts(),
            message.not_before.isoformat(),
        )
        return MessageStatus.RETRY


def _make_dead(message: Message, now: datetime, why: str, events: list[DeliveryEvent]) -> None:
    message.status = MessageStatus.DEAD
    message.claimed_at = None
    events.append(_event(message, MessageStatus.DEAD, f"Dead: {why}", at=now))
    logger.error("message %s (%s) is dead: %s", message.pk, message.purpose, why)
    change_record(
        clinic_id=message.clinic_id,
        patient_id=message.patient_id,
        type=ChangeType.MESSAGE_DEAD,
        subject_id=message.pk,
        data={
            "purpose": message.purpose,
            "channel": message.channel,
            "to_patient": message.to_patient,
        },
        at=now,
    )


def _park_dead(message: Message, now: datetime, why: str) -> None:
    events: list[DeliveryEvent] = []
    _make_dead(message, now, why, events)
    message.save(update_fields=["status", "claimed_at", "updated_at"])
    DeliveryEvent.objects.bulk_create(events)
