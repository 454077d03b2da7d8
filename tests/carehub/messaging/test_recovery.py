"""Recovery after a fault, with real processes (ADR 0016): a Redis server of our own, real Celery
workers on the test database, a slow provider (the recording gateway taking a while per send, so
that a batch is in flight when the fault hits). This process plays the scheduler (dispatcher and
sweeper, as beat would).

(a) a worker SIGKILLed with a claimed batch: its claims are taken over within the (renewed)
    lease, not after the old 300 s, and every message is delivered once;
(b) a live batch that runs longer than the lease keeps its claims (the task renews them): the
    sweeper takes none over and nothing is sent twice;
(c) the database cut off from the worker mid-batch (its connections terminated, new ones
    refused, for 15 s): the send task is retried rather than acknowledged, what the provider
    accepted is recorded, the rest is released at once with an event naming the database,
    and everything is delivered soon after the database is back, without waiting for the
    sweeper's requeue or a lease.

The database cut is done on the test database only (ALLOW_CONNECTIONS and
pg_terminate_backend of the worker's sessions): the server itself keeps running for everyone.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from carehub.messaging.models import DeliveryEvent, Message, MessageStatus, RecordedMessage
from tests.carehub.messaging.support import SLOW_GATEWAY
from tests.carehub.messaging.test_fault_tolerance import (
    RedisServer,
    clinic,
    due_burst,
    kill_worker,
    own_redis,  # noqa: F401 (a fixture)
    patients,
    report,
    schedule_until,
    sent,
)
from tests.support.celery_worker import start_worker, stop_worker, wait_for_worker, worker_env

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _worker_env(redis_url: str, **extra: str) -> dict[str, str]:
    return {
        **worker_env(),
        "REDIS_URL": redis_url,
        "MESSAGING_SMS_GATEWAY": SLOW_GATEWAY,
        **extra,
    }


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Worker processes a test starts; stopped at the end whatever happened."""
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        stop_worker(process)


