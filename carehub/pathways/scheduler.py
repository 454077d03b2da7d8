"""The scheduler: fire due pathway timers. Safe to run twice at once (SKIP LOCKED claims, and
each timer's event key is the timer's id, so a timer fires once whatever happens)."""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction

from carehub.core import clock
from carehub.core.exceptions import Conflict
from carehub.pathways.models import PathwayTimer, TimerStatus
from carehub.pathways.services import dispatch_in_transaction

logger = logging.getLogger(__name__)


def due_timers_query(now: datetime, batch_size: int):  # type: ignore[no-untyped-def]
    """The claim: the oldest due pending timers nobody else holds (partial index on due_at)."""
    return (
        PathwayTimer.objects.select_for_update(skip_locked=True)
        .filter(status=TimerStatus.PENDING, due_at__lte=now)
        .order_by("due_at")[:batch_size]
    )


def timers_fire_due(*, now: datetime | None = None, batch_size: int = 100) -> int:
    """Fire every timer due by `now`, batch by batch; returns how many fired."""
    fired = 0
    while True:
        count, busy = _fire_batch(now=now or clock.now(), batch_size=batch_size)
        fired += count
        if count + busy < batch_size:
            return fired
        if count == 0:
            return fired  # the rest belong to pathways being changed right now: next run


def _fire_batch(*, now: datetime, batch_size: int) -> tuple[int, int]:
    fired = busy = 0
    with transaction.atomic(durable=True):
        for timer in due_timers_query(now, batch_size):
            try:
                with transaction.atomic():
                    dispatch_in_transaction(
                        enrolment_id=timer.enrolment_id,
                        event=timer.event,
                        idempotency_key=f"timer:{timer.pk}",
                        user=None,
                        proposal_id=None,
                        reason="",
                        timer_key=timer.key,
                        timer_due_at=timer.due_at,
                        expected_version=None,
                        at=now,
                    )
                    # Fired, whatever the engine made of it (a stale timer changes nothing).
                    PathwayTimer.objects.filter(pk=timer.pk, status=TimerStatus.PENDING).update(
                        status=TimerStatus.FIRED, closed_at=now
                    )
                fired += 1
            except Conflict:
                busy += 1  # the pathway is locked or paused: the timer stays pending
            except Exception:
                busy += 1
                logger.exception(
                    "timer %s (%s) could not fire; it stays pending", timer.pk, timer.key
                )
    return fired, busy


def enrolment_timers_fire(*, enrolment_id: int, until: datetime) -> int:
    """Fire one enrolment's timers due by `until`, each at its own due time, oldest first.

    For replaying a history (the demo seed builds months of care this way); the live system
    uses `timers_fire_due`.
    """
    fired = 0
    while True:
        with transaction.atomic(durable=True):
            timer = (
                PathwayTimer.objects.select_for_update(skip_locked=True)
                .filter(enrolment_id=enrolment_id, status=TimerStatus.PENDING, due_at__lte=until)
                .order_by("due_at", "pk")
                .first()
            )
            if timer is None:
                return fired
            dispatch_in_transaction(
                enrolment_id=enrolment_id,
                event=timer.event,
                idempotency_key=f"timer:{timer.pk}",
                user=None,
                proposal_id=None,
                reason="",
                timer_key=timer.key,
                timer_due_at=timer.due_at,
                expected_version=None,
                at=timer.due_at,
            )
            PathwayTimer.objects.filter(pk=timer.pk, status=TimerStatus.PENDING).update(
                status=TimerStatus.FIRED, closed_at=timer.due_at
            )
            fired += 1
