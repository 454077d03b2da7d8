"""The bench's own servers: a database, a Redis db and a Celery queue nobody else uses.

`configure()` runs before Django starts: it derives the names from the environment that
`python -m carehub.devstack run` (or the caller) provides and exports them, so every process the
bench starts (workers, beat, gunicorn, locust) inherits them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/carehub"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


@dataclass(frozen=True)
class BenchEnv:
    database_name: str
    database_url: str
    redis_url: str
    queue: str

    def url_for(self, database_name: str) -> str:
        return with_database(self.database_url, database_name)


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def with_redis_db(url: str, db: int) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


def configure() -> BenchEnv:
    """Export DATABASE_URL / REDIS_URL / CELERY_QUEUE / DJANGO_SETTINGS_MODULE for the bench.

    BENCH_DATABASE_NAME (default carehub_bench) and BENCH_REDIS_DB (default 7) choose the names;
    the servers are those of DATABASE_URL / REDIS_URL (devstack's resolution)."""
    name = os.environ.get("BENCH_DATABASE_NAME", "carehub_bench")
    # The bench generates its data as the tables' owner (TRUNCATE, replication mode for bulk
    # loads, its own database): DATABASE_OWNER_URL when there is one (ADR 0014).
    base_db = os.environ.get("DATABASE_OWNER_URL") or os.environ.get(
        "DATABASE_URL", DEFAULT_DATABASE_URL
    )
    base_redis = os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)
    bench = BenchEnv(
        database_name=name,
        database_url=with_database(base_db, name),
        redis_url=with_redis_db(base_redis, int(os.environ.get("BENCH_REDIS_DB", "7"))),
        queue=os.environ.get("BENCH_CELERY_QUEUE", f"carehub-{name}"),
    )
    os.environ["DATABASE_URL"] = bench.database_url
    os.environ.pop("DATABASE_OWNER_URL", None)  # one role throughout
    os.environ["REDIS_URL"] = bench.redis_url
    os.environ["CELERY_QUEUE"] = bench.queue
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.bench"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    return bench