def _start(
    started: list[subprocess.Popen[bytes]], name: str, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    process = start_worker(f"{name}{os.getpid()}", env=env)
    started.append(process)
    wait_for_worker(f"{name}{os.getpid()}")
    return process


def _reasons(keys: list[str], prefix: str) -> list[str]:
    return list(
        DeliveryEvent.objects.filter(
            message__idempotency_key__in=keys, reason__startswith=prefix
        ).values_list("reason", flat=True)
    )


def _exactly_once(keys: list[str]) -> int:
    """Every key delivered, each once; returns how many keys the provider was asked twice."""
    assert dict(
        Counter(Message.objects.filter(idempotency_key__in=keys).values_list("status", flat=True))
    ) == {"sent": len(keys)}
    recorded = RecordedMessage.objects.filter(idempotency_key__in=keys)
    assert sorted(recorded.values_list("idempotency_key", flat=True)) == sorted(keys)
    return int(recorded.aggregate(n=Sum("duplicate_requests"))["n"] or 0)


def _delivery_order(keys: list[str]) -> list[str]:
    """The keys in the order the provider received them."""
    return list(
        RecordedMessage.objects.filter(idempotency_key__in=keys)
        .order_by("pk")
        .values_list("idempotency_key", flat=True)
    )


def test_a_recovered_claim_is_delivered_ahead_of_the_backlog(
    own_redis: RedisServer,  # noqa: F811
    started: list[subprocess.Popen[bytes]],
    settings: Any,
) -> None:
    """A claim whose lease expired (its worker died) is published again at the recovery
    priority: a busy worker takes it next, ahead of a backlog queued long before, and it is
    delivered once."""
    from carehub.messaging.delivery import message_claim, messages_dispatch_due, messages_sweep

    settings.MESSAGING_SEND_BATCH_SIZE = 1  # one task per message: the backlog is 30 tasks
    env = _worker_env(own_redis.url, TEST_GATEWAY_DELAY_SECONDS="0.3")
    keys = due_burst(patients(clinic(), 31), "ahead")
    stranded, *backlog = Message.objects.filter(idempotency_key__in=keys).order_by("pk")
    # What a killed worker leaves: a claim (attempt counted) whose lease is no longer renewed.
    claim = message_claim(message_id=stranded.pk, now=timezone.now())
    assert not isinstance(claim, str)
    assert messages_dispatch_due() == len(backlog)  # 30 send tasks at the default priority
    _start(started, "busy", env)
    wait_until_sent = time.monotonic() + 60
    while sent(keys) < 3:  # the worker is busy with the backlog
        assert time.monotonic() < wait_until_sent
        time.sleep(0.1)
    Message.objects.filter(pk=stranded.pk).update(
        claimed_at=timezone.now() - timedelta(seconds=settings.MESSAGING_LEASE_SECONDS + 1)
    )
    assert messages_sweep() == 1
    sent_before = sent(keys)
    schedule_until(lambda: sent(keys) == len(keys), timeout=90)
    order = _delivery_order(keys)
    position = order.index(stranded.idempotency_key)
    # Behind at most the task the worker held when the claim was published again (prefetch 1,
    # acks late), never behind the rest of the backlog.
    assert position <= sent_before + 1, (position, sent_before, len(order))
    assert position < len(keys) - 20
    assert _exactly_once(keys) == 0
    stranded.refresh_from_db()
    assert stranded.attempts == 2  # the killed attempt and the one that sent it
    report(
        f"recovered claim: delivered {position + 1} of {len(keys)} (the backlog's {sent_before} "
        "sent before it was published again)"
    )


def test_a_provider_call_longer_than_the_lease_keeps_its_claims(
    own_redis: RedisServer,  # noqa: F811
    started: list[subprocess.Popen[bytes]],
    settings: Any,
) -> None:
    """A live but slow worker never loses its lease: the lease is renewed from a thread of the
    send task while a provider call lasts longer than the whole lease (before, it was renewed
    only between calls, and the sweeper would have taken the claims over mid-call)."""
    settings.MESSAGING_LEASE_SECONDS = 3  # renewed every second; each call takes 5 s
    env = _worker_env(own_redis.url, TEST_GATEWAY_DELAY_SECONDS="5", MESSAGING_LEASE_SECONDS="3")
    keys = due_burst(patients(clinic(), 3), "slowcall")
    _start(started, "slowcall", env)
    elapsed = schedule_until(lambda: sent(keys) == len(keys), timeout=90)  # sweeping all along
    assert elapsed > 3 * 5
    assert _exactly_once(keys) == 0
    assert _reasons(keys, "Published again") == []
    assert Message.objects.filter(idempotency_key__in=keys).aggregate(n=Sum("attempts"))[
        "n"
    ] == len(keys)
    report(f"slow provider: {len(keys)} calls of 5 s each with a 3 s lease, none taken over")


def test_a_killed_workers_claimed_batch_is_taken_over_within_the_lease(
    own_redis: RedisServer,  # noqa: F811
    started: list[subprocess.Popen[bytes]],
    settings: Any,
) -> None:
    # The defaults: a 15 s lease renewed every 5 s, queued rows requeued after 60 s.
    assert settings.MESSAGING_LEASE_SECONDS == 15
    env = _worker_env(own_redis.url, TEST_GATEWAY_DELAY_SECONDS="0.5")
    keys = due_burst(patients(clinic(), 30), "killed")
    victim = _start(started, "victim", env)
    schedule_until(lambda: sent(keys) >= 3, timeout=60)
    kill_worker(victim)
    killed_at = time.monotonic()
    claimed = Message.objects.filter(idempotency_key__in=keys, status=MessageStatus.SENDING)
    stranded = claimed.count()
    assert stranded > 0  # the killed worker held claims of its batch
    killed_at_clock = timezone.now()
    _start(started, "heir", env)
    elapsed = schedule_until(lambda: sent(keys) == len(keys), timeout=75)
    taken_over = time.monotonic() - killed_at
    repeated = _exactly_once(keys)
    assert repeated <= 1  # only the send cut off mid-call can reach the provider twice
    republished = DeliveryEvent.objects.filter(
        message__idempotency_key__in=keys,
        reason__startswith="Published again: its lease was not renewed for 15 s",
    )
    assert republished.count() >= stranded
    assert all("the worker stopped" in event.reason for event in republished)
    # Within the lease after the kill (this process sweeps every 0.2 s; a little slack for
    # the worker's start), not after the old 30 s or 300 s.
    detected = max((event.at - killed_at_clock).total_seconds() for event in republished)
    assert detected <= settings.MESSAGING_LEASE_SECONDS + 5
    report(
        f"killed worker: {stranded} claimed messages stranded, taken over {detected:.1f} s "
        f"after the kill, all {len(keys)} delivered {taken_over:.1f} s after it "
        f"({elapsed:.1f} s of scheduling), provider asked twice for {repeated}"
    )


def test_a_live_batch_longer_than_the_lease_keeps_its_claims(
    own_redis: RedisServer,  # noqa: F811
    started: list[subprocess.Popen[bytes]],
    settings: Any,
) -> None:
    settings.MESSAGING_LEASE_SECONDS = 6  # renewed every 2 s; the batch takes about 15 s
    env = _worker_env(own_redis.url, TEST_GATEWAY_DELAY_SECONDS="0.5", MESSAGING_LEASE_SECONDS="6")
    keys = due_burst(patients(clinic(), 30), "slow")
    _start(started, "slow", env)
    elapsed = schedule_until(lambda: sent(keys) == len(keys), timeout=90)
    assert elapsed > 12  # longer than two leases
    assert _exactly_once(keys) == 0
    assert _reasons(keys, "Published again") == []
    assert Message.objects.filter(idempotency_key__in=keys).aggregate(n=Sum("attempts"))[
        "n"
    ] == len(keys)
    report(f"slow batch: {len(keys)} sent in {elapsed:.1f} s with a 6 s lease, none taken over")


class DatabaseCut:
    """The test database refuses the worker: its sessions are terminated and new connections
    refused (ALLOW_CONNECTIONS false) until `restore`. This process keeps its own session."""

    def __init__(self) -> None:
        self.name = connection.settings_dict["NAME"]
        self.cut = False

    def _admin(self) -> psycopg.Connection[Any]:
        """A session on the server's maintenance database (a database cannot refuse
        connections while the session changing it is connected to it)."""
        params = connection.get_connection_params()
        params["dbname"] = "postgres"
        return psycopg.connect(**params, autocommit=True)

    def start(self) -> int:
        with self._admin() as admin:
            admin.execute(f'ALTER DATABASE "{self.name}" WITH ALLOW_CONNECTIONS false')
            self.cut = True
            row = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> %s",
                [self.name, connection.connection.info.backend_pid],
            ).fetchone()
            return int(row[0]) if row else 0

    def restore(self) -> None:
        if self.cut:
            with self._admin() as admin:
                admin.execute(f'ALTER DATABASE "{self.name}" WITH ALLOW_CONNECTIONS true')
            self.cut = False


