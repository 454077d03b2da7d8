"""Executing outbox effects: effect kind → handler, with attempts, backoff and a dead state.

Handlers are registered by kind by the apps that own the work (`register_effect_handler`). Each
handler calls one domain service and is idempotent by the outbox row: the rows it creates
are unique per effect, so an effect executed twice (a redelivered task, two workers) has its
result once. Handler and "done" commit together.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction

from carehub.clinics.clock import clinic_time
from carehub.core import clock
from carehub.core.exceptions import Conflict
from carehub.core.retry import append_error, exponential_backoff
from carehub.pathways.models import (
    EffectStatus,
    Enrolment,
    EnrolmentStatus,
    OutboxEffect,
    PathwayStep,
)
from carehub.pathways.outbox import publish_after_commit
from carehub.pathways.registry import definition_get

logger = logging.getLogger(__name__)

Handler = Callable[[OutboxEffect, datetime], None]


def task_state_left(
    *, enrolment: Enrolment, track: str, state: str, step_id: int | None
) -> str | None:
    """Why a task of `state` (of `track`), decided at step `step_id`, is no longer needed: the
    pathway has ended, or the track has left the state (or re-entered it) since. None while the
    track is still in that visit of the state."""
    if enrolment.status == EnrolmentStatus.COMPLETED:
        return "No longer needed: the pathway had ended before the task was created"
    current = enrolment.configuration.get(track, {}).get("state")
    moved = False
    if step_id is not None:
        step = PathwayStep.objects.filter(pk=step_id).values_list("sequence", flat=True).first()
        moved = (
            step is not None
            and PathwayStep.objects.filter(
                enrolment=enrolment,
                sequence__gt=step,
                transitions__contains=[{"track": track, "internal": False}],
            ).exists()
        )
    if current == state and not moved:
        return None
    definition = definition_get(enrolment.definition_key, enrolment.definition_version)
    spec = definition.tracks.get(track)
    track_title = (spec.title if spec else "") or track
    state_title = (spec.states[state].title if spec and state in spec.states else "") or state
    return f"No longer needed: {track_title} had left '{state_title}' before the task was created"


# Effect kind → handler. Each app that acts on pathway effects registers its handlers from its
# AppConfig.ready() (`register_effect_handler`), so every process that loads the apps has them:
# worklists `create_task` and `raise_flag`, messaging `notify` and `propose_escalation`, check-ins
# `start_checkins` and `stop_checkins`. The outbox knows kinds, not the apps that handle them.
HANDLERS: dict[str, Handler] = {}


def register_effect_handler(kind: str, handler: Handler) -> None:
    """The handler of effects of this kind (one per kind; registering again replaces it)."""
    HANDLERS[kind] = handler


class PermanentEffectError(Exception):
    """An effect that cannot succeed by retrying (e.g. an unknown kind): dead at once."""


def backoff(attempt: int) -> timedelta:
    """Exponential backoff with full jitter, capped: ~5 s, 10 s, 20 s, 40 s ... at most 10 min."""
    return exponential_backoff(
        attempt,
        base_seconds=settings.OUTBOX_RETRY_BASE_SECONDS,
        max_seconds=settings.OUTBOX_RETRY_MAX_SECONDS,
    )


def effect_claim(*, effect_id: int, now: datetime) -> OutboxEffect | None:
    """Take an effect for execution, counting the attempt in its own committed transaction, so
    that a worker that dies while executing still used up an attempt (poison effects end dead)."""
    lease = timedelta(seconds=settings.OUTBOX_LEASE_SECONDS)
    with transaction.atomic(durable=True):
        # Lock the outbox row only (of=self): the enrolment row is the dispatcher's to lock.
        effect = (
            OutboxEffect.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("enrolment")
            .filter(pk=effect_id)
            .first()
        )
        if effect is None:
            logger.info("effect %s not claimed: missing, or held by another worker", effect_id)
            return None
        if effect.status in (EffectStatus.DONE, EffectStatus.DEAD):
            return None
        if (
            effect.status == EffectStatus.RUNNING
            and effect.claimed_at
            and (effect.claimed_at > now - lease)
        ):
            logger.info("effect %s not claimed: another worker holds its lease", effect_id)
            return None
        if effect.available_at > now:
            logger.info("effect %s not claimed: next attempt at %s", effect_id, effect.available_at)
            return None  # backing off; the sweeper publishes it again when it is due
        if effect.attempts >= settings.OUTBOX_MAX_ATTEMPTS:
            _park_dead(effect, now, f"gave up after {effect.attempts} attempts")
            return None
        effect.attempts += 1
        effect.status = EffectStatus.RUNNING
        effect.claimed_at = now
        effect.save(update_fields=["attempts", "status", "claimed_at", "updated_at"])
        return effect


def _park_dead(effect: OutboxEffect, now: datetime, why: str) -> None:
    effect.status = EffectStatus.DEAD
    effect.done_at = now
    effect.last_error = append_error(effect.last_error, why)
    effect.save(update_fields=["status", "done_at", "last_error", "updated_at"])
    logger.error("outbox effect %s (%s) is dead: %s", effect.pk, effect.kind, why)


def effect_execute(*, effect_id: int) -> str:
    """Run one outbox effect at its clinic's now (a sandbox clinic's test clock, ADR 0024);
    returns its status afterwards ("skipped" if not claimable)."""
    if clock.replaying():
        return _effect_execute(effect_id=effect_id)
    clinic_id = (
        OutboxEffect.objects.filter(pk=effect_id, enrolment__clinic__is_sandbox=True)
        .values_list("enrolment__clinic_id", flat=True)
        .first()
    )
    with clinic_time(clinic_id):
        return _effect_execute(effect_id=effect_id)


def _effect_execute(*, effect_id: int) -> str:
    now = clock.now()
    claimed = effect_claim(effect_id=effect_id, now=now)
    if claimed is None:
        return "skipped"
    try:
        with transaction.atomic(durable=True):
            effect = (
                OutboxEffect.objects.select_for_update(of=("self",))
                .select_related("enrolment")
                .get(pk=effect_id)
            )
            if effect.status != EffectStatus.RUNNING or effect.attempts != claimed.attempts:
                return "skipped"  # the lease expired and another worker took it
            handler = HANDLERS.get(effect.kind)
            if handler is None:
                raise PermanentEffectError(f"no handler for effect kind '{effect.kind}'")
            handler(effect, now)
            effect.status = EffectStatus.DONE
            effect.done_at = clock.now()
            effect.save(update_fields=["status", "done_at", "updated_at"])
            return EffectStatus.DONE
    except Exception as exc:
        return effect_failed(effect_id=effect_id, error=exc)


def effect_failed(*, effect_id: int, error: BaseException) -> str:
    now = clock.now()
    message = f"attempt failed: {type(error).__name__}: {error}"
    with transaction.atomic(durable=True):
        effect = OutboxEffect.objects.select_for_update().get(pk=effect_id)
        if effect.status != EffectStatus.RUNNING:
            return str(effect.status)
        if isinstance(error, PermanentEffectError) or (
            effect.attempts >= settings.OUTBOX_MAX_ATTEMPTS
        ):
            effect.last_error = append_error(effect.last_error, message)
            _park_dead(effect, now, f"attempt {effect.attempts} of {settings.OUTBOX_MAX_ATTEMPTS}")
            return EffectStatus.DEAD
        effect.status = EffectStatus.RETRY
        effect.available_at = now + backoff(effect.attempts)
        effect.last_error = append_error(effect.last_error, message)
        effect.save(update_fields=["status", "available_at", "last_error", "updated_at"])
        logger.warning(
            "outbox effect %s (%s) failed, attempt %s/%s, retry at %s",
            effect.pk,
            effect.kind,
            effect.attempts,
            settings.OUTBOX_MAX_ATTEMPTS,
            effect.available_at.isoformat(),
        )
        return EffectStatus.RETRY


@transaction.atomic(durable=True)
def effect_resend(*, effect_id: int) -> OutboxEffect:
    """Staff action on a dead effect: give it a fresh set of attempts and publish it."""
    effect = OutboxEffect.objects.select_for_update().get(pk=effect_id)
    if effect.status != EffectStatus.DEAD:
        raise Conflict(f"Only a dead effect can be resent (this one is {effect.status}).")
    effect.status = EffectStatus.PENDING
    effect.attempts = 0
    effect.available_at = clock.now()
    effect.done_at = None
    effect.save(update_fields=["status", "attempts", "available_at", "done_at", "updated_at"])
    publish_after_commit([effect.pk])
    return effect
