"""Refuse to publish any Celery task with an ETA or countdown more than a minute away.

Long ETAs are how work gets duplicated (a Redis broker redelivers unacked messages after the
visibility timeout) and lost (they live in worker memory); due times belong in PostgreSQL rows
(see ADR 0005 and 0006). Celery's signal dispatcher logs and swallows any `Exception` a receiver
raises, so the refusal is a `BaseException`: the publish is aborted and the caller sees it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from celery.signals import before_task_publish

MAX_ETA_SECONDS = 60


class LongEtaRefused(BaseException):
    """A task was published with an ETA/countdown beyond MAX_ETA_SECONDS."""


def _eta_of(headers: dict[str, Any] | None, body: Any) -> datetime | None:
    raw = (headers or {}).get("eta")
    if raw is None and isinstance(body, dict):
        raw = body.get("eta")  # task protocol 1
    if raw is None:
        return None
    eta = raw if isinstance(raw, datetime) else datetime.fromisoformat(str(raw))
    return eta if eta.tzinfo is not None else eta.replace(tzinfo=UTC)


@before_task_publish.connect(dispatch_uid="carehub.refuse_long_eta", weak=False)
def refuse_long_eta(
    sender: str | None = None,
    headers: dict[str, Any] | None = None,
    body: Any = None,
    **kwargs: Any,
) -> None:
    eta = _eta_of(headers, body)
    if eta is None:
        return
    ahead = (eta - datetime.now(UTC)).total_seconds()
    if ahead > MAX_ETA_SECONDS:
        raise LongEtaRefused(
            f"task {sender} published with an ETA {ahead:.0f} s ahead (at most "
            f"{MAX_ETA_SECONDS} s): keep due times in the database and let a dispatcher "
            "publish the work when it is due"
        )
