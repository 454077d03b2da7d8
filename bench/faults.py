"""What the fault scenarios (F1-F4) share: a private Redis that this process and the processes
it starts use, a burst of check-ins run through beat and real workers while faults are injected,
and the exactly-once and recovery figures of that burst.

Recovery is measured per message that was in flight when a fault hit (queued for a worker, or
claimed by one): how long after the recovery (the worker killed: at once, since the other
worker lives; Redis or PostgreSQL back up) it reached the provider. The target (ADR 0016):
everything delivered within 60 s of recovery.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.core import Context, describe
from bench.servers import PrivateRedis, port_base
from bench.workers import start_beat, start_worker, stop, wait_for_workers


def point_celery_at(url: str) -> None:
    """This process publishes to, purges and pings the broker at `url` from now on."""
    from config.celery_app import app

    app.conf.broker_url = url
    app._pool = None
    app.amqp._producer_pool = None


@contextlib.contextmanager
def private_redis(db: int = 0) -> Iterator[PrivateRedis]:
    """A redis-server of our own on BENCH_PRIVATE_PORT_BASE + 1, used by this process and every
    process it starts while the block runs."""
    server = PrivateRedis(port_base() + 1)
    server.start()
    previous = os.environ.get("REDIS_URL", "")
    os.environ["REDIS_URL"] = server.url(db)
    point_celery_at(server.url(db))
    try:
        yield server
    finally:
        os.environ["REDIS_URL"] = previous
        if previous:
            point_celery_at(previous)
        server.remove()


@dataclass
class Stack:
    """Worker processes and beat processes, started and stopped by the scenario."""

    queue: str
    log_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="carehub-f-")))
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    beats: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start_workers(self, names: list[str]) -> None:
        for name in names:
            self.workers[name] = start_worker(name, self.queue, self.log_dir)
        wait_for_workers(names, timeout=90)

    def start_beats(self, count: int = 1) -> None:
        for n in range(count):
            log = self.log_dir / f"beat{n}"
            log.mkdir(exist_ok=True)
            self.beats.append(start_beat(log))

    def kill_worker(self, name: str, *, busy_within: float = 20.0) -> list[int]:
        """SIGKILL the worker and its pool child (no warm shutdown, no acknowledgement) while it
        holds claims: as soon as a send task it runs (Celery's `inspect active`, for up to
        `busy_within` seconds) has claimed some of its messages. Returns the ids it held."""
        from config.celery_app import app

        held: list[int] = []
        deadline = time.monotonic() + busy_within
        while time.monotonic() < deadline and not held:
            replies = app.control.inspect(timeout=0.5).active() or {}
            ids = [
                pk for host, tasks in replies.items() if name in host
                for task in tasks for pk in _task_ids(task)
            ]  # fmt: skip
            if ids:
                held = _sending(ids)
        process = self.workers.pop(name)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        return _sending(held) if held else []

    def stop(self) -> None:
        for process in [*self.beats, *self.workers.values()]:
            stop(process)
        self.beats.clear()
        self.workers.clear()


def _task_ids(task: dict[str, Any]) -> list[int]:
    """The message ids of an active send task, as `inspect active` reports it."""
    kwargs = task.get("kwargs") or {}
    args = task.get("args") or []
    ids = kwargs.get("message_ids") or (args[0] if args else [])
    return [int(pk) for pk in ids] if isinstance(ids, list) else []


def _sending(message_ids: list[int]) -> list[int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM messaging_message WHERE id = ANY(%s) AND status = 'sending'",
            [message_ids],
        )
        return [int(row[0]) for row in cursor.fetchall()]


@contextlib.contextmanager
def stack(queue: str) -> Iterator[Stack]:
    running = Stack(queue)
    try:
        yield running
    finally:
        running.stop()


@dataclass
class FaultLog:
    """When each fault and each recovery happened (seconds since the burst's first due time),
    and the messages in flight when each fault hit."""

    events: list[dict[str, Any]] = field(default_factory=list)
    in_flight: dict[str, list[int]] = field(default_factory=dict)
    stranded: dict[str, list[int]] = field(default_factory=dict)
    recovered_at: dict[str, float] = field(default_factory=dict)
    fault_at: dict[str, float] = field(default_factory=dict)

    def fault(self, name: str, at: float, in_flight: list[int], **detail: Any) -> None:
        self.events.append({"event": name, "at_seconds": round(at, 1), **detail})
        self.in_flight[name] = in_flight
        self.fault_at[name] = at

    def recovered(self, name: str, at: float, **detail: Any) -> None:
        self.events.append({"event": f"{name} recovered", "at_seconds": round(at, 1), **detail})
        self.recovered_at[name] = at


def in_flight_ids(
    checkin_ids: list[int], statuses: tuple[str, ...] = ("queued", "sending")
) -> list[int]:
    """The burst's messages queued for a worker or claimed by one now."""
    from django.db import connection

    keys = [f"checkin:{pk}:request" for pk in checkin_ids]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM messaging_message WHERE idempotency_key = ANY(%s) AND status = ANY(%s)",
            [keys, list(statuses)],
        )
        return [int(row[0]) for row in cursor.fetchall()]


