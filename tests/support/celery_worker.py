"""Real Celery worker processes for integration tests, on the test database and a queue of its
own, so that nothing else consuming the same Redis (a running demo) takes our tasks."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.db import connection

from config.celery_app import app

ROOT = Path(__file__).resolve().parents[2]


def database_url_for(name: str) -> str:
    """DATABASE_URL as configured, pointing at another database name (the test database)."""
    url = os.environ.get("DATABASE_URL", "postgres://carehub_app@127.0.0.1:5432/carehub")
    return with_database_name(url, name)


def with_database_name(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def worker_env() -> dict[str, str]:
    """A worker's environment: this run's settings, database and queue, named (its queue is not
    suffixed again for the pytest-xdist worker that starts it)."""
    inherited = {k: v for k, v in os.environ.items() if k != "PYTEST_XDIST_WORKER"}
    return {
        **inherited,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url_for(connection.settings_dict["NAME"]),
        "REDIS_URL": settings.CELERY_BROKER_URL,
        "CELERY_QUEUE": settings.CELERY_TASK_DEFAULT_QUEUE,
    }


def start_worker(
    name: str, *, concurrency: int = 1, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "celery", "-A", "config", "worker",
        "--queues", settings.CELERY_TASK_DEFAULT_QUEUE,
        "--hostname", f"{name}@%h", "--concurrency", str(concurrency), "--pool", "prefork",
        "--without-gossip", "--without-mingle", "--loglevel", "INFO",
    ]  # fmt: skip
    return subprocess.Popen(command, cwd=ROOT, env=env or worker_env(), start_new_session=True)


def wait_for_worker(name: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        replies = app.control.ping(timeout=1.0)
        if any(name in host for reply in replies for host in reply):
            return
    raise AssertionError(f"worker {name} did not answer a ping within {timeout} s")


def stop_worker(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()  # warm shutdown: finishes the task in hand
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def queued(queue: str | None = None) -> int:
    """Task messages waiting in the test queue (or `queue`) at the broker, over every priority
    list Redis keeps for it (ADR 0016)."""
    with app.connection_for_write() as conn:
        return int(conn.default_channel._size(queue or settings.CELERY_TASK_DEFAULT_QUEUE))


def purge_queue() -> None:
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge(settings.CELERY_TASK_DEFAULT_QUEUE)


@contextmanager
def running_worker(name: str, **kwargs: object) -> Iterator[subprocess.Popen[bytes]]:
    process = start_worker(name, **kwargs)  # type: ignore[arg-type]
    try:
        wait_for_worker(name)
        yield process
    finally:
        stop_worker(process)


def wait_until(predicate, timeout: float = 60, interval: float = 0.2) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")
