"""Smoke test of `python -m carehub.devstack demo`: serves, worker answers, Ctrl-C stops all."""

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
import psycopg
import pytest
import redis
from psycopg import sql

from carehub.devstack.services import APP_ROLE, REPO_ROOT, connect_kwargs, free_port, with_user

pytestmark = pytest.mark.integration

STARTUP_TIMEOUT = 240.0  # a hang guard, not a speed target (the seed replays months of history)
SHUTDOWN_TIMEOUT = 20.0
PING_WORKER = """
import sys
from config.celery_app import app
replies = app.control.ping(timeout=2)
sys.exit(0 if any(name.startswith("demo@") for reply in replies for name in reply) else 1)
"""


def with_path(url: str, last_segment: str) -> str:
    """`url` with the last segment of its path replaced (keeps a socket directory in the path)."""
    parts = urlsplit(url)
    head = parts.path.rsplit("/", 1)[0]
    return parts._replace(path=f"{head}/{last_segment}").geturl()


@pytest.fixture
def scratch_database_url(service_urls: dict[str, str]) -> Iterator[str]:
    name = f"carehub_demo_smoke_{secrets.token_hex(4)}"
    admin = connect_kwargs(service_urls["DATABASE_URL"], dbname="postgres")
    with psycopg.connect(**admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield with_path(service_urls["DATABASE_URL"], name)
    finally:
        with psycopg.connect(**admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def scratch_redis_url(service_urls: dict[str, str]) -> Iterator[str]:
    url = with_path(service_urls["REDIS_URL"], "15")
    yield url
    redis.Redis.from_url(url).flushdb()


def healthz(port: int) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=3) as response:
            return json.load(response) if response.status == 200 else None
    except (OSError, ValueError):
        return None


def worker_answers(env: dict[str, str]) -> bool:
    ping = [sys.executable, "-c", PING_WORKER]
    return subprocess.run(ping, env=env, cwd=REPO_ROOT, capture_output=True).returncode == 0


def wait_until(check: Callable[[], Any], demo: subprocess.Popen[bytes], log: Path) -> Any:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if (result := check()) is not None and result is not False:
            return result
        if demo.poll() is not None:
            pytest.fail(f"demo exited with {demo.returncode}:\n{log.read_text()[-4000:]}")
        time.sleep(1)
    pytest.fail(f"demo not ready after {STARTUP_TIMEOUT:.0f} s:\n{log.read_text()[-4000:]}")


def alive(pids: list[int]) -> list[int]:
    result = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                result.append(pid)
        except psutil.NoSuchProcess:
            continue
    return result


def group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_demo_serves_and_stops_on_ctrl_c(
    tmp_path: Path, scratch_database_url: str, scratch_redis_url: str
) -> None:
    port = free_port()
    env = {
        **os.environ,
        # As in production: the application's role, and the owner that migrates (ADR 0014).
        "DATABASE_URL": with_user(scratch_database_url, APP_ROLE),
        "DATABASE_OWNER_URL": scratch_database_url,
        "REDIS_URL": scratch_redis_url,
        "PORT": str(port),
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)  # the demo picks its own settings
    log = tmp_path / "demo.log"
    command = [sys.executable, "-m", "carehub.devstack", "demo", "--state-dir", str(tmp_path)]
    with log.open("wb") as output:
        demo = subprocess.Popen(
            command,
            env=env,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    family: list[int] = [demo.pid]
    try:
        health = wait_until(lambda: healthz(port), demo, log)
        assert health["database"]["status"] == "ok"
        assert health["broker"]["status"] == "ok"
        ping_env = {**env, "DJANGO_SETTINGS_MODULE": "config.settings.local"}
        wait_until(lambda: worker_answers(ping_env), demo, log)

        # The worker dies: it is started again, and the rest of the demo runs on meanwhile.
        (worker,) = [
            child
            for child in psutil.Process(demo.pid).children()
            if "worker" in child.cmdline() and "beat" not in child.cmdline()
        ]
        family.append(worker.pid)
        worker.kill()
        wait_until(
            lambda: "worker exited (by SIGKILL); restarting in" in log.read_text(), demo, log
        )
        wait_until(lambda: worker_answers(ping_env), demo, log)
        assert demo.poll() is None
        assert healthz(port)["database"]["status"] == "ok"

        family += [child.pid for child in psutil.Process(demo.pid).children(recursive=True)]
        assert len(family) >= 5  # devstack, web, the dead worker, the new one (and pool), beat

        os.killpg(demo.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        try:
            demo.wait(timeout=SHUTDOWN_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"demo still running after SIGINT:\n{log.read_text()[-4000:]}")
        deadline = time.monotonic() + 5
        while alive(family) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert alive(family) == [], log.read_text()[-4000:]
        assert not group_exists(demo.pid)
    finally:
        # A failure before the family was listed must not leave the web server and workers
        # (each in a session of its own) running: list them now.
        with contextlib.suppress(psutil.NoSuchProcess):
            family += [child.pid for child in psutil.Process(demo.pid).children(recursive=True)]
        for pid in alive(family):
            os.kill(pid, signal.SIGKILL)
        demo.wait()
