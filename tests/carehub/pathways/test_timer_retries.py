"""A timer whose dispatch keeps failing: isolated, retried with backoff outside the claim, dead
after TIMER_MAX_ATTEMPTS with one coordinator task, revived by the admin's Retry; a pathway
locked by a change in progress is no failure.

The poison timers point at an event their pathway's definition does not know: the real dispatch
refuses them (the engine's `UnknownEvent`), nothing is mocked."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
from django.db import connections
from django.test import Client
from django.utils import timezone

from carehub.accounts.models import User
from carehub.pathways.models import Enrolment, EnrolmentStatus, PathwayTimer, TimerStatus
from carehub.pathways.scheduler import timers_fire_due
from carehub.pathways.services import enrolment_pause, enrolment_resume
from carehub.worklists.models import CareTask, Priority

POISON_EVENT = "no_such_event"


def poison(enrolment: Enrolment, due_at: datetime, count: int = 1) -> list[PathwayTimer]:
    return PathwayTimer.objects.bulk_create(
        PathwayTimer(
            enrolment=enrolment, key=f"poison.{n}", track="pt", state="active",
            event=POISON_EVENT, due_at=due_at,
        )
        for n in range(count)
    )  # fmt: skip


def good_timer(enrolment: Enrolment) -> PathwayTimer:
    return PathwayTimer.objects.get(enrolment=enrolment, key="pt.programme_review")


def dead_timer_tasks(enrolment: Enrolment) -> list[CareTask]:
    return list(CareTask.objects.filter(enrolment=enrolment, title__startswith="Pathway timer"))


@pytest.fixture
def other_enrolment(clinic) -> Enrolment:  # type: ignore[no-untyped-def]
    from carehub.pathways.services import enrolment_start
    from carehub.patients.services import patient_register

    patient = patient_register(
        clinic=clinic, mrn="P-2", given_name="Other", family_name="Patient", time_zone="UTC"
    )
    return enrolment_start(patient=patient, definition_key="stepped-care-example")


def test_a_batch_of_poison_timers_does_not_delay_a_good_one(
    enrolment: Enrolment, other_enrolment: Enrolment
) -> None:
    good = good_timer(enrolment)
    poison(other_enrolment, good.due_at - timedelta(days=1), count=150)
    assert timers_fire_due(now=good.due_at) == 1  # one sweep, batches of 100
    good.refresh_from_db()
    assert good.status == TimerStatus.FIRED
    enrolment.refresh_from_db()
    assert enrolment.state_of("pt") == "review"
    failed = PathwayTimer.objects.filter(event=POISON_EVENT)
    assert {(t.status, t.attempts) for t in failed} == {(TimerStatus.PENDING, 1)}
    assert all(t.next_attempt_at and t.next_attempt_at > good.due_at for t in failed)


def test_a_poison_timer_backs_off_then_is_dead_with_one_coordinator_task(
    enrolment: Enrolment, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.TIMER_MAX_ATTEMPTS = 4
    settings.TIMER_RETRY_BASE_SECONDS = 10
    settings.TIMER_RETRY_MAX_SECONDS = 25
    due = good_timer(enrolment).due_at - timedelta(days=1)
    (timer,) = poison(enrolment, due)
    now = due
    for attempt in range(1, 4):
        timers_fire_due(now=now)
        timer.refresh_from_db()
        assert (timer.status, timer.attempts) == (TimerStatus.PENDING, attempt)
        assert timer.due_at == due  # the clinical due time stays as it was
        assert timer.next_attempt_at is not None
        # Backoff with jitter: the upper half of base * 2^(attempt-1), capped.
        ceiling = min(10 * 2 ** (attempt - 1), 25)
        assert ceiling / 2 <= (timer.next_attempt_at - now).total_seconds() <= ceiling
        timers_fire_due(now=timer.next_attempt_at - timedelta(seconds=1))  # not yet
        timer.refresh_from_db()
        assert timer.attempts == attempt
        now = timer.next_attempt_at
    assert dead_timer_tasks(enrolment) == []
    timers_fire_due(now=now)
    timer.refresh_from_db()
    assert (timer.status, timer.attempts, timer.next_attempt_at) == (TimerStatus.DEAD, 4, None)
    assert timer.last_error.count(POISON_EVENT) == 4
    assert "attempt 4: InvalidInput" in timer.last_error
    (task,) = dead_timer_tasks(enrolment)
    assert (task.discipline, task.priority, task.patient_id) == (
        "coordinator", Priority.URGENT, enrolment.patient_id,
    )  # fmt: skip
    assert "poison.0" in task.title
    # Dead: never claimed again, and no second alert.
    timers_fire_due(now=now + timedelta(days=30))
    timer.refresh_from_db()
    assert (timer.status, timer.attempts) == (TimerStatus.DEAD, 4)
    assert len(dead_timer_tasks(enrolment)) == 1


def make_dead(enrolment: Enrolment, settings) -> PathwayTimer:  # type: ignore[no-untyped-def]
    settings.TIMER_MAX_ATTEMPTS = 1
    (timer,) = poison(enrolment, timezone.now() - timedelta(minutes=1))
    timers_fire_due(now=timezone.now())
    timer.refresh_from_db()
    assert timer.status == TimerStatus.DEAD
    return timer


def test_the_admin_retry_action_gives_a_dead_timer_fresh_attempts(
    enrolment: Enrolment, settings
) -> None:  # type: ignore[no-untyped-def]
    timer = make_dead(enrolment, settings)
    settings.TIMER_MAX_ATTEMPTS = 3
    admin = User.objects.create_superuser(username="root", password=None)
    client = Client()
    client.force_login(admin)
    listing = client.get("/admin/pathways/pathwaytimer/?status__exact=dead")
    assert listing.status_code == 200
    assert "poison.0" in listing.content.decode()
    client.post(
        "/admin/pathways/pathwaytimer/",
        {"action": "retry_dead", "_selected_action": [timer.pk]},
    )
    timer.refresh_from_db()
    assert (timer.status, timer.attempts, timer.closed_at) == (TimerStatus.PENDING, 0, None)
    assert POISON_EVENT in timer.last_error  # the history of what went wrong stays
    # Claimed again at once, and it has its full set of attempts.
    timers_fire_due(now=timezone.now())
    timer.refresh_from_db()
    assert (timer.status, timer.attempts) == (TimerStatus.PENDING, 1)


def test_retry_refuses_a_timer_that_is_not_dead_and_suspends_on_a_paused_pathway(
    enrolment: Enrolment, settings
) -> None:  # type: ignore[no-untyped-def]
    from carehub.core.exceptions import Conflict
    from carehub.pathways.scheduler import timer_retry

    with pytest.raises(Conflict):
        timer_retry(timer_id=good_timer(enrolment).pk)
    timer = make_dead(enrolment, settings)
    enrolment_pause(enrolment_id=enrolment.pk, reason="Hospital stay")
    timer_retry(timer_id=timer.pk)
    timer.refresh_from_db()
    assert timer.status == TimerStatus.SUSPENDED
    enrolment_resume(enrolment_id=enrolment.pk)
    timer.refresh_from_db()
    assert timer.status == TimerStatus.PENDING
    enrolment.refresh_from_db()
    assert enrolment.status == EnrolmentStatus.ACTIVE


def test_resume_moves_a_waiting_retry_by_the_paused_time(enrolment: Enrolment) -> None:
    (timer,) = poison(enrolment, timezone.now() - timedelta(minutes=1))
    timers_fire_due(now=timezone.now())
    timer.refresh_from_db()
    retry_at = timer.next_attempt_at
    assert retry_at is not None
    start = timezone.now()
    enrolment_pause(enrolment_id=enrolment.pk, reason="Holiday", at=start)
    enrolment_resume(enrolment_id=enrolment.pk, at=start + timedelta(days=2))
    timer.refresh_from_db()
    assert timer.next_attempt_at == retry_at + timedelta(days=2)


@pytest.mark.django_db(transaction=True)
def test_a_pathway_locked_by_a_change_in_progress_costs_no_attempt(  # type: ignore[no-untyped-def]
    clinic, staff
) -> None:
    from carehub.pathways.services import enrolment_start
    from carehub.patients.services import patient_register

    patient = patient_register(
        clinic=clinic, mrn="L-1", given_name="L", family_name="Locked", time_zone="UTC"
    )
    enrolment = enrolment_start(patient=patient, definition_key="stepped-care-example")
    good = good_timer(enrolment)
    (bad,) = poison(enrolment, good.due_at - timedelta(days=1))
    locked, release = threading.Event(), threading.Event()

    def hold_the_enrolment_lock() -> None:
        try:
            with connections["default"].cursor() as cursor:
                cursor.execute("BEGIN")
                cursor.execute(
                    "SELECT id FROM pathways_enrolment WHERE id = %s FOR UPDATE", [enrolment.pk]
                )
                locked.set()
                release.wait(30)
                cursor.execute("ROLLBACK")
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_the_enrolment_lock)
    holder.start()
    try:
        assert locked.wait(30)
        assert timers_fire_due(now=good.due_at) == 0
        for timer in (good, bad):
            timer.refresh_from_db()
            assert (timer.status, timer.attempts, timer.next_attempt_at, timer.last_error) == (
                TimerStatus.PENDING, 0, None, "",
            )  # fmt: skip
    finally:
        release.set()
        holder.join()
    assert timers_fire_due(now=good.due_at) == 1
    good.refresh_from_db()
    bad.refresh_from_db()
    assert good.status == TimerStatus.FIRED
    assert bad.attempts == 1  # tried (and counted) once the lock was gone
