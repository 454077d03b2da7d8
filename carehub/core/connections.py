"""Database connections that recover at once after an outage.

Connections live up to CONN_MAX_AGE (60 s) and CONN_HEALTH_CHECKS replaces one that no longer
answers `SELECT 1`. That is not enough for a connection opened while the server refused writes
(a standby before promotion, `default_transaction_read_only` during maintenance): it answers,
but every session it holds keeps refusing writes after the server recovers. So every query runs
through `discard_on_fault`: a query that fails because the database is unavailable, read-only or
shutting down marks its connection to be closed at the end of the request (or Celery task),
whether or not the caller handles the error; the next request opens a fresh one. A connection
opened while the server refused writes is used for its one request only, even if nothing
failed on it (a page that only read, the readiness probe).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper

from carehub.core.retry import poisons_connection

logger = logging.getLogger(__name__)


class DiscardOnFault:
    """An execute wrapper (`connection.execute_wrappers`) for one connection."""

    def __init__(self, connection: BaseDatabaseWrapper) -> None:
        self.connection = connection

    def __call__(
        self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        try:
            return execute(sql, params, many, context)
        except Exception as exc:
            if poisons_connection(exc):
                discard_connection(self.connection, exc)
            raise


def discard_connection(connection: BaseDatabaseWrapper, exc: BaseException) -> None:
    """Close `connection` when its request or task ends (never inside a transaction, where
    Django's atomic blocks still need it to roll back)."""
    if connection.close_at is None or connection.close_at > time.monotonic():
        logger.warning(
            "database connection %s will be closed: %s", connection.alias, type(exc).__name__
        )
    connection.close_at = time.monotonic()


def opened_read_only(connection: BaseDatabaseWrapper) -> bool:
    """The server said at connection time that this session refuses writes (PostgreSQL 14+
    reports `default_transaction_read_only` and `in_hot_standby` to the client; no query)."""
    info = getattr(connection.connection, "info", None)
    if info is None or not hasattr(info, "parameter_status"):
        return False
    for name in ("default_transaction_read_only", "in_hot_standby"):
        value = info.parameter_status(name)
        if isinstance(value, bytes):
            value = value.decode()
        if value == "on":
            return True
    return False


def install(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    """`connection_created` receiver: every new connection gets the wrapper once, and a
    connection opened on a server refusing writes serves one request (or task) only, so that
    the first request after the server recovers gets a connection that writes."""
    if not any(isinstance(w, DiscardOnFault) for w in connection.execute_wrappers):
        connection.execute_wrappers.append(DiscardOnFault(connection))
    if opened_read_only(connection):
        connection.close_at = time.monotonic()
