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
