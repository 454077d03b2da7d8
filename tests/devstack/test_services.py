import secrets
import socketserver
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import environ
import psycopg
import pytest
import redis
from psycopg import sql

from carehub.devstack.services import (
    LOCAL_POSTGRES,
    LOCAL_REDIS,
    Address,
    Services,
    connect_kwargs,
    free_port,
    pid_alive,
    postgres_accepts,
    redis_answers,
    resolve_services,
    socket_database_url,
    tcp_accepts,
)


def start_embedded(state_dir: Path, log: list[str] | None = None) -> Services:
    messages = [] if log is None else log
    return resolve_services(
        {}, state_dir=state_dir, local_postgres=None, local_redis=None, log=messages.append
    )


def select_one(database_url: str) -> object:
    with psycopg.connect(**connect_kwargs(database_url)) as conn:
        row = conn.execute("SELECT current_database(), 1").fetchone()
    return row


def assert_gone(pids: list[int], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while any(pid_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [pid for pid in pids if pid_alive(pid)] == []


class _PongHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        if self.request.recv(64):
            self.request.sendall(b"+PONG\r\n")


@pytest.fixture
def fake_redis() -> Iterator[Address]:
    """Something on a local port that answers PING like Redis (and is not PostgreSQL)."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _PongHandler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield Address("127.0.0.1", server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def test_embedded_servers_start_serve_and_stop(tmp_path: Path) -> None:
    log: list[str] = []
    with start_embedded(tmp_path, log) as services:
        pids = [server.pid for server in services.embedded]
        assert len(pids) == 2
        assert all(pid_alive(pid) for pid in pids)

        # The URL works the way the Django settings read it: django-environ, unix socket.
        config = environ.Env.db_url_config(services.database_url)
        assert config["NAME"] == "carehub"
        assert config["OPTIONS"]["host"].startswith("/")
        with psycopg.connect(
            dbname=config["NAME"], user=config["USER"], **config["OPTIONS"]
        ) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)

        assert services.redis_url.startswith("redis://127.0.0.1:")
        assert redis.Redis.from_url(services.redis_url).ping()

    assert_gone(pids)
    assert log[0].startswith("PostgreSQL: embedded server in ")
    assert log[1].startswith("Redis: embedded server on 127.0.0.1:")


def test_embedded_servers_are_shared_and_keep_their_data(tmp_path: Path) -> None:
    first = start_embedded(tmp_path)
    try:
        second = start_embedded(tmp_path)
        assert second.env == first.env
        assert [s.pid for s in second.embedded] == [s.pid for s in first.embedded]
        redis.Redis.from_url(second.redis_url).rpush("devstack-test", "kept")
        second.stop()  # the first user still needs them
        assert select_one(first.database_url) == ("carehub", 1)
        assert redis.Redis.from_url(first.redis_url).ping()
    finally:
        pids = [server.pid for server in first.embedded]
        first.stop()
    assert_gone(pids)

    # Broker messages survive a restart (append-only file).
    with start_embedded(tmp_path) as again:
        assert redis.Redis.from_url(again.redis_url).lrange("devstack-test", 0, -1) == [b"kept"]
        assert select_one(again.database_url) == ("carehub", 1)


def test_urls_from_the_environment_are_used_verbatim(tmp_path: Path, fake_redis: Address) -> None:
    env = {
        "DATABASE_URL": "postgres://carehub:s3cret@127.0.0.1:1/elsewhere",
        "REDIS_URL": "redis://:s3cret@127.0.0.1:1/3",
    }
    log: list[str] = []
    services = resolve_services(
        env,
        state_dir=tmp_path,
        local_postgres=LOCAL_POSTGRES,
        local_redis=fake_redis,
        log=log.append,
    )
    assert services.env == env
    assert services.embedded == []
    assert list(tmp_path.iterdir()) == []
    assert log[0] == "PostgreSQL: using DATABASE_URL"
    assert log[-1] == "Redis: using REDIS_URL"
    assert "s3cret" not in "\n".join(log)


def test_a_local_redis_is_used(tmp_path: Path, fake_redis: Address) -> None:
    log: list[str] = []
    services = resolve_services(
        {"DATABASE_URL": "sqlite://:memory:"},
        state_dir=tmp_path,
        local_redis=fake_redis,
        log=log.append,
    )
    assert services.redis_url == f"redis://127.0.0.1:{fake_redis.port}/0"
    assert services.embedded == []
    assert log[-1] == f"Redis: local server on 127.0.0.1:{fake_redis.port}"


@pytest.mark.skipif(
    not (postgres_accepts(LOCAL_POSTGRES) and redis_answers(LOCAL_REDIS)),
    reason="no PostgreSQL (trust auth) and Redis on their default local ports",
)
def test_servers_on_the_default_local_ports_are_used(tmp_path: Path) -> None:
    database = f"carehub_devstack_{secrets.token_hex(4)}"
    log: list[str] = []
    services = resolve_services({}, state_dir=tmp_path, database=database, log=log.append)
    try:
        assert services.database_url == f"postgres://postgres@127.0.0.1:5432/{database}"
        assert services.redis_url == "redis://127.0.0.1:6379/0"
        assert services.embedded == []
        assert log == [
            "PostgreSQL: local server on 127.0.0.1:5432",
            "Redis: local server on 127.0.0.1:6379",
        ]
        assert select_one(services.database_url) == (database, 1)  # created on demand
        # The application connects as its own role; the superuser is the owner (ADR 0014).
        assert services.env == {
            "DATABASE_URL": f"postgres://carehub_app@127.0.0.1:5432/{database}",
            "DATABASE_OWNER_URL": f"postgres://postgres@127.0.0.1:5432/{database}",
            "REDIS_URL": "redis://127.0.0.1:6379/0",
        }
    finally:
        admin = connect_kwargs(services.database_url, dbname="postgres")
        with psycopg.connect(**admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(database)))


def test_probes_tell_services_apart(fake_redis: Address) -> None:
    closed = Address("127.0.0.1", free_port())
    assert not tcp_accepts(closed)
    assert not redis_answers(closed)
    assert not postgres_accepts(closed)
    assert tcp_accepts(fake_redis)
    assert redis_answers(fake_redis)
    assert not postgres_accepts(fake_redis)


def test_socket_urls_survive_django_environ() -> None:
    url = socket_database_url(Path("/srv/Care Hub/run+pg?#"), "carehub")
    config = environ.Env.db_url_config(url)
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert config["NAME"] == "carehub"
    assert config["USER"] == "postgres"
    assert config["OPTIONS"] == {"host": "/srv/Care Hub/run+pg?#"}
    assert connect_kwargs(url)["host"] == "/srv/Care Hub/run+pg?#"
    # Swapping the database name in the path (as for a test database) keeps the socket.
    other = environ.Env.db_url_config(url.replace("/carehub?", "/test_carehub?"))
    assert other["NAME"] == "test_carehub"
    assert other["OPTIONS"] == {"host": "/srv/Care Hub/run+pg?#"}