@pytest.fixture
def database_cut() -> Iterator[DatabaseCut]:
    cut = DatabaseCut()
    try:
        yield cut
    finally:
        cut.restore()


@pytest.mark.db_owner  # ALTER DATABASE, ending sessions: the owner's rights
def test_a_database_outage_mid_batch_is_retried_and_released_at_once(
    own_redis: RedisServer,  # noqa: F811
    started: list[subprocess.Popen[bytes]],
    database_cut: DatabaseCut,
    settings: Any,
) -> None:
    # Recovery must not depend on the sweeper: the old lease and requeue delays.
    settings.MESSAGING_LEASE_SECONDS = 300
    settings.MESSAGING_REQUEUE_AFTER_SECONDS = 60
    env = _worker_env(
        own_redis.url, TEST_GATEWAY_DELAY_SECONDS="0.3", MESSAGING_LEASE_SECONDS="300"
    )
    keys = due_burst(patients(clinic(), 40), "outage")
    _start(started, "outage", env)
    schedule_until(lambda: sent(keys) >= 5, timeout=60)
    terminated = database_cut.start()
    assert terminated >= 1  # the worker's session
    time.sleep(15)
    in_flight = Message.objects.filter(
        idempotency_key__in=keys, status=MessageStatus.SENDING
    ).count()
    database_cut.restore()
    recovered_at = time.monotonic()
    schedule_until(lambda: sent(keys) == len(keys), timeout=45)
    after = time.monotonic() - recovered_at
    repeated = _exactly_once(keys)
    assert repeated == 0  # what the provider accepted during the outage was recorded, not resent
    assert in_flight > 0  # the outage hit a batch in flight
    # The released claims say why, and nobody called the worker lost.
    released = _reasons(keys, "Released unsent: the database failed during its batch")
    assert released
    assert all("OperationalError" in reason or "InterfaceError" in reason for reason in released)
    assert _reasons(keys, "Published again") == []
    # Delivered well within a minute of recovery (the sweeper would have taken 60 to 300 s).
    assert after < 45
    report(
        f"database outage of 15 s mid-batch: {in_flight} claims in flight, {len(released)} "
        f"released naming the database, all {len(keys)} delivered {after:.1f} s after recovery, "
        "none twice"
    )


