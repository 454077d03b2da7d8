"""Retry arithmetic shared by the durable work tables (outbox effects, messages): exponential
backoff with full jitter, capped, and a bounded error log kept on the row."""

from __future__ import annotations

import random
from datetime import timedelta

ERROR_LOG_LIMIT = 4000


def exponential_backoff(attempt: int, *, base_seconds: float, max_seconds: float) -> timedelta:
    """Delay before the next attempt after `attempt` failures: base, 2 * base, 4 * base ... capped,
    each drawn uniformly from its upper half so that a burst of failures does not retry in step."""
    base = float(base_seconds) * (2 ** max(attempt - 1, 0))
    capped = min(base, float(max_seconds))
    return timedelta(seconds=capped / 2 + random.uniform(0, capped / 2))  # noqa: S311


def append_error(log: str, line: str, *, limit: int = ERROR_LOG_LIMIT) -> str:
    """The error log with one more line, keeping the most recent `limit` characters."""
    return f"{log}\n{line}".strip()[-limit:]


# --- transient faults -------------------------------------------------------------------------

# SQLSTATEs of faults that pass when the database recovers: connection exceptions (class 08),
# a read-only transaction (a standby, a failover in progress, `default_transaction_read_only`),
# serialization failures and deadlocks, too many connections, an operator or crash shutdown,
# "the database system is starting up".
TRANSIENT_SQLSTATES = frozenset({"25006", "40001", "40P01", "53300", "57P01", "57P02", "57P03"})
TRANSIENT_SQLSTATE_CLASSES = frozenset({"08"})
# Of those, the ones after which a connection must not be kept: it was opened on a server that
# refused writes (its sessions keep refusing them after the server recovers) or is broken.
CONNECTION_POISONING_SQLSTATES = frozenset({"25006", "57P01", "57P02", "57P03"})
# Errors Django files under OperationalError that end one statement or transaction and leave
# the session sound: a refused NOWAIT lock (a concurrent change: the engine's dispatch answers
# it as a conflict), a statement or lock timeout, a serialization failure, a deadlock. Closing
# the connection after them would make every conflict pay for a new connection.
CONNECTION_KEEPING_SQLSTATES = frozenset({"55P03", "57014", "40001", "40P01"})


def _sqlstate(exc: BaseException) -> str:
    for error in (exc, exc.__cause__, exc.__context__):
        state = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
        if state:
            return str(state)
    return ""


def is_transient_database_error(exc: BaseException) -> bool:
    """The database is down, restarting, unreachable or refusing writes for now: worth trying
    again with backoff (never a constraint, a bad query or a bug)."""
    from django.db import DatabaseError, InterfaceError, OperationalError

    if isinstance(exc, (OperationalError, InterfaceError)):
        return True
    if isinstance(exc, DatabaseError):
        state = _sqlstate(exc)
        return state in TRANSIENT_SQLSTATES or state[:2] in TRANSIENT_SQLSTATE_CLASSES
    return False


def is_transient_broker_error(exc: BaseException) -> bool:
    """The broker (Redis) cannot be reached or refused the command for now."""
    from kombu.exceptions import OperationalError as KombuOperationalError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return isinstance(exc, (KombuOperationalError, RedisConnectionError, RedisTimeoutError))


def is_transient(exc: BaseException) -> bool:
    return is_transient_database_error(exc) or is_transient_broker_error(exc)


def poisons_connection(exc: BaseException) -> bool:
    """A connection that raised this must be closed rather than kept for CONN_MAX_AGE."""
    from django.db import InterfaceError, OperationalError

    state = _sqlstate(exc)
    if state in CONNECTION_KEEPING_SQLSTATES:
        return False
    if isinstance(exc, (OperationalError, InterfaceError)):
        return True
    return state in CONNECTION_POISONING_SQLSTATES or state[:2] in TRANSIENT_SQLSTATE_CLASSES


def describe_error(exc: BaseException, *, limit: int = 200) -> str:
    """`Type: first line of the message`, short enough for a delivery event."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:limit]
