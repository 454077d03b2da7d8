"""The scheduler: fire due pathway timers. Safe to run twice at once (SKIP LOCKED claims, and
each timer's event key is the timer's id, so a timer fires once whatever happens).

A timer whose dispatch raises is isolated (a savepoint per timer: the batch's other timers still
fire), its attempt counted and its error kept, and it waits for its retry (`next_attempt_at`,
exponential backoff with jitter) outside the claim; after TIMER_MAX_ATTEMPTS it is dead: out of
the claim for good, a coordinator task on the patient, and a Retry in the admin. A `Conflict`
(the pathway locked by a change in progress, or paused) is no failure: the timer stays due and
is tried again on the next run, no attempt counted."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.db.models.functions import Coalesce

from carehub.clinics.clock import exclude_sandboxes
from carehub.core import clock
from carehub.core.exceptions import Conflict, NotFound
from carehub.core.retry import append_error, exponential_backoff
from carehub.pathways.dispatch.service import DispatchRequest, dispatch_in_transaction
from carehub.pathways.models import EnrolmentStatus, PathwayTimer, TimerStatus
from carehub.worklists.models import Priority
from carehub.worklists.services import care_task_create

logger = logging.getLogger(__name__)

DEAD_TIMER_DISCIPLINE = "coordinator"


def backoff(attempt: int) -> timedelta:
    """Delay before the next try after `attempt` failures: ~10 s, 20 s, 40 s ... at most 10 min."""
    return exponential_backoff(
        attempt,
        base_seconds=settings.TIMER_RETRY_BASE_SECONDS,
        max_seconds=settings.TIMER_RETRY_MAX_SECONDS,
    )


def due_timers_query(
    now: datetime, batch_size: int, *, clinic_id: int | None = None
) -> QuerySet[PathwayTimer]:
    """The claim: the pending timers that may fire by `now` (a failed one from its retry time,
    the others from their due time), oldest first, that nobody else holds (the partial index on
    that time). The wall clock's claim leaves sandbox clinics out; an advance of a sandbox's
    test clock claims that clinic's alone (`clinic_id`, ADR 0024)."""
    timers = PathwayTimer.objects.select_for_update(skip_locked=True, of=("self",))
    if clinic_id is None:
        timers = timers.filter(exclude_sandboxes("enrolment__clinic_id"))
    else:
        timers = timers.filter(enrolment__clinic_id=clinic_id)
    return (
        timers.alias(fire_at=Coalesce("next_attempt_at", "due_at"))
        .filter(status=TimerStatus.PENDING, fire_at__lte=now)
        .order_by("fire_at")[:batch_size]
    )


def timers_fire_due(
    *, now: datetime | None = None, batch_size: int = 100, clinic_id: int | None = None
) -> int:
    """Fire every timer due by `now`, batch by batch; returns how many fired (of one sandbox
    clinic when its test clock is advanced: `clinic_id`)."""
    fired = 0
    while True:
        count, failed, busy = _fire_batch(
            now=now or clock.now(), batch_size=batch_size, clinic_id=clinic_id
        )
        fired += count
        if count + failed + busy < batch_size:
            return fired
        if count + failed == 0:
            return fired  # the rest belong to pathways being changed right now: next run


def _fire_batch(
    *, now: datetime, batch_size: int, clinic_id: int | None = None
) -> tuple[int, int, int]:
    """One claim: (fired, failed, busy). A failed timer is rescheduled past `now`, so the next
    claim does not take it again."""
    fired = failed = busy = 0
    with transaction.atomic(durable=True):
        for timer in due_timers_query(now, batch_size, clinic_id=clinic_id):
            try:
                with transaction.atomic():  # a savepoint: a failure undoes this timer only
                    dispatch_in_transaction(
                        DispatchRequest(
                            enrolment_id=timer.enrolment_id,
                            event=timer.event,
                            idempotency_key=f"timer:{timer.pk}",
                            timer_key=timer.key,
                            timer_due_at=timer.due_at,
                            at=now,
                        )
                    )
                    # Fired, whatever the engine made of it (a stale timer changes nothing).
                    PathwayTimer.objects.filter(pk=timer.pk, status=TimerStatus.PENDING).update(
                        status=TimerStatus.FIRED, closed_at=now
                    )
                fired += 1
            except Conflict:
                busy += 1  # the pathway is locked or paused: the timer stays due, not counted
            except Exception as exc:
                failed += 1
                _timer_failed(timer, exc, now)
    return fired, failed, busy


