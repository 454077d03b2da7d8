"""Test clocks of sandbox clinics (ADR 0024): asking for an advance, and running it.

A sandbox clinic's time is its test clock (`Clinic.test_clock_at`), which only its admin moves,
forward, by at most `MAX_ADVANCE` at a time. Asking (`sandbox_clock_advance`, from the page or the
API) takes the clinic's advance slot (`Clinic.advance_to`: one advance at a time, a second one
is a 409) and publishes the Celery task that runs it (`sandbox_clock_advance_run`).

The run does for that clinic alone what the real scheduler does for production clinics, at the
moments it would have done it: from the clock's time it steps to the next moment something of
the clinic falls due (a pathway timer, a check-in to open or to close, a message to send, an
effect to retry, a task reminder, a digest, a session note overdue), moves the clock there
(`carehub.core.clock.replay`, as the demo's histories do) and runs the scheduler's own code
paths restricted to the clinic (`timers_fire_due`, `checkins_open_due`,
`checkins_close_expired`, `messages_send`, ...), until the target. The clinic's stored clock
follows each step, so its pages show the advance going on, and a worker running one of its
effects or messages meanwhile reads the same moment.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Min, Q
from django.db.models.functions import Coalesce

from carehub.accounts.models import User
from carehub.checkins.models import Checkin, CheckinStatus
from carehub.checkins.services import checkins_close_expired, checkins_open_due
from carehub.clinics.models import Clinic
from carehub.core import clock
from carehub.core.exceptions import Conflict, InvalidInput
from carehub.core.publish import task_named
from carehub.integrations.sender import webhooks_send
from carehub.messaging.delivery import messages_send
from carehub.messaging.models import (
    DUE_STATUSES,
    Message,
    MessageStatus,
    StaffNotificationPreference,
)
from carehub.messaging.policy import local_instants
from carehub.messaging.services import digests_compile, task_reminders_send
from carehub.observations.models import Kind, Observation
from carehub.pathways.effects import effect_execute
from carehub.pathways.models import EffectStatus, OutboxEffect, PathwayTimer, TimerStatus
from carehub.pathways.scheduler import timers_fire_due
from carehub.worklists.models import CareTask, TaskStatus
from carehub.worklists.services import session_notes_overdue_tasks

logger = logging.getLogger(__name__)

# The longest single advance (a year and a day: a leap year's worth); more is refused.
MAX_ADVANCE = timedelta(days=366)
# An advance slot older than this (real time) is taken to be lost (a worker killed for good).
STALE_AFTER = timedelta(hours=1)
# A run stops with an error past this many stops (a runaway loop, never a real clinic).
MAX_STEPS = 100_000
# pg_try_advisory_lock's first key: a run of one clinic's advance at a time.
LOCK_NAMESPACE = 240_024
# Messages a worker would send now: due ones, and those queued when created (due at once).
SENDABLE = (*DUE_STATUSES, MessageStatus.QUEUED)
SEND_BATCH = 100


class NotASandbox(Conflict):
    """A production clinic lives on the wall clock: it has no test clock to move."""

    code = "not_a_sandbox"


class AdvanceInProgress(Conflict):
    """The clinic's test clock is being advanced already: one advance at a time."""

    code = "advance_in_progress"


# --- asking for an advance -------------------------------------------------------------------


def advance_target(*, now: datetime, to: datetime | None, by: timedelta | None) -> datetime:
    """Where an advance from `now` goes: `to`, or `now + by` (exactly one of them), forward and
    by at most MAX_ADVANCE; InvalidInput naming the field otherwise."""
    if (to is None) == (by is None):
        raise InvalidInput(
            "Give either `to` (a moment) or `by` (a duration such as P2W), not both.",
            extra={"fields": {"to": "exactly one of to, by", "by": "exactly one of to, by"}},
        )
    field = "to" if to is not None else "by"
    if to is not None and to.tzinfo is None:
        raise InvalidInput(
            "Give the moment with its offset (e.g. 2027-03-01T09:00:00+00:00).",
            extra={"fields": {"to": "needs an offset"}},
        )
    target = to if to is not None else now + by  # type: ignore[operator]
    if target < now:
        raise InvalidInput(
            f"A test clock only moves forward: it is at {now.isoformat()}.",
            extra={"fields": {field: "before the test clock"}, "test_clock": now.isoformat()},
        )
    if target - now > MAX_ADVANCE:
        raise InvalidInput(
            f"One advance moves the clock by at most {MAX_ADVANCE.days} days; advance in steps.",
            extra={"fields": {field: f"more than {MAX_ADVANCE.days} days"}},
        )
    return target