def delivered_at(message_ids: list[int]) -> dict[int, float]:
    """When the provider recorded each of these messages (epoch seconds)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT m.id, extract(epoch FROM r.at) FROM messaging_message m"
            " JOIN messaging_recordedmessage r ON r.idempotency_key = m.idempotency_key"
            " WHERE m.id = ANY(%s)",
            [message_ids],
        )
        return {int(pk): float(at) for pk, at in cursor.fetchall()}


def picked_up_at(message_ids: list[int], since: float) -> dict[int, float]:
    """When each message was first queued again after `since` (epoch seconds): released by
    its batch or published again by the sweeper."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT message_id, extract(epoch FROM min(at)) FROM messaging_deliveryevent"
            " WHERE message_id = ANY(%s) AND status = 'queued' AND at >= to_timestamp(%s)"
            " AND (reason LIKE 'Published again%%' OR reason LIKE 'Released unsent%%')"
            " GROUP BY message_id",
            [message_ids, since],
        )
        return {int(pk): float(at) for pk, at in cursor.fetchall()}


def recovery_figures(log: FaultLog, first_due: datetime) -> dict[str, Any]:
    """Per fault: how many messages were in flight, and how long after the recovery each of
    them was delivered (a message never delivered counts as missing)."""
    figures: dict[str, Any] = {}
    origin = first_due.timestamp()
    for name, ids in log.in_flight.items():
        recovered = log.recovered_at.get(name)
        when = delivered_at(ids) if ids else {}
        after = [max(0.0, at - origin - recovered) for at in when.values() if recovered is not None]
        picked = picked_up_at(ids, origin + (log.fault_at.get(name) or 0.0)) if ids else {}
        figures[name] = {
            "in_flight": len(ids),
            "delivered": len(when),
            "missing": len(ids) - len(when),
            "after_recovery_seconds": describe(after),
            # carehub's own reaction, apart from the wait behind the burst's backlog in the
            # queue: when each was sent, or queued again (released, republished), after the
            # recovery, whichever came first.
            "picked_up_after_recovery_seconds": describe(
                [max(0.0, min(at, picked.get(pk, at)) - origin - recovered)
                 for pk, at in when.items()] if recovered is not None else []
            ),
        }  # fmt: skip
        claimed = log.stranded.get(name)
        if claimed is not None:
            held = delivered_at(claimed) if claimed else {}
            figures[name]["claimed_when_killed"] = {
                "messages": len(claimed),
                "missing": len(claimed) - len(held),
                "delivered_after_seconds": describe(
                    [max(0.0, at - origin - recovered) for at in held.values()]
                    if recovered is not None else []
                ),
                "picked_up_after_seconds": describe(
                    [max(0.0, min(at, picked.get(pk, at)) - origin - recovered)
                     for pk, at in held.items()] if recovered is not None else []
                ),
            }  # fmt: skip
    return figures