def _timer_failed(timer: PathwayTimer, error: Exception, now: datetime) -> None:
    """Count the failed attempt and keep the error; retry later, or dead after the last one."""
    timer.attempts += 1
    timer.last_error = append_error(
        timer.last_error,
        f"{now.isoformat()} attempt {timer.attempts}: {type(error).__name__}: {error}",
    )
    if timer.attempts >= settings.TIMER_MAX_ATTEMPTS:
        timer.status = TimerStatus.DEAD
        timer.next_attempt_at = None
        timer.closed_at = now
        timer.save(
            update_fields=[
                "attempts",
                "last_error",
                "status",
                "next_attempt_at",
                "closed_at",
                "updated_at",
            ]
        )
        logger.error(
            "timer %s (%s) is dead after %s attempts: %s: %s",
            timer.pk,
            timer.key,
            timer.attempts,
            type(error).__name__,
            error,
            exc_info=error,
        )
        _alert_dead(timer, now)
        return
    timer.next_attempt_at = now + backoff(timer.attempts)
    timer.save(update_fields=["attempts", "last_error", "next_attempt_at", "updated_at"])
    logger.warning(
        "timer %s (%s) could not fire, attempt %s/%s, retry at %s",
        timer.pk,
        timer.key,
        timer.attempts,
        settings.TIMER_MAX_ATTEMPTS,
        timer.next_attempt_at.isoformat(),
        exc_info=error,
    )


def _alert_dead(timer: PathwayTimer, now: datetime) -> None:
    """An urgent task on the coordinators' worklist, on the patient: the pathway step the timer
    stood for has not happened, and someone has to look (and retry the timer in the admin)."""
    care_task_create(
        enrolment=timer.enrolment,
        discipline=DEAD_TIMER_DISCIPLINE,
        title=(
            f"Pathway timer '{timer.key}' (due {timer.due_at:%Y-%m-%d %H:%M}) could not fire: "
            "check the pathway, then retry the timer in the admin"
        ),
        due_at=now,
        priority=Priority.URGENT,
    )


@transaction.atomic(durable=True)
def timer_retry(*, timer_id: int, at: datetime | None = None) -> PathwayTimer:
    """Staff action on a dead timer: a fresh set of attempts, due at once (suspended instead if
    the pathway is paused: it fires when the pathway resumes)."""
    now = at or clock.now()
    timer = (
        PathwayTimer.objects.select_for_update(of=("self",))
        .select_related("enrolment")
        .filter(pk=timer_id)
        .first()
    )
    if timer is None:
        raise NotFound("No such pathway timer.")
    if timer.status != TimerStatus.DEAD:
        raise Conflict(f"Only a dead timer can be retried (this one is {timer.status}).")
    if timer.enrolment.status == EnrolmentStatus.COMPLETED:
        raise Conflict("This pathway has ended; its timer cannot fire any more.")
    paused = timer.enrolment.status == EnrolmentStatus.PAUSED
    timer.status = TimerStatus.SUSPENDED if paused else TimerStatus.PENDING
    timer.attempts = 0
    timer.next_attempt_at = now
    timer.closed_at = None
    try:
        with transaction.atomic():
            timer.save(
                update_fields=["status", "attempts", "next_attempt_at", "closed_at", "updated_at"]
            )
    except IntegrityError as exc:  # timer_one_pending_per_kind
        raise Conflict(
            f"The pathway has started another '{timer.key}' timer since; this one stays dead."
        ) from exc
    logger.info("timer %s (%s) retried by staff", timer.pk, timer.key)
    return timer


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
                DispatchRequest(
                    enrolment_id=enrolment_id,
                    event=timer.event,
                    idempotency_key=f"timer:{timer.pk}",
                    timer_key=timer.key,
                    timer_due_at=timer.due_at,
                    at=timer.due_at,
                )
            )
            PathwayTimer.objects.filter(pk=timer.pk, status=TimerStatus.PENDING).update(
                status=TimerStatus.FIRED, closed_at=timer.due_at
            )
            fired += 1