def sandbox_clock_advance(
    *, clinic_id: int, user: User | None, to: datetime | None = None, by: timedelta | None = None
) -> Clinic:
    """Ask for the sandbox clinic's test clock to be moved to `to` (or by `by`): takes the
    clinic's advance slot and publishes the task that runs the advance once this commits.
    NotASandbox (409) for a production clinic, AdvanceInProgress (409) while another advance
    runs, InvalidInput (400) for a target backwards or too far."""
    with transaction.atomic(durable=not connection.in_atomic_block):
        clinic = Clinic.objects.select_for_update(of=("self",)).get(pk=clinic_id)
        if not clinic.is_sandbox:
            raise NotASandbox(
                f"{clinic.name} is a production clinic: it lives on the real clock. Only a "
                "sandbox clinic has a test clock.",
            )
        assert clinic.test_clock_at is not None
        requested = clinic.advance_requested_at
        if clinic.advance_to is not None and (
            requested is None or requested > clock.wall_now() - STALE_AFTER
        ):
            raise AdvanceInProgress(
                "The test clock is being advanced already; try again when it has finished.",
                extra={"current": _state(clinic)},
            )
        target = advance_target(now=clinic.test_clock_at, to=to, by=by)
        clinic.advance_to = target
        clinic.advance_requested_at = clock.wall_now()
        clinic.advance_requested_by = user
        clinic.advance_error = ""
        clinic.save(
            update_fields=[
                "advance_to",
                "advance_requested_at",
                "advance_requested_by",
                "advance_error",
                "updated_at",
            ]
        )
        transaction.on_commit(lambda: _publish(clinic_id), robust=True)
    return clinic


# carehub.sandbox.tasks.sandbox_clock_advance_task, published by name (that module imports this).
TEST_CLOCK_ADVANCE = "carehub.sandbox.test_clock_advance"


def _publish(clinic_id: int) -> None:
    task_named(TEST_CLOCK_ADVANCE).delay(clinic_id)


def _state(clinic: Clinic) -> dict[str, str | None]:
    return {
        "test_clock_at": clinic.test_clock_at.isoformat() if clinic.test_clock_at else None,
        "advancing_to": clinic.advance_to.isoformat() if clinic.advance_to else None,
    }


# --- running an advance ----------------------------------------------------------------------


@contextmanager
def _run_lock(clinic_id: int) -> Iterator[bool]:
    """One run per clinic at a time (a task delivered twice): a session-level advisory lock,
    which PostgreSQL releases by itself if the worker dies."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [LOCK_NAMESPACE, clinic_id])
        held = bool(cursor.fetchone()[0])
    try:
        yield held
    finally:
        if held:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [LOCK_NAMESPACE, clinic_id])


def sandbox_clock_advance_run(*, clinic_id: int) -> int:
    """Run the clinic's advance (the task's body): every stop up to its target in order.
    Returns the number of stops; 0 when there is nothing to run or another run holds it. A
    failure keeps its error on the clinic and frees the slot (the clock stays where the last
    stop left it; the admin may advance again)."""
    if connection.in_atomic_block:
        raise RuntimeError("an advance runs its own transactions")
    with _run_lock(clinic_id) as held:
        if not held:
            return 0
        clinic = Clinic.objects.filter(pk=clinic_id, is_sandbox=True).first()
        if clinic is None or clinic.advance_to is None:
            return 0
        target = clinic.advance_to
        try:
            steps = _advance(clinic, target)
        except Exception as exc:
            logger.exception("advancing the test clock of clinic %s failed", clinic_id)
            Clinic.objects.filter(pk=clinic_id, advance_to=target).update(
                advance_to=None, advance_error=f"{type(exc).__name__}: {exc}"[:2000]
            )
            raise
        Clinic.objects.filter(pk=clinic_id, advance_to=target).update(
            advance_to=None, advance_error=""
        )
        logger.info(
            "test clock of clinic %s advanced to %s in %s stop(s)",
            clinic_id,
            target.isoformat(),
            steps,
        )
        return steps


def _advance(clinic: Clinic, target: datetime) -> int:
    assert clinic.test_clock_at is not None
    start = clinic.test_clock_at
    steps = 0
    with clock.replay(start) as replay:
        run_due(clinic.pk, start)
        while (due := next_due(clinic.pk, after=replay.at)) is not None and due <= target:
            _move(clinic.pk, replay, due)
            run_due(clinic.pk, due)
            steps += 1
            if steps > MAX_STEPS:
                raise RuntimeError(f"more than {MAX_STEPS} stops before {target.isoformat()}")
        if target > replay.at:
            _move(clinic.pk, replay, target)
            run_due(clinic.pk, target)
            steps += 1
    return steps


def _move(clinic_id: int, replay: clock.ReplayClock, moment: datetime) -> None:
    """The clinic's clock first (a worker running its effects or messages reads it), then the
    run's."""
    Clinic.objects.filter(pk=clinic_id).update(test_clock_at=moment)
    replay.move_to(moment)


def run_due(clinic_id: int, now: datetime) -> None:
    """What the scheduler's periodic tasks do at `now`, for one clinic: the same services."""
    timers_fire_due(now=now, clinic_id=clinic_id)
    _run_effects(clinic_id, now)
    checkins_open_due(now=now, clinic_id=clinic_id)
    checkins_close_expired(now=now, clinic_id=clinic_id)
    session_notes_overdue_tasks(now=now, clinic_id=clinic_id)
    _run_effects(clinic_id, now)
    task_reminders_send(now, clinic_id=clinic_id)
    digests_compile(now=now, clinic_id=clinic_id)
    _send_due(clinic_id, now)
    webhooks_send(clinic_id=clinic_id)