def requeued_queue_position(
    message_ids: list[int], checkin_ids: list[int], since: float
) -> dict[str, Any]:
    """Where messages queued again after a fault (released, or published again by the sweeper
    after `since`, epoch seconds) stood in the queue: for each, how many of the burst's other
    messages were still to be delivered when it was queued again (the backlog it met), and how
    many of those reached the provider before it did (the ones it waited behind)."""
    from django.db import connection

    picked = picked_up_at(message_ids, since)
    delivered = delivered_at(list(picked))
    keys = [f"checkin:{pk}:request" for pk in checkin_ids]
    backlog: list[float] = []
    ahead: list[float] = []
    with connection.cursor() as cursor:
        for pk, queued_at in picked.items():
            done = delivered.get(pk)
            if done is None:
                continue
            cursor.execute(
                "SELECT count(*) FILTER (WHERE r.at > to_timestamp(%s)),"
                " count(*) FILTER (WHERE r.at > to_timestamp(%s) AND r.at < to_timestamp(%s))"
                " FROM messaging_message m JOIN messaging_recordedmessage r"
                " ON r.idempotency_key = m.idempotency_key"
                " WHERE m.idempotency_key = ANY(%s) AND NOT (m.id = ANY(%s))",
                [queued_at, queued_at, done, keys, message_ids],
            )
            waiting, before = cursor.fetchone()
            backlog.append(float(waiting))
            ahead.append(float(before))
    return {
        "queued_again": len(picked),
        "backlog_when_queued_again": describe(backlog),
        "delivered_before_it": describe(ahead),
    }


def delivery_events_summary(checkin_ids: list[int]) -> dict[str, int]:
    """How many delivery events of each kind of recovery the burst's messages got."""
    from django.db import connection

    keys = [f"checkin:{pk}:request" for pk in checkin_ids]
    kinds = {
        "released_database": "Released unsent: the database failed%",
        "released_out_of_time": "Released unsent: its batch ran out of time%",
        "republished_queued": "Published again: queued%",
        "republished_lease": "Published again: its lease was not renewed%",
    }
    with connection.cursor() as cursor:
        counts = {}
        for label, pattern in kinds.items():
            cursor.execute(
                "SELECT count(*) FROM messaging_deliveryevent e JOIN messaging_message m"
                " ON m.id = e.message_id WHERE m.idempotency_key = ANY(%s) AND e.reason LIKE %s",
                [keys, pattern],
            )
            counts[label] = int(cursor.fetchone()[0])
    return counts


def run_burst(
    ctx: Context,
    count: int,
    *,
    spread: float,
    timeout: float,
    on_progress: Callable[[int, float, list[int]], None],
    workers: int = 2,
    beats: int = 1,
    prepare: Callable[[], None] | None = None,
) -> tuple[list[int], datetime, list[tuple[float, int]]]:
    """A burst of `count` check-ins through `beats` beat processes and `workers` workers;
    `on_progress(delivered, seconds since first due, checkin ids)` runs every second and may
    inject faults. Returns the check-in ids, the first due time and the progress."""
    from bench import generate
    from bench.scenarios.burst import delivered, insert_checkins, prepare_patients
    from config.celery_app import app

    generate.purge_bench_deliveries()
    generate.push_clinic_schedule()
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge(ctx.env.queue)
    patients = prepare_patients(count)
    if prepare is not None:
        prepare()
    progress: list[tuple[float, int]] = []
    with stack(ctx.env.queue) as running:
        running.start_workers([f"fault{n + 1}" for n in range(workers)])
        running.start_beats(beats)
        ctx.stack = running  # type: ignore[attr-defined]
        first_due = datetime.now(UTC) + timedelta(seconds=10)
        checkins = insert_checkins(patients, first_due=first_due, spread=spread)
        deadline = time.time() + 60 + timeout
        done = 0
        while time.time() < deadline:
            time.sleep(1)
            elapsed = time.time() - first_due.timestamp()
            try:
                done = delivered(checkins)
            except Exception:  # the database is down: keep the clock going
                _reconnect()
                done = progress[-1][1] if progress else 0
            progress.append((round(elapsed, 1), done))
            on_progress(done, elapsed, checkins)
            if done >= len(checkins):
                break
        time.sleep(3)  # anything sent twice would show up now
    return checkins, first_due, progress


def _reconnect() -> None:
    from django.db import connection

    with contextlib.suppress(Exception):
        connection.close()


def exactly_once_target(figures: dict[str, Any]) -> tuple[bool, str]:
    lost = figures["due"] - figures["distinct_keys"]
    twice = figures["recorded"] - figures["distinct_keys"]
    ok = lost == 0 and twice == 0 and figures["messages_sent"] == figures["due"]
    return ok, (
        f"{figures['distinct_keys']:,}/{figures['due']:,} delivered, {lost} lost, {twice} "
        f"delivered twice; provider asked twice (same key) {figures['repeated_requests']}"
    )