def test_a_lease_that_expired_across_a_database_restart_names_the_restart(
    settings: Any,
) -> None:
    """The sweeper tells a claim stranded by a PostgreSQL restart (the server started after the
    claim was last renewed: its worker could not renew it) from a worker that stopped."""
    from carehub.messaging.delivery import messages_sweep

    keys = due_burst(patients(clinic(), 2), "restart")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_postmaster_start_time()")
        started = cursor.fetchone()[0]
    lease = timedelta(seconds=settings.MESSAGING_LEASE_SECONDS)
    before_restart, after_restart = Message.objects.filter(idempotency_key__in=keys).order_by("pk")
    Message.objects.filter(pk=before_restart.pk).update(
        status=MessageStatus.SENDING, attempts=1, claimed_at=started - timedelta(seconds=1)
    )
    Message.objects.filter(pk=after_restart.pk).update(
        status=MessageStatus.SENDING, attempts=1,
        claimed_at=started + timedelta(seconds=1),
    )  # fmt: skip
    # (The server started over a lease ago: both claims have expired.)
    assert timezone.now() - lease > started + timedelta(seconds=1)
    assert messages_sweep() == 2
    restarted, stopped = (
        DeliveryEvent.objects.filter(message=m, reason__startswith="Published again").get().reason
        for m in (before_restart, after_restart)
    )
    assert "PostgreSQL restarted at" in restarted
    assert "the database was unavailable to its worker" in restarted
    assert "the worker stopped" in stopped


def test_the_sweeper_takes_stranded_claims_before_a_waiting_backlog(settings: Any) -> None:
    """Behind a long backlog, queued rows mostly wait their turn; a claim whose lease expired is
    certainly lost: the sweeper publishes it first, whatever the backlog's age."""
    from carehub.messaging.delivery import messages_sweep
    from tests.support.celery_worker import purge_queue

    purge_queue()  # none of the backlog's tasks is in the broker: all are stranded
    keys = due_burst(patients(clinic(), 6), "order")
    rows = list(Message.objects.filter(idempotency_key__in=keys).order_by("pk"))
    stranded, backlog = rows[0], rows[1:]
    now = timezone.now()
    Message.objects.filter(pk__in=[m.pk for m in backlog]).update(
        status=MessageStatus.QUEUED, claimed_at=now - timedelta(hours=1)
    )
    Message.objects.filter(pk=stranded.pk).update(
        status=MessageStatus.SENDING, attempts=1,
        claimed_at=now - timedelta(seconds=settings.MESSAGING_LEASE_SECONDS + 1),
    )  # fmt: skip
    assert messages_sweep(limit=2) == 2
    swept = set(
        DeliveryEvent.objects.filter(
            message__idempotency_key__in=keys, reason__startswith="Published again"
        ).values_list("message_id", flat=True)
    )
    assert stranded.pk in swept
    assert len(swept) == 2