def _run_effects(clinic_id: int, now: datetime) -> None:
    """The effects the outbox would have a worker run by now (pending, or due to retry)."""
    due = OutboxEffect.objects.filter(
        enrolment__clinic_id=clinic_id,
        status__in=[EffectStatus.PENDING, EffectStatus.RETRY],
        available_at__lte=now,
    ).order_by("pk")
    for effect_id in list(due.values_list("pk", flat=True)):
        effect_execute(effect_id=effect_id)


def _send_due(clinic_id: int, now: datetime) -> None:
    """The messages the dispatcher would queue by now and a worker send, sent here."""
    due = list(
        Message.objects.filter(clinic_id=clinic_id, status__in=SENDABLE, not_before__lte=now)
        .order_by("not_before", "pk")
        .values_list("pk", flat=True)
    )
    for start in range(0, len(due), SEND_BATCH):
        messages_send(message_ids=due[start : start + SEND_BATCH])


def next_due(clinic_id: int, *, after: datetime) -> datetime | None:
    """The next moment after `after` something of the clinic falls due: what the scheduler's
    periodic tasks would find then."""
    candidates: list[datetime | None] = [
        PathwayTimer.objects.filter(enrolment__clinic_id=clinic_id, status=TimerStatus.PENDING)
        .annotate(fire_at=Coalesce("next_attempt_at", "due_at"))
        .filter(fire_at__gt=after)
        .aggregate(m=Min("fire_at"))["m"],
        OutboxEffect.objects.filter(
            enrolment__clinic_id=clinic_id,
            status__in=[EffectStatus.PENDING, EffectStatus.RETRY],
            available_at__gt=after,
        ).aggregate(m=Min("available_at"))["m"],
        Message.objects.filter(
            clinic_id=clinic_id, status__in=SENDABLE, not_before__gt=after
        ).aggregate(m=Min("not_before"))["m"],
    ]
    checkins = Checkin.objects.filter(enrolment__clinic_id=clinic_id).aggregate(
        open=Min("due_at", filter=Q(status=CheckinStatus.SCHEDULED, due_at__gt=after)),
        close=Min("closes_at", filter=Q(status=CheckinStatus.OPEN, closes_at__gt=after)),
    )
    candidates += [checkins["open"], checkins["close"]]
    candidates += [_task_reminder_due(clinic_id, after), _digest_due(clinic_id, after)]
    candidates.append(_session_note_due(clinic_id, after))
    due = [moment for moment in candidates if moment is not None]
    return min(due) if due else None


def _next_local_midnight(zone: ZoneInfo, after: datetime) -> datetime:
    day = after.astimezone(zone).date() + timedelta(days=1)
    return local_instants(day, datetime.min.time(), zone)[0]


def _task_reminder_due(clinic_id: int, after: datetime) -> datetime | None:
    """A task comes within 24 hours of its due time; an overdue one is reminded of once a local
    day (the next local midnight)."""
    open_tasks = CareTask.objects.filter(
        clinic_id=clinic_id, status=TaskStatus.OPEN, due_at__isnull=False
    )
    coming = open_tasks.filter(due_at__gt=after + timedelta(hours=24)).aggregate(m=Min("due_at"))
    moments = [coming["m"] - timedelta(hours=24)] if coming["m"] else []
    if open_tasks.filter(due_at__lte=after + timedelta(hours=24)).exists():
        zone = ZoneInfo(Clinic.objects.get(pk=clinic_id).time_zone)
        moments.append(_next_local_midnight(zone, after))
    return min(moments) if moments else None


def _digest_due(clinic_id: int, after: datetime) -> datetime | None:
    """The next digest hour of a reader with routine messages held for their digest."""
    waiting = Message.objects.filter(
        clinic_id=clinic_id, status=MessageStatus.HELD_FOR_DIGEST, digest__isnull=True
    ).values("to_staff_id")
    readers = StaffNotificationPreference.objects.filter(
        staff_id__in=waiting, daily_digest=True
    ).values_list("digest_hour", flat=True)
    hours = set(readers)
    if not hours:
        return None
    zone = ZoneInfo(Clinic.objects.get(pk=clinic_id).time_zone)
    local = after.astimezone(zone).date()
    moments = []
    for hour in hours:
        for day in (local, local + timedelta(days=1)):
            moment = local_instants(day, hour, zone)[0]
            if moment > after:
                moments.append(moment)
                break
    return min(moments) if moments else None


def _session_note_due(clinic_id: int, after: datetime) -> datetime | None:
    """When an attended session without a progress note becomes overdue."""
    late = timedelta(hours=settings.SESSION_NOTES_DUE_HOURS)
    first = (
        Observation.objects.current()
        .filter(
            patient__clinic_id=clinic_id,
            kind=Kind.SESSION,
            value_bool=True,
            observed_at__gt=after - late,
        )
        .exclude(data__has_key="notes")
        .aggregate(m=Min("observed_at"))["m"]
    )
    return first + late if first is not None else None
