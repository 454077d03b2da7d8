"""The dispatcher, the sweeper and the send task body (called directly): claims, leases,
retries with backoff, the dead state, resend, and the guard against long ETAs."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection, connections
from django.utils import timezone

from carehub.core.exceptions import Conflict
from carehub.messaging.delivery import (
    due_messages_query,
    message_claim,
    message_send,
    messages_dispatch_due,
    messages_sweep,
)
from carehub.messaging.models import Message, MessageStatus, RecordedMessage
from carehub.messaging.publish_guard import LongEtaRefused, refuse_long_eta
from carehub.messaging.selectors import message_history
from carehub.messaging.services import PATIENT, message_enqueue, message_resend
from carehub.messaging.tasks import message_send_task
from carehub.patients.models import Patient
from tests.carehub.messaging.conftest import WEEKDAY_AFTERNOON
from tests.carehub.messaging.support import DOWN_GATEWAY
from tests.support.celery_worker import purge_queue
from tests.support.db_roles import analyze

pytestmark = pytest.mark.django_db


def enqueue(patient: Patient, key: str, *, due: datetime | None = None, **kwargs: Any) -> Message:
    return message_enqueue(
        patient=patient, recipient=PATIENT, purpose="appointment_reminder", body="Check-in ready",
        idempotency_key=key, why="test", not_before=due, **kwargs,
    )  # fmt: skip


def make_due(patient: Patient, count: int, *, at: datetime) -> list[int]:
    """Pending rows that became due a minute before `at` (seeded like a burst)."""
    ids = [enqueue(patient, f"due-{n}", due=at + timedelta(hours=1)).pk for n in range(count)]
    Message.objects.filter(pk__in=ids).update(not_before=at - timedelta(minutes=1))
    return ids


@time_machine.travel(WEEKDAY_AFTERNOON, tick=False)
def test_dispatcher_queues_due_rows_only_and_publishes_after_commit(
    patient: Patient, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    now = timezone.now()
    due = make_due(patient, 3, at=now)
    future = enqueue(patient, "future", due=now + timedelta(minutes=5))
    retry = enqueue(patient, "retry", due=now + timedelta(hours=1))
    Message.objects.filter(pk=retry.pk).update(status=MessageStatus.RETRY, not_before=now)
    with django_capture_on_commit_callbacks() as published:
        assert messages_dispatch_due(batch_size=2) == 4  # two batches
    assert len(published) == 2  # one publish after each batch's commit
    queued = Message.objects.filter(status=MessageStatus.QUEUED).values_list("pk", flat=True)
    assert set(queued) == {*due, retry.pk}
    future.refresh_from_db()
    assert future.status == MessageStatus.PENDING
    assert messages_dispatch_due() == 0
    assert message_history(message_id=retry.pk)[-1].reason.startswith(
        "Queued by the dispatcher: retry, due"
    )


def test_the_claim_uses_the_partial_index_not_a_sequential_scan(patient: Patient) -> None:
    sql, params = due_messages_query(timezone.now(), 500).query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # small table: show the usable plan
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "message_due" in plan, plan
    assert "Seq Scan" not in plan, plan


def test_claim_plan_without_hints_on_a_realistic_table(patient: Patient) -> None:
    """With many sent messages and a few due ones, the planner picks the partial index."""
    now = timezone.now()
    Message.objects.bulk_create(
        Message(
            clinic_id=patient.clinic_id, patient=patient, purpose="appointment_reminder", body="x",
            idempotency_key=f"old-{n}", why="history", status=MessageStatus.SENT,
            not_before=now - timedelta(days=n % 400), sent_at=now,
        )
        for n in range(20000)
    )  # fmt: skip
    make_due(patient, 5, at=now)
    with connection.cursor() as cursor:
        analyze("messaging_message")  # as the owner: the application may not
        sql, params = due_messages_query(now, 500).query.sql_with_params()
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "message_due" in plan, plan
    assert "Seq Scan" not in plan, plan


@pytest.mark.django_db(transaction=True)
def test_two_dispatchers_at_once_never_queue_a_message_twice(
    patient: Patient, published_batches: list[list[int]]
) -> None:
    due = make_due(patient, 400, at=timezone.now())
    barrier = threading.Barrier(2)
    counts: list[int] = []
    errors: list[BaseException] = []

    def dispatcher() -> None:
        try:
            barrier.wait()
            counts.append(messages_dispatch_due(batch_size=25))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=dispatcher) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(counts) == 400
    assert all(count > 0 for count in counts), counts  # both took a share
    published = Counter(pk for batch in published_batches for pk in batch)
    assert published == dict.fromkeys(due, 1)  # each published exactly once
    queued_events = Counter(
        event.message_id
        for pk in due
        for event in message_history(message_id=pk)
        if event.reason.startswith("Queued by the dispatcher")
    )
    assert set(queued_events.values()) == {1}


@time_machine.travel(WEEKDAY_AFTERNOON, tick=False)
def test_a_failing_send_backs_off_on_the_row_then_is_dead_and_can_be_resent(
    patient: Patient, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.MESSAGING_SMS_GATEWAY = DOWN_GATEWAY
    message = enqueue(patient, "flaky")
    statuses = []
    for attempt in range(1, settings.MESSAGING_MAX_ATTEMPTS + 1):
        statuses.append(message_send(message_id=message.pk))
        message.refresh_from_db()
        assert message.attempts == attempt
        if message.status == MessageStatus.RETRY:
            assert message.not_before > timezone.now()  # backoff lives on the row
            assert message_send(message_id=message.pk) == "skipped"  # not before its time
            with time_machine.travel(message.not_before, tick=False):
                assert messages_dispatch_due() == 1
    assert statuses == ["retry"] * 4 + ["dead"]
    assert message.last_error.count("provider unavailable") == 5
    reasons = [e.reason for e in message_history(message_id=message.pk)]
    assert "Failed (attempt 2/5): DeliveryError: provider unavailable; retry at" in reasons[5]
    assert reasons[-1] == "Dead: Failed (attempt 5/5): provider unavailable"
    assert not RecordedMessage.objects.exists()

    with pytest.raises(Conflict):
        message_resend(message_id=Message.objects.create(
            clinic_id=patient.clinic_id, patient=patient, purpose="x", body="x",
            idempotency_key="not-dead", why="x", not_before=timezone.now(),
        ).pk)  # fmt: skip
    settings.MESSAGING_SMS_GATEWAY = "carehub.messaging.channels.RecordingSmsGateway"
    message_resend(message_id=message.pk)
    message.refresh_from_db()
    assert (message.status, message.attempts) == (MessageStatus.QUEUED, 0)
    assert message_send(message_id=message.pk) == MessageStatus.SENT
    assert RecordedMessage.objects.get().idempotency_key == "flaky"


def test_backoff_grows_and_is_capped(settings) -> None:  # type: ignore[no-untyped-def]
    from carehub.messaging.delivery import backoff

    settings.MESSAGING_RETRY_BASE_SECONDS = 5
    settings.MESSAGING_RETRY_MAX_SECONDS = 600
    assert timedelta(seconds=2.5) <= backoff(1) <= timedelta(seconds=5)
    assert timedelta(seconds=20) <= backoff(4) <= timedelta(seconds=40)
    assert backoff(30) <= timedelta(seconds=600)


@time_machine.travel(WEEKDAY_AFTERNOON, tick=False)
def test_a_lost_publish_and_a_lost_worker_are_republished_by_the_sweeper(
    patient: Patient, settings, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    purge_queue()  # the broker holds no task: nothing waits its turn
    now = timezone.now()
    lost_publish = enqueue(patient, "lost-publish")  # queued, its publish never happened
    fresh = enqueue(patient, "fresh")
    assert messages_sweep() == 0  # just queued: its publish is still expected
    Message.objects.filter(pk=lost_publish.pk).update(
        claimed_at=now - timedelta(seconds=settings.MESSAGING_REQUEUE_AFTER_SECONDS + 1)
    )
    # What a worker killed mid-send leaves: attempt counted, the provider may have accepted it.
    lost_worker = enqueue(patient, "lost-worker")
    claim = message_claim(message_id=lost_worker.pk, now=now)
    assert not isinstance(claim, str)
    RecordedMessage.objects.create(
        channel="sms", to=patient.phone, body="Check-in ready", idempotency_key="lost-worker",
        at=now,
    )  # fmt: skip
    assert message_send(message_id=lost_worker.pk) == "skipped"  # its lease still holds
    Message.objects.filter(pk=lost_worker.pk).update(
        claimed_at=now - timedelta(seconds=settings.MESSAGING_LEASE_SECONDS + 1)
    )
    with django_capture_on_commit_callbacks() as published:
        assert messages_sweep() == 2
    # After commit: the expired claim (ahead of the backlog), the queued row (behind it).
    assert len(published) == 2
    assert messages_sweep() == 0  # not swept again before another period
    for message in (lost_publish, lost_worker, fresh):
        assert message_send(message_id=message.pk) == MessageStatus.SENT
    lost_worker.refresh_from_db()
    assert lost_worker.attempts == 2
    # The provider got the key twice and delivered it once.
    recorded = RecordedMessage.objects.get(idempotency_key="lost-worker")
    assert recorded.duplicate_requests == 1
    assert RecordedMessage.objects.count() == 3
    assert (
        f"lease was not renewed for {settings.MESSAGING_LEASE_SECONDS} s during attempt 1/5"
        in message_history(message_id=lost_worker.pk)[-3].reason
    )


@time_machine.travel(WEEKDAY_AFTERNOON, tick=False)
def test_rows_waiting_behind_a_backlog_the_broker_holds_are_not_published_again(
    patient: Patient, settings, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    """Queued rows a minute old whose send tasks are still in the broker (a backlog, no worker
    free) are waiting their turn: the sweeper leaves them until the longer wait. When the
    broker lost the tasks (restarted without its data), the usual wait applies."""
    from tests.support.celery_worker import queued

    purge_queue()
    with django_capture_on_commit_callbacks(execute=True):  # published: a task each
        rows = [enqueue(patient, f"backlog-{n}") for n in range(5)]
    assert queued() == 5
    now = timezone.now()
    Message.objects.filter(pk__in=[m.pk for m in rows]).update(
        claimed_at=now - timedelta(seconds=settings.MESSAGING_REQUEUE_AFTER_SECONDS + 1)
    )
    assert messages_sweep() == 0
    Message.objects.filter(pk=rows[0].pk).update(
        claimed_at=now - timedelta(seconds=settings.MESSAGING_REQUEUE_BEHIND_BACKLOG_SECONDS + 1)
    )
    assert messages_sweep() == 1  # past the longer wait, it goes again all the same
    assert message_history(message_id=rows[0].pk)[-1].reason.startswith(
        f"Published again: queued for over {settings.MESSAGING_REQUEUE_BEHIND_BACKLOG_SECONDS} s"
    )
    purge_queue()  # the broker lost its tasks: the rows are certainly stranded
    assert messages_sweep() == 4
    assert messages_sweep() == 0  # not swept again before another period


@time_machine.travel(WEEKDAY_AFTERNOON, tick=False)
def test_a_redelivered_send_task_sends_nothing_twice(patient: Patient) -> None:
    message = enqueue(patient, "once")
    assert [message_send(message_id=message.pk) for _ in range(3)] == ["sent", "skipped", "skipped"]
    assert RecordedMessage.objects.get().duplicate_requests == 0


@time_machine.travel(WEEKDAY_AFTERNOON, tick=False)
def test_a_poison_message_that_kills_its_worker_ends_dead(patient: Patient, settings) -> None:  # type: ignore[no-untyped-def]
    """Each attempt is counted before the provider is called: a send that never returns still
    uses up its attempts, and the sweeper's republish ends dead."""
    purge_queue()
    message = enqueue(patient, "poison")
    for _ in range(settings.MESSAGING_MAX_ATTEMPTS):
        claim = message_claim(message_id=message.pk, now=timezone.now())
        assert not isinstance(claim, str)  # ... and the worker dies here, every time
        Message.objects.filter(pk=message.pk).update(
            claimed_at=timezone.now() - timedelta(seconds=settings.MESSAGING_LEASE_SECONDS + 1)
        )
        assert messages_sweep() == 1
    assert message_send(message_id=message.pk) == MessageStatus.DEAD
    message.refresh_from_db()
    assert (message.status, message.attempts) == (MessageStatus.DEAD, 5)


