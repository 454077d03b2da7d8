"""The timer scheduler: due timers fire once, concurrently run schedulers share the work, and the
claim query walks the partial index."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone

from carehub.pathways.models import Enrolment, PathwayStep, PathwayTimer, TimerStatus
from carehub.pathways.scheduler import due_timers_query, timers_fire_due
from carehub.pathways.services import enrolment_pause, enrolment_start
from carehub.patients.models import Patient
from carehub.patients.services import patient_register
from tests.support.db_roles import analyze


def test_due_timer_fires_its_event_once(enrolment: Enrolment) -> None:
    timer = PathwayTimer.objects.get(enrolment=enrolment, key="pt.programme_review")
    assert timers_fire_due(now=timer.due_at - timedelta(seconds=1)) == 0
    assert timers_fire_due(now=timer.due_at) == 1
    timer.refresh_from_db()
    assert timer.status == TimerStatus.FIRED
    enrolment.refresh_from_db()
    assert enrolment.state_of("pt") == "review"
    step = PathwayStep.objects.filter(enrolment=enrolment).latest("id")
    assert (step.event, step.event_key) == ("pt_review_due", f"timer:{timer.pk}")
    assert timers_fire_due(now=timer.due_at + timedelta(days=1)) == 0


def test_timers_of_a_paused_pathway_do_not_fire(enrolment: Enrolment) -> None:
    enrolment_pause(enrolment_id=enrolment.pk, reason="Holiday")
    assert timers_fire_due(now=timezone.now() + timedelta(weeks=52)) == 0
    enrolment.refresh_from_db()
    assert enrolment.state_of("pt") == "active"


@pytest.mark.django_db(transaction=True)
def test_two_schedulers_at_once_fire_each_timer_exactly_once(clinic, staff) -> None:  # type: ignore[no-untyped-def]
    enrolments = []
    for n in range(30):
        patient = patient_register(
            clinic=clinic, mrn=f"S-{n}", given_name="S", family_name=str(n), time_zone="UTC"
        )
        enrolments.append(enrolment_start(patient=patient, definition_key="stepped-care-example"))
    later = timezone.now() + timedelta(weeks=7)
    barrier = threading.Barrier(2)
    fired: list[int] = []

    def run() -> None:
        try:
            barrier.wait()
            fired.append(timers_fire_due(now=later, batch_size=5))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Each timer fired once in total; leftovers (a pathway locked by the other run) fire next time.
    fired.append(timers_fire_due(now=later))
    assert sum(fired) == 30
    assert PathwayTimer.objects.filter(status=TimerStatus.FIRED).count() == 30
    for enrolment in enrolments:
        steps = PathwayStep.objects.filter(enrolment=enrolment, event="pt_review_due")
        assert steps.count() == 1
        enrolment.refresh_from_db()
        assert enrolment.state_of("pt") == "review"


@pytest.mark.django_db
def test_the_claim_uses_the_partial_index_not_a_sequential_scan(enrolment: Enrolment) -> None:
    query = due_timers_query(timezone.now(), 100)
    sql, params = query.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # small table: show the usable plan
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "timer_pending_due" in plan
    assert "Seq Scan" not in plan


def test_claim_plan_without_hints_on_a_realistic_table(
    patient: Patient, enrolment: Enrolment
) -> None:
    """With many closed timers and few pending ones, the planner picks the partial index."""
    now = timezone.now()
    PathwayTimer.objects.bulk_create(
        PathwayTimer(
            enrolment=enrolment, key=f"old.{n}", track="pt", state="active", event="pt_review_due",
            due_at=now - timedelta(days=n % 400), status=TimerStatus.FIRED, closed_at=now,
        )
        for n in range(20000)
    )  # fmt: skip
    with connection.cursor() as cursor:
        analyze("pathways_pathwaytimer")  # as the owner: the application may not
        sql, params = due_timers_query(now, 100).query.sql_with_params()
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "timer_pending_due" in plan, plan
    assert "Seq Scan" not in plan, plan
