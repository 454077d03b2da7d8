"""Process orchestration for `python -m carehub.devstack run` and `... demo`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import FrameType

from carehub.devstack.services import (
    DEFAULT_STATE_DIR,
    REPO_ROOT,
    DevstackError,
    Services,
    display_path,
    log_to_stderr,
    resolve_services,
)

MANAGE_PY = REPO_ROOT / "manage.py"
READY_TIMEOUT = 180.0
STOP_GRACE = 10.0  # seconds for a Celery warm shutdown before SIGKILL
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
Handler = Callable[[int, FrameType | None], object] | int | None


def start_services(*, state_dir: Path = DEFAULT_STATE_DIR, embedded: bool = False) -> Services:
    """Resolve the services from this process's environment. `embedded` skips the local default
    ports, so embedded servers start unless DATABASE_URL / REDIS_URL name servers explicitly
    (nested invocations, such as the demo smoke test inside an embedded test run, use the URLs
    they are given)."""
    if embedded:
        return resolve_services(state_dir=state_dir, local_postgres=None, local_redis=None)
    return resolve_services(state_dir=state_dir)


def stop_services(services: Services) -> None:
    """Stop the embedded servers; a second Ctrl-C must not interrupt that half-way."""
    with _signals(signal.SIG_IGN, *STOP_SIGNALS):
        services.stop()


# --- run ----------------------------------------------------------------------------------------


def run(
    command: Sequence[str], *, state_dir: Path = DEFAULT_STATE_DIR, embedded: bool = False
) -> int:
    """Run `command` with DATABASE_URL and REDIS_URL set; return its exit status."""
    with _signals(_raise_interrupt, signal.SIGTERM, signal.SIGHUP):
        services = start_services(state_dir=state_dir, embedded=embedded)
        try:
            return run_child(command, {**os.environ, **services.env})
        finally:
            stop_services(services)


def run_child(command: Sequence[str], env: Mapping[str, str]) -> int:
    """Run `command` to completion, relaying SIGINT/SIGTERM/SIGHUP; shell-style exit status.

    The relay is in place before the child starts: a signal that arrives while it is starting
    is passed on as soon as it exists, never lost nor taken as our own interrupt."""
    child: subprocess.Popen[bytes] | None = None
    early: list[int] = []

    def relay(signum: int, frame: FrameType | None) -> None:
        # A Ctrl-C typed in the terminal already reached the child, which shares our process group.
        if signum == signal.SIGINT and _in_terminal_foreground():
            return
        if child is None:
            early.append(signum)
        else:
            child.send_signal(signum)

    with _signals(relay, *STOP_SIGNALS):
        try:
            child = subprocess.Popen(list(command), env=dict(env))
        except OSError as exc:
            log_to_stderr(f"cannot run {command[0]}: {exc.strerror}")
            return 127
        for signum in early:
            child.send_signal(signum)
        returncode = child.wait()
    return returncode if returncode >= 0 else 128 - returncode


def _in_terminal_foreground() -> bool:
    for stream in (sys.stdin, sys.stdout, sys.stderr):
        try:
            if stream.isatty():
                return os.tcgetpgrp(stream.fileno()) == os.getpgrp()
        except (OSError, ValueError):
            continue
    return False


# --- demo ---------------------------------------------------------------------------------------


def demo(
    *,
    port: int,
    seed: bool = True,
    state_dir: Path = DEFAULT_STATE_DIR,
    embedded: bool = False,
) -> int:
    """Migrate, seed, then run web + worker + scheduler until Ctrl-C or SIGTERM."""
    if not port_is_free(port):
        raise DevstackError(f"port {port} is already in use; choose another with PORT=<port>")
    with _signals(_raise_interrupt, signal.SIGTERM, signal.SIGHUP):
        services = start_services(state_dir=state_dir, embedded=embedded)
        try:
            env = demo_env(services.env, port=port)
            manage(env, "migrate", "--noinput")
            seeded = seed and seed_demo(env)
            print(banner(port, seeded=seeded), flush=True)
            processes = demo_processes(port, state_dir)
            # A process that dies is started again with backoff; only Ctrl-C stops the demo.
            return run_processes(processes, env, port, restart=processes.keys())
        finally:
            stop_services(services)


DEMO_SETTINGS = "config.settings.local"


def demo_env(service_env: Mapping[str, str], *, port: int | None = None) -> dict[str, str]:
    """The demo's processes run on the local settings (manage.py and Celery would otherwise use
    the production ones); DJANGO_SETTINGS_MODULE, when set, names others explicitly. Links in
    messages point at the port the demo serves (PUBLIC_BASE_URL, unless set explicitly)."""
    env = {**os.environ, **service_env, "PYTHONUNBUFFERED": "1"}
    env.setdefault("DJANGO_SETTINGS_MODULE", DEMO_SETTINGS)
    if port is not None:
        env.setdefault("PUBLIC_BASE_URL", f"http://127.0.0.1:{port}")
    return env


def demo_processes(port: int, state_dir: Path) -> dict[str, list[str]]:
    state_dir.mkdir(parents=True, exist_ok=True)
    python, celery = sys.executable, celery_command()
    return {
        "web": [python, str(MANAGE_PY), "runserver", f"127.0.0.1:{port}", "--noreload"],
        "worker": [
            *celery,
            "-A",
            "config",
            "worker",
            "--loglevel",
            "INFO",
            "--concurrency",
            "2",
            "--hostname",
            "demo@%h",
        ],
        "scheduler": [
            *celery,
            "-A",
            "config",
            "beat",
            "--loglevel",
            "INFO",
            "--schedule",
            str(state_dir / "celerybeat-schedule"),
        ],
    }


def celery_command() -> list[str]:
    script = Path(sys.executable).parent / "celery"
    return [str(script)] if script.exists() else [sys.executable, "-m", "celery"]


def manage(env: Mapping[str, str], *args: str) -> None:
    result = subprocess.run([sys.executable, str(MANAGE_PY), *args], env=env, cwd=REPO_ROOT)
    if result.returncode != 0:
        raise DevstackError(f"manage.py {' '.join(args)} failed (exit status {result.returncode})")


def seed_demo(env: Mapping[str, str]) -> bool:
    """Run the (idempotent) seed_demo command; False when this checkout has none."""
    result = subprocess.run(
        [sys.executable, str(MANAGE_PY), "seed_demo"],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    if result.returncode == 0:
        return True
    if "Unknown command" in result.stderr:
        log_to_stderr("no seed_demo command in this checkout; starting without demo data")
        return False
    raise DevstackError(f"manage.py seed_demo failed (exit status {result.returncode})")


def banner(port: int, *, seeded: bool) -> str:
    base = f"http://127.0.0.1:{port}"
    python = display_path(Path(sys.executable))
    login = (
        "Log in with one of the demo accounts listed above, or make your own:"
        if seeded
        else "No demo data was loaded; make an account to log in with:"
    )
    return "\n".join(
        [
            "",
            "carehub demo",
            f"  app     {base}/",
            f"  admin   {base}/admin/",
            f"  health  {base}/healthz",
            f"  {login}",
            f"    {python} manage.py createsuperuser",
            "  A process that dies is restarted; Ctrl-C stops everything.",
            "",
        ]
    )


@dataclass(frozen=True)
class RestartPolicy:
    """How the demo brings back a process that died: after `first_delay` seconds, doubling up to
    `max_delay`; a process that ran `stable_after` seconds starts the count afresh. One that died
    within `stable_after` of its start `give_up_after` times in a row cannot start: then
    everything stops, with its exit status."""

    first_delay: float = 1.0
    max_delay: float = 30.0
    stable_after: float = 60.0
    give_up_after: int = 5


DEFAULT_RESTART_POLICY = RestartPolicy()


@dataclass
class _Supervised:
    name: str
    argv: Sequence[str]
    restart: bool
    child: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restart_at: float | None = None
    delay: float = 0.0
    quick_deaths: int = 0


def run_processes(
    processes: Mapping[str, Sequence[str]],
    env: Mapping[str, str],
    port: int | None = None,
    *,
    restart: Collection[str] = (),
    policy: RestartPolicy = DEFAULT_RESTART_POLICY,
) -> int:
    """Run the processes side by side, output prefixed with their names, until SIGINT/SIGTERM/
    SIGHUP arrives; then stop them all. A process named in `restart` that exits is started again
    with backoff (see RestartPolicy); any other process exiting stops them all. Announces when
    `port` starts listening.

    Returns 128 + the signal number when stopped by a signal, else the status of the process
    that ended the run.
    """
    output = _Output(width=max(map(len, processes)))
    received: list[int] = []
    supervised = [
        _Supervised(name, argv, name in restart, delay=policy.first_delay)
        for name, argv in processes.items()
    ]
    ended: _Supervised | None = None
    with _signals(lambda signum, frame: received.append(signum), *STOP_SIGNALS):
        try:
            for process in supervised:
                _launch(process, env, output)
            if port is not None:
                announce = threading.Thread(
                    target=_announce_when_listening, args=(port, output), daemon=True
                )
                announce.start()
            while not received and ended is None:
                ended = _supervise(supervised, env, output, policy)
                time.sleep(0.1)
        finally:
            children = {p.name: p.child for p in supervised if p.child is not None}
            reason, status = _stop_reason(ended, received)
            output.line("system", f"{reason}, stopping")
            _stop_all(children, output, received)
    return status


def _launch(process: _Supervised, env: Mapping[str, str], output: _Output) -> None:
    process.child = _start(process.name, process.argv, env, output)
    process.started_at = time.monotonic()
    process.restart_at = None


def _supervise(
    supervised: Sequence[_Supervised],
    env: Mapping[str, str],
    output: _Output,
    policy: RestartPolicy,
) -> _Supervised | None:
    """One round: notice processes that exited, restart those that are due. Returns the process
    whose exit ends the run, if any."""
    now = time.monotonic()
    for process in supervised:
        if process.restart_at is not None:
            if now >= process.restart_at:
                _launch(process, env, output)
            continue
        child = process.child
        if child is None or child.poll() is None:
            continue
        if not process.restart:
            return process
        # What the dead process left in its group (a worker's pool) goes with it.
        _signal_group(child.pid, signal.SIGKILL)
        if now - process.started_at >= policy.stable_after:
            process.delay, process.quick_deaths = policy.first_delay, 0
        else:
            process.quick_deaths += 1
        if process.quick_deaths >= policy.give_up_after:
            output.line(
                "system",
                f"{process.name} exited ({_describe(child.returncode)}) "
                f"{process.quick_deaths} times in a row soon after starting; giving up",
            )
            return process
        output.line(
            "system",
            f"{process.name} exited ({_describe(child.returncode)}); "
            f"restarting in {process.delay:g} s",
        )
        process.restart_at = now + process.delay
        process.delay = min(process.delay * 2, policy.max_delay)
    return None


def _start(
    name: str, argv: Sequence[str], env: Mapping[str, str], output: _Output
) -> subprocess.Popen[bytes]:
    try:
        # Own session: a Ctrl-C in the terminal reaches devstack only, which stops them in turn.
        child = subprocess.Popen(
            argv,
            env=dict(env),
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        raise DevstackError(f"cannot start {name} ({argv[0]}): {exc.strerror}") from exc
    threading.Thread(target=output.relay, args=(name, child), daemon=True).start()
    output.line("system", f"{name} started (pid {child.pid})")
    return child


def _stop_reason(ended: _Supervised | None, received: list[int]) -> tuple[str, int]:
    if received:
        return f"{signal.Signals(received[0]).name} received", 128 + received[0]
    if ended is not None and ended.child is not None and ended.child.returncode is not None:
        status = ended.child.returncode
        return f"{ended.name} exited with status {status}", status if status >= 0 else 128 - status
    return "could not start everything", 1


def _stop_all(
    children: Mapping[str, subprocess.Popen[bytes]], output: _Output, received: list[int]
) -> None:
    """SIGTERM every process group; SIGKILL what is left after STOP_GRACE or another signal."""
    for child in children.values():
        _signal_group(child.pid, signal.SIGTERM)
    signals_so_far = len(received)
    deadline = time.monotonic() + STOP_GRACE
    while any(_group_alive(child) for child in children.values()):
        if time.monotonic() > deadline or len(received) > signals_so_far:
            for name, child in children.items():
                if _group_alive(child):
                    output.line("system", f"killing {name}")
                    _signal_group(child.pid, signal.SIGKILL)
            break
        time.sleep(0.1)
    for name, child in children.items():
        child.wait()
        output.line("system", f"{name} stopped ({_describe(child.returncode)})")


def _describe(returncode: int) -> str:
    if returncode < 0:
        return f"by {signal.Signals(-returncode).name}"
    return f"status {returncode}"


def _signal_group(pgid: int, signum: int) -> None:
    with suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def _group_alive(child: subprocess.Popen[bytes]) -> bool:
    child.poll()  # reap the leader, or it would count as alive forever
    try:
        os.killpg(child.pid, 0)
    except ProcessLookupError:
        return False
    return True


class _Output:
    """Prefixes each line with the time and the name of the process that wrote it."""

    def __init__(self, width: int) -> None:
        self.width = max(width, len("system"))
        self.lock = threading.Lock()

    def line(self, name: str, text: str) -> None:
        stamp = datetime.now().astimezone().strftime("%H:%M:%S")
        with self.lock:
            print(f"{stamp} {name:<{self.width}} | {text}", flush=True)

    def relay(self, name: str, child: subprocess.Popen[bytes]) -> None:
        assert child.stdout is not None
        for raw in iter(child.stdout.readline, b""):
            self.line(name, raw.decode(errors="replace").rstrip())


def _announce_when_listening(port: int, output: _Output) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        time.sleep(0.5)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        except OSError:
            continue
        base = f"http://127.0.0.1:{port}"
        output.line("system", f"carehub demo is up at {base}/ (admin: /admin/, health: /healthz)")
        return


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


# --- signals ------------------------------------------------------------------------------------


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextmanager
def _restoring(*signums: int) -> Iterator[None]:
    """Put back the current handlers of `signums` on exit, whatever was installed meanwhile."""
    previous = {signum: signal.getsignal(signum) for signum in signums}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextmanager
def _signals(handler: Handler, *signums: int) -> Iterator[None]:
    """Install `handler` for `signums` until the block ends."""
    with _restoring(*signums):
        for signum in signums:
            signal.signal(signum, handler)
        yield
