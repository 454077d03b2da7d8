import os
import pty
import select
import signal
import subprocess
import sys
import time

from carehub.devstack.services import REPO_ROOT

DEVSTACK = [sys.executable, "-m", "carehub.devstack"]


def test_run_passes_the_urls_and_forwards_the_exit_code(service_urls: dict[str, str]) -> None:
    script = "import sys, os; sys.exit(3 if os.environ['DATABASE_URL'] else 0)"
    result = subprocess.run(
        [*DEVSTACK, "run", "--", sys.executable, "-c", script],
        env={**os.environ, **service_urls},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 3, result.stderr
    assert "PostgreSQL: using DATABASE_URL" in result.stderr
    assert "Redis: using REDIS_URL" in result.stderr


def test_run_reports_a_signal_death_like_a_shell(service_urls: dict[str, str]) -> None:
    script = "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"
    result = subprocess.run(
        [*DEVSTACK, "run", "--", sys.executable, "-c", script],
        env={**os.environ, **service_urls},
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 128 + signal.SIGTERM


def test_run_forwards_sigint_to_the_child(service_urls: dict[str, str]) -> None:
    script = (
        "import sys, time\n"
        "try:\n"  # ready only once a SIGINT is a KeyboardInterrupt caught here
        "    print('ready', flush=True)\n"
        "    time.sleep(60)\n"
        "except KeyboardInterrupt:\n"
        "    sys.exit(5)\n"
    )
    with subprocess.Popen(
        [*DEVSTACK, "run", "--", sys.executable, "-c", script],
        env={**os.environ, **service_urls},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,  # no terminal: only the signal we send reaches devstack
    ) as devstack:
        assert devstack.stdout is not None
        assert devstack.stdout.readline() == "ready\n"
        devstack.send_signal(signal.SIGINT)
        assert devstack.wait(timeout=20) == 5


def test_run_without_a_command_is_a_usage_error() -> None:
    result = subprocess.run([*DEVSTACK, "run", "--"], capture_output=True, timeout=60)
    assert result.returncode == 2


def test_ctrl_c_in_a_terminal_reaches_the_child_once(service_urls: dict[str, str]) -> None:
    # The terminal signals the whole foreground process group; devstack must not add a second.
    script = (
        "import signal, sys, time\n"
        "received = []\n"
        "signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))\n"
        "print('ready', flush=True)\n"
        "while not received:\n"
        "    time.sleep(0.05)\n"
        "time.sleep(1)\n"
        "sys.exit(10 + len(received))\n"
    )
    pid, terminal = pty.fork()
    if pid == 0:  # pragma: no cover - the child becomes devstack
        try:
            argv = [*DEVSTACK, "run", "--", sys.executable, "-c", script]
            os.execve(sys.executable, argv, {**os.environ, **service_urls})  # noqa: S606
        finally:
            os._exit(127)
    output = b""
    deadline = time.monotonic() + 60
    while b"ready" not in output and time.monotonic() < deadline:
        if select.select([terminal], [], [], 1)[0]:
            output += os.read(terminal, 1024)
    os.write(terminal, b"\x03")  # Ctrl-C
    _, status = os.waitpid(pid, 0)
    os.close(terminal)
    assert os.waitstatus_to_exitcode(status) == 11, output.decode(errors="replace")


def test_a_signal_while_the_child_starts_reaches_the_child() -> None:
    """SIGTERM arriving between the relay's installation and the child's start (here, sent just
    as the child is being started) is passed on once the child exists: the child ends by it
    (143), devstack neither dies of it itself nor leaves the child running."""
    script = (
        "import os, signal, subprocess, sys\n"
        "from carehub.devstack import runner\n"
        "real = subprocess.Popen\n"
        "def starting(*args, **kwargs):\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    return real(*args, **kwargs)\n"
        "runner.subprocess.Popen = starting\n"
        "child = [sys.executable, '-c', 'import time; time.sleep(30)']\n"
        "sys.exit(runner.run_child(child, os.environ))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, timeout=60, check=False)
    assert result.returncode == 128 + signal.SIGTERM  # not 0: the child did not sleep it out
