"""Real Celery worker and beat processes for the delivery scenarios, on the bench's database,
Redis db and queue (inherited from the environment `bench.env.configure` exported)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

from bench.core import ROOT


def _popen(command: list[str], log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("ab")
    return subprocess.Popen(
        command, cwd=ROOT, env=dict(os.environ), stdout=handle, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip


def start_worker(name: str, queue: str, log_dir: Path) -> subprocess.Popen[bytes]:
    """One worker process executing one task at a time (prefork pool of one child)."""
    return _popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--queues", queue,
         "--hostname", f"{name}@%h", "--concurrency", "1", "--pool", "prefork",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "WARNING"],
        log_dir / f"{name}.log",
    )  # fmt: skip


def start_beat(log_dir: Path) -> subprocess.Popen[bytes]:
    """carehub's beat (CELERY_BEAT_SCHEDULE: the check-in sweeps, the dispatcher, ...)."""
    return _popen(
        [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel", "WARNING",
         "--schedule", str(log_dir / "beat-schedule"), "--pidfile", ""],
        log_dir / "beat.log",
    )  # fmt: skip


def wait_for_workers(names: list[str], timeout: float = 60) -> None:
    from config.celery_app import app

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        replies = app.control.ping(timeout=1.0)
        hosts = {host for reply in replies for host in reply}
        if all(any(name in host for host in hosts) for name in names):
            return
    raise RuntimeError(f"workers {names} did not answer within {timeout} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def rss_bytes(process: subprocess.Popen[bytes]) -> int:
    """Resident memory of a worker: its main process and its pool children."""
    try:
        parent = psutil.Process(process.pid)
        return sum(p.memory_info().rss for p in [parent, *parent.children(recursive=True)])
    except psutil.NoSuchProcess:
        return 0


@contextmanager
def delivery_stack(queue: str, workers: int = 2) -> Iterator[list[subprocess.Popen[bytes]]]:
    """`workers` worker processes and one beat; yields the workers."""
    log_dir = Path(tempfile.mkdtemp(prefix="carehub-bench-"))
    names = [f"bench{i + 1}" for i in range(workers)]
    processes = [start_worker(name, queue, log_dir) for name in names]
    beat = None
    try:
        wait_for_workers(names)
        beat = start_beat(log_dir)
        yield processes
    finally:
        if beat is not None:
            stop(beat)
        for process in processes:
            stop(process)
