"""Health probes for /healthz: each returns a small JSON-able dict and never raises."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import connection
from kombu import Connection

from carehub.core import clock
from carehub.core.models import SchedulerHeartbeat
from carehub.core.services import SCHEDULER


def check_database() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return {"status": "error", "error": type(exc).__name__}
    return {"status": "ok"}


def check_database_writable() -> dict[str, Any]:
    """The database answers and takes writes: not a standby in recovery, not read-only (a
    failover in progress, a disk-full guard, an operator's `default_transaction_read_only`)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_is_in_recovery(), current_setting('transaction_read_only') = 'on'"
            )
            in_recovery, read_only = cursor.fetchone()
    except Exception as exc:
        return {"status": "error", "error": type(exc).__name__}
    if in_recovery or read_only:
        return {"status": "read_only"}
    return {"status": "ok"}


def check_broker() -> dict[str, Any]:
    try:
        with Connection(settings.CELERY_BROKER_URL, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            client = conn.default_channel.client  # type: ignore[attr-defined]  # Redis channel
            client.ping()
    except Exception as exc:
        return {"status": "error", "error": type(exc).__name__}
    return {"status": "ok"}


def check_scheduler() -> dict[str, Any]:
    try:
        beat = SchedulerHeartbeat.objects.filter(name=SCHEDULER).first()
    except Exception as exc:
        return {"status": "error", "error": type(exc).__name__}
    if beat is None:
        return {"status": "unknown", "detail": "no heartbeat recorded yet"}
    lag = (clock.now() - beat.last_beat_at).total_seconds()
    status = "ok" if lag <= settings.SCHEDULER_LAG_WARN_SECONDS else "late"
    return {"status": status, "lag_seconds": round(lag, 1), "last_beat_at": beat.last_beat_at}