def test_no_task_is_published_with_an_eta_over_a_minute() -> None:
    purge_queue()
    with pytest.raises(LongEtaRefused, match="ETA"):
        message_send_task.apply_async(args=[1], countdown=61)
    with pytest.raises(LongEtaRefused):
        message_send_task.apply_async(args=[1], eta=datetime.now(UTC) + timedelta(hours=3))
    # The guard itself: a short retry delay passes, and so does no ETA.
    soon = (datetime.now(UTC) + timedelta(seconds=30)).isoformat()
    refuse_long_eta(sender="t", headers={"eta": soon}, body=())
    refuse_long_eta(sender="t", headers={"eta": None}, body=())
    with pytest.raises(LongEtaRefused):
        refuse_long_eta(sender="t", headers={"eta": "2099-01-01T00:00:00"}, body=())
    from tests.support.celery_worker import queued

    assert queued() == 0


@time_machine.travel(WEEKDAY_AFTERNOON, tick=False)
def test_stranded_claims_are_published_ahead_of_the_backlog_and_waiting_rows_behind_it(
    patient: Patient, settings, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    """The priority each republished row's send task carries to the broker: a claim whose lease
    expired, or that its batch released, at MESSAGING_RECOVERY_PRIORITY; a row queued long ago
    (most likely waiting its turn in a long backlog) at the default, like the backlog."""
    from celery.signals import before_task_publish

    from carehub.messaging.delivery import messages_claim, messages_release

    assert settings.MESSAGING_RECOVERY_PRIORITY < settings.CELERY_TASK_DEFAULT_PRIORITY
    now = timezone.now()
    waiting, stranded, released = (enqueue(patient, key) for key in ("waiting", "x", "y"))
    Message.objects.filter(pk=waiting.pk).update(
        claimed_at=now - timedelta(seconds=settings.MESSAGING_REQUEUE_AFTER_SECONDS + 1)
    )
    claims, _ = messages_claim(message_ids=[stranded.pk, released.pk], now=now)
    assert len(claims) == 2
    Message.objects.filter(pk=stranded.pk).update(
        claimed_at=now - timedelta(seconds=settings.MESSAGING_LEASE_SECONDS + 1)
    )
    priorities: dict[int, object] = {}

    def record(sender: str | None = None, body: Any = None, **kwargs: Any) -> None:
        if sender == "carehub.messaging.send_many":
            for pk in body[0][0]:
                priorities[pk] = (kwargs.get("properties") or {}).get("priority")

    purge_queue()
    before_task_publish.connect(record, weak=False)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            assert messages_sweep() == 2
        with django_capture_on_commit_callbacks(execute=True):
            assert messages_release([c for c in claims if c.message.pk == released.pk]) == [
                released.pk
            ]
    finally:
        before_task_publish.disconnect(record)
        purge_queue()
    assert priorities == {
        stranded.pk: settings.MESSAGING_RECOVERY_PRIORITY,
        released.pk: settings.MESSAGING_RECOVERY_PRIORITY,
        waiting.pk: settings.CELERY_TASK_DEFAULT_PRIORITY,
    }
