"""Publishing outbox rows to Celery: right after commit, and again by the sweeper for rows whose
publish was lost (a crash or a broker outage between COMMIT and publish) or whose retry is due."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from carehub.core import clock
from carehub.core.publish import publish_ids_after_commit, task_named
from carehub.pathways.models import EffectStatus, OutboxEffect

logger = logging.getLogger(__name__)

# The tasks of carehub.pathways.tasks, published by name (that module imports this one).
EFFECT_EXECUTE = "carehub.pathways.effect_execute"
EFFECTS_EXECUTE = "carehub.pathways.effects_execute"


def _publish_together(effect_ids: list[int]) -> None:
    if len(effect_ids) == 1:
        task_named(EFFECT_EXECUTE).delay(effect_ids[0])
    else:
        task_named(EFFECTS_EXECUTE).delay(effect_ids)


def publish_after_commit(effect_ids: list[int]) -> None:
    """After commit, the effects of one decision in one task (its payload: their ids), one
    Redis round trip. robust: a broker outage must not fail a request whose transaction already
    committed; the sweeper publishes what was not published here."""
    if effect_ids:
        ids = list(effect_ids)
        transaction.on_commit(lambda: _publish_together(ids), robust=True)


def publish_each_after_commit(effect_ids: list[int]) -> None:
    """After commit, one task per effect id (the sweeper's rows are unrelated to each other, and
    any worker may take each), over one producer in one kombu publish batch."""
    publish_ids_after_commit(partial(task_named, EFFECT_EXECUTE), effect_ids)


def outbox_sweep(*, now: datetime | None = None, limit: int = 500) -> int:
    """Publish outbox rows that need it; returns how many. Safe to run concurrently."""
    now = now or clock.now()
    grace = timedelta(seconds=settings.OUTBOX_REPUBLISH_AFTER_SECONDS)
    lease = timedelta(seconds=settings.OUTBOX_LEASE_SECONDS)
    with transaction.atomic(durable=True):
        rows = list(
            OutboxEffect.objects.select_for_update(skip_locked=True)
            .filter(
                Q(status=EffectStatus.PENDING, available_at__lte=now - grace)
                | Q(status=EffectStatus.RETRY, available_at__lte=now)
                | Q(status=EffectStatus.RUNNING, claimed_at__lte=now - lease)
            )
            .order_by("available_at")[:limit]
        )
        ids = [row.pk for row in rows]
        # Pending again, and not swept again before another grace period.
        OutboxEffect.objects.filter(pk__in=ids).update(
            status=EffectStatus.PENDING, available_at=now
        )
        publish_each_after_commit(ids)
    if ids:
        logger.info("outbox sweep published %s effect(s)", len(ids))
    return len(ids)
