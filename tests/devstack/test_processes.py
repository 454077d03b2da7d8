"""The demo's process runner: a signal, or a process that is not restarted ending, stops every
process group; a process named for restarting comes back with backoff."""

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest

from carehub.devstack.runner import RestartPolicy, run_processes
from carehub.devstack.services import REPO_ROOT

SLEEPER = [sys.executable, "-c", "import time; print('ready', flush=True); time.sleep(60)"]
# A shell with a background grandchild: stopping must take the whole process group.
FAMILY = ["sh", "-c", "sleep 60 & echo ready; wait"]
STUBBORN = [
    sys.executable,
    "-c",
    "import signal, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ready', flush=True)\n"
    "time.sleep(60)\n",
]
HARNESS = """
import json, os, sys
from carehub.devstack.runner import RestartPolicy, run_processes
sys.exit(run_processes(json.loads(sys.argv[1]), os.environ))
"""


def alive(pids: list[int]) -> list[int]:
    result = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                result.append(pid)
        except psutil.NoSuchProcess:
            continue
    return result


@contextmanager
def harness(processes: dict[str, list[str]]) -> Iterator[subprocess.Popen[str]]:
    """run_processes in a process of its own, started once every child printed `ready`."""
    runner = subprocess.Popen(
        [sys.executable, "-c", HARNESS, json.dumps(processes)],
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert runner.stdout is not None
        ready = 0
        while ready < len(processes):
            line = runner.stdout.readline()
            assert line, "runner ended early"
            ready += line.rstrip().endswith("| ready")
        yield runner
    finally:
        for pid in alive([runner.pid, *descendants(runner.pid)]):
            os.kill(pid, signal.SIGKILL)
        runner.wait()


def descendants(pid: int) -> list[int]:
    try:
        return [child.pid for child in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while alive(pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive(pids)


def test_when_one_process_ends_the_others_are_stopped(capsys: pytest.CaptureFixture[str]) -> None:
    quitter = [sys.executable, "-c", "import sys, time; time.sleep(0.5); sys.exit(4)"]
    started = time.monotonic()
    status = run_processes({"quitter": quitter, "sleeper": SLEEPER}, os.environ)
    assert status == 4
    assert time.monotonic() - started < 8
    out = capsys.readouterr().out
    assert "quitter exited with status 4, stopping" in out
    assert "sleeper stopped (by SIGTERM)" in out


def test_sigint_stops_every_process_group() -> None:
    with harness({"family": FAMILY, "sleeper": SLEEPER}) as runner:
        family = [runner.pid, *descendants(runner.pid)]
        assert len(family) >= 4  # runner, sh, its sleep, python
        runner.send_signal(signal.SIGINT)
        assert runner.wait(timeout=10) == 128 + signal.SIGINT
        assert wait_gone(family, timeout=5) == []


def test_a_second_signal_kills_what_ignores_sigterm() -> None:
    with harness({"stubborn": STUBBORN}) as runner:
        family = [runner.pid, *descendants(runner.pid)]
        runner.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert runner.poll() is None  # still waiting for the stubborn one
        runner.send_signal(signal.SIGINT)
        assert runner.wait(timeout=5) == 128 + signal.SIGTERM
        assert wait_gone(family, timeout=5) == []


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.15])
def test_an_early_ctrl_c_leaves_nothing_behind(delay: float) -> None:
    runner = subprocess.Popen(
        [sys.executable, "-c", HARNESS, json.dumps({"a": SLEEPER, "b": FAMILY})],
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    # Wait until run_processes has started a child, then interrupt after `delay`.
    deadline = time.monotonic() + 10
    while not (seen := set(descendants(runner.pid))) and time.monotonic() < deadline:
        time.sleep(0.002)
    time.sleep(delay)
    seen.update(descendants(runner.pid))
    runner.send_signal(signal.SIGINT)
    try:
        status = runner.wait(timeout=10)
    finally:
        leftovers = wait_gone(sorted(seen), timeout=5)
        for pid in leftovers:
            os.kill(pid, signal.SIGKILL)
    assert seen
    assert status == 128 + signal.SIGINT
    assert leftovers == []


# Dies with status 3 on its first two starts (counted in a file), then stays up.
def flaky(counter: Path) -> list[str]:
    return [
        sys.executable,
        "-c",
        "import pathlib, sys, time\n"
        f"counter = pathlib.Path({str(counter)!r})\n"
        "starts = len(counter.read_text()) if counter.exists() else 0\n"
        "counter.write_text('x' * (starts + 1))\n"
        "if starts < 2:\n"
        "    sys.exit(3)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n",
    ]


RESTART_HARNESS = """
import json, os, sys
from carehub.devstack.runner import RestartPolicy, run_processes
policy = RestartPolicy(first_delay=0.3, max_delay=1.0, stable_after=30, give_up_after=5)
sys.exit(run_processes(json.loads(sys.argv[1]), os.environ, restart=["worker"], policy=policy))
"""


def test_a_dead_process_is_restarted_with_backoff_and_the_others_keep_running(
    tmp_path: Path,
) -> None:
    processes = {"worker": flaky(tmp_path / "starts"), "web": SLEEPER}
    runner = subprocess.Popen(
        [sys.executable, "-c", RESTART_HARNESS, json.dumps(processes)],
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    try:
        assert runner.stdout is not None
        while not any(line.endswith("worker | ready") for line in lines):
            line = runner.stdout.readline()
            assert line, "runner ended early:\n" + "".join(lines)
            lines.append(line.rstrip())
        assert runner.poll() is None
        os.killpg(runner.pid, signal.SIGINT)
        assert runner.wait(timeout=15) == 128 + signal.SIGINT
    finally:
        for pid in alive([runner.pid, *descendants(runner.pid)]):
            os.kill(pid, signal.SIGKILL)
        runner.wait()
    text = "\n".join(lines)
    assert "worker exited (status 3); restarting in 0.3 s" in text
    assert "worker exited (status 3); restarting in 0.6 s" in text  # backing off
    assert text.count("worker started") == 3
    assert text.count("web started") == 1  # never stopped nor restarted meanwhile
    assert "web exited" not in text
    assert "stopping" not in text.split("worker | ready")[0]
    assert (tmp_path / "starts").read_text() == "xxx"


def test_a_process_that_keeps_dying_at_start_ends_the_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    policy = RestartPolicy(first_delay=0.05, max_delay=0.1, stable_after=30, give_up_after=3)
    dies = [sys.executable, "-c", "import sys; sys.exit(2)"]
    status = run_processes(
        {"worker": dies, "web": SLEEPER}, os.environ, restart=["worker"], policy=policy
    )
    assert status == 2
    out = capsys.readouterr().out
    assert out.count("worker started") == 3
    assert "worker exited (status 2) 3 times in a row soon after starting; giving up" in out
    assert "web stopped (by SIGTERM)" in out
