"""The dispatch's hand-written statements (`dispatch/sql.py`): a fixed number of round trips,
the same snapshot as the selectors, timers closed before their successors are inserted, and the
event key's guarantees (a redelivery changes nothing, even while another change holds the
lock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from carehub.accounts.models import User
from carehub.clinics.models import ClinicThreshold
from carehub.core.exceptions import Conflict
from carehub.observations.services import (
    observation_withdraw,
    procedure_record,
    score_record,
    status_record,
)
from carehub.pathways.dispatch.codec import snapshot_for, snapshot_from_rows
from carehub.pathways.dispatch.sql import DecisionRows, snapshot_rows, write_rows
from carehub.pathways.dispatch.store import timer_rows
from carehub.pathways.effects import effect_execute
from carehub.pathways.models import (
    Enrolment,
    OutboxEffect,
    PathwayStep,
    PathwayTimer,
    ProcessedEvent,
    TimerStatus,
)
from carehub.pathways.services import enrolment_start, pathway_dispatch
from carehub.patients.services import patient_register
from carehub.worklists.models import CareTask, TaskStatus
from tests.carehub.pathways.locking import locked_elsewhere
from tests.carehub.pathways.test_dispatch import make_eligible, to_conventional
from workflows.model import ActiveTimer, CancelTimer, StartTimer

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)


def _statements(ctx: CaptureQueriesContext) -> list[str]:
    return [q["sql"].split(None, 1)[0].upper() for q in ctx.captured_queries]


@pytest.mark.django_db(transaction=True)
def test_a_dispatch_is_three_statements_whatever_it_writes(clinic, staff) -> None:  # type: ignore[no-untyped-def]
    patient = patient_register(
        clinic=clinic, mrn="Q-1", given_name="Q", family_name="One", time_zone="Europe/London"
    )
    enrolment = enrolment_start(patient=patient, definition_key="stepped-care-example")
    make_eligible(patient)
    timers_before = PathwayTimer.objects.filter(enrolment=enrolment).count()
    with CaptureQueriesContext(connection) as ctx:
        result = pathway_dispatch(
            enrolment_id=enrolment.pk, event="intake_complete", idempotency_key="intake",
            user=staff["coordinator"],
        )  # fmt: skip
    assert result.outcome == "transitioned"
    # lock (with the key check), snapshot, one write of step, key, timers and outbox rows
    assert _statements(ctx) == ["BEGIN", "SELECT", "SELECT", "WITH", "COMMIT"]
    assert PathwayTimer.objects.filter(enrolment=enrolment).count() > timers_before
    assert OutboxEffect.objects.filter(enrolment=enrolment, decided_at=result.step.at).exists()
    stored = PathwayStep.objects.get(pk=result.step.pk)
    assert (stored.explanation, stored.transitions, stored.effects, stored.configuration) == (
        result.step.explanation, result.step.transitions, result.step.effects,
        result.step.configuration,
    )  # fmt: skip
    assert stored.actor_id == staff["coordinator"].pk
    enrolment.refresh_from_db()
    assert (enrolment.version, enrolment.configuration) == (
        result.enrolment.version,
        result.enrolment.configuration,
    )

    with CaptureQueriesContext(connection) as ctx:
        again = pathway_dispatch(
            enrolment_id=enrolment.pk, event="intake_complete", idempotency_key="intake"
        )
    assert again.replayed
    assert again.step == result.step
    # the lock finds the key processed (and locks nothing), the stored outcome, the enrolment
    assert _statements(ctx) == ["BEGIN", "SELECT", "SELECT", "SELECT", "COMMIT"]


@pytest.mark.django_db(transaction=True)
def test_closing_the_tasks_of_the_states_left_adds_no_statement(clinic) -> None:  # type: ignore[no-untyped-def]
    patient = patient_register(
        clinic=clinic, mrn="Q-2", given_name="Q", family_name="Two", time_zone="Europe/London"
    )
    enrolment = enrolment_start(patient=patient, definition_key="stepped-care-example")
    effect = OutboxEffect.objects.get(enrolment=enrolment, kind="create_task")
    effect_execute(effect_id=effect.pk)
    task = CareTask.objects.get(source_effect=effect)
    assert (task.status, task.track, task.state) == (TaskStatus.OPEN, "pt", "active")
    with CaptureQueriesContext(connection) as ctx:
        left = pathway_dispatch(
            enrolment_id=enrolment.pk, event="pt_review_due", idempotency_key="review"
        )
    # The write statement itself closes the open tasks of the state left (one more CTE).
    assert _statements(ctx) == ["BEGIN", "SELECT", "SELECT", "WITH", "COMMIT"]
    task.refresh_from_db()
    assert (task.status, task.completed_at) == (TaskStatus.CANCELLED, left.step.at)
    assert task.closed_reason == "No longer needed: Physical therapy left 'active' (pt_review_due)"
    with CaptureQueriesContext(connection) as ctx:
        ended = pathway_dispatch(
            enrolment_id=enrolment.pk, event="discharge", idempotency_key="discharge"
        )
    assert ended.enrolment.status == "completed"  # every open pathway task closed, same write
    assert _statements(ctx) == ["BEGIN", "SELECT", "SELECT", "WITH", "COMMIT"]


def _prepared() -> dict[str, int]:
    """The connection's prepared statements: the first words of each, and how often it ran."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement, generic_plans + custom_plans FROM pg_prepared_statements")
        return {" ".join(sql.split()[:3]): runs for sql, runs in cursor.fetchall()}


@pytest.mark.django_db(transaction=True)
def test_the_statements_are_prepared_once_per_connection(clinic) -> None:  # type: ignore[no-untyped-def]
    connection.close()  # a new connection: nothing prepared yet
    patient = patient_register(
        clinic=clinic, mrn="P-1", given_name="P", family_name="One", time_zone="UTC"
    )
    enrolment = enrolment_start(patient=patient, definition_key="stepped-care-example")
    make_eligible(patient)
    pathway_dispatch(enrolment_id=enrolment.pk, event="intake_complete", idempotency_key="k1")
    prepared = _prepared()
    # the lock and the snapshot (both SELECTs) and the write, each prepared on its first run
    assert sorted(prepared.values()) == [1, 1, 1]
    assert sum(sql.startswith("SELECT") for sql in prepared) == 2
    again = pathway_dispatch(
        enrolment_id=enrolment.pk, event="intake_complete", idempotency_key="k1"
    )
    assert again.replayed
    after = _prepared()
    # the redelivery ran the same prepared lock (which found the key processed), nothing else
    assert after == {sql: runs + sql.startswith("SELECT e.id") for sql, runs in prepared.items()}
    assert len(after) == 3
    # Django's own statements are not prepared
    Enrolment.objects.get(pk=enrolment.pk)
    assert len(_prepared()) == 3


@pytest.mark.django_db(transaction=True)
def test_a_redelivery_replays_while_another_change_holds_the_lock(clinic) -> None:  # type: ignore[no-untyped-def]
    patient = patient_register(
        clinic=clinic, mrn="L-1", given_name="L", family_name="One", time_zone="UTC"
    )
    enrolment = enrolment_start(patient=patient, definition_key="stepped-care-example")
    make_eligible(patient)
    first = pathway_dispatch(
        enrolment_id=enrolment.pk, event="intake_complete", idempotency_key="k1"
    )
    with locked_elsewhere(enrolment):
        steps = PathwayStep.objects.filter(enrolment=enrolment).count()
        again = pathway_dispatch(
            enrolment_id=enrolment.pk, event="intake_complete", idempotency_key="k1"
        )
        assert again.replayed
        assert again.step == first.step
        with pytest.raises(Conflict) as refused:
            pathway_dispatch(enrolment_id=enrolment.pk, event="discharge", idempotency_key="k2")
        assert refused.value.extra["current"]["version"] == first.enrolment.version
        assert PathwayStep.objects.filter(enrolment=enrolment).count() == steps
        assert not ProcessedEvent.objects.filter(idempotency_key="k2").exists()


@pytest.mark.django_db
def test_the_snapshot_statement_reads_what_the_selectors_read(
    enrolment: Enrolment, staff: dict[str, User]
) -> None:
    patient = enrolment.patient
    now = timezone.now()
    ClinicThreshold.objects.create(
        clinic=enrolment.clinic, pathway_key="stepped-care-example", name="esi_max_per_year",
        value=2, source="Clinic policy",
    )  # fmt: skip
    to_conventional(enrolment, staff["coordinator"])
    score_record(patient=patient, instrument="peg", score=7.0, observed_at=now - timedelta(days=30),
                 is_baseline=True)  # fmt: skip
    wrong = score_record(patient=patient, instrument="peg", score=3.0, observed_at=now)
    score_record(patient=patient, instrument="peg", score=5.5, observed_at=now, corrects=wrong)
    stray = procedure_record(patient=patient, procedure="esi", performed_at=now)
    observation_withdraw(observation=stray, reason="Wrong patient")
    procedure_record(patient=patient, procedure="esi", performed_at=now - timedelta(days=90),
                     relief_pct=60, relief_weeks=8)  # fmt: skip
    status_record(
        patient=patient, code="pdmp_checked", value=None, observed_at=now - timedelta(days=3)
    )
    pathway_dispatch(enrolment_id=enrolment.pk, event="esi_requested", idempotency_key="esi")
    enrolment.refresh_from_db()

    for as_of in (timezone.now(), now - timedelta(hours=1)):  # the latter before some rows
        expected = snapshot_for(enrolment, now=as_of)
        read = snapshot_from_rows(
            enrolment, snapshot_rows(enrolment), time_zone=patient.time_zone, now=as_of
        )
        assert all((read.proposals, read.timers, read.thresholds, read.occurrences))
        assert read == expected


@pytest.mark.django_db
def test_a_timer_restarted_under_its_key_replaces_the_pending_one(enrolment: Enrolment) -> None:
    [pending] = PathwayTimer.objects.filter(enrolment=enrolment, status=TimerStatus.PENDING)
    due = pending.due_at + timedelta(weeks=1)
    restart = ActiveTimer(
        key=pending.key, track=pending.track, state=pending.state, event=pending.event, due_at=due
    )
    closed, started = timer_rows([CancelTimer(pending.key, "exited"), StartTimer(restart)], NOW)
    enrolment.version += 1
    step_id, _ = write_rows(
        DecisionRows(
            enrolment=enrolment, enrolment_changed=True, configuration=enrolment.configuration,
            event="restart", event_key="restart", outcome="transitioned", actor_id=None,
            actor_role="", transitions=[], explanation={}, effects=[], timers_closed=closed,
            timers_started=started, processed_key="restart", at=NOW, wall=NOW,
        )
    )  # fmt: skip
    pending.refresh_from_db()
    assert (pending.status, pending.closed_at) == (TimerStatus.CANCELLED, NOW)
    [new] = PathwayTimer.objects.filter(enrolment=enrolment, status=TimerStatus.PENDING)
    assert (new.key, new.due_at) == (pending.key, due)
    assert ProcessedEvent.objects.get(idempotency_key="restart").step_id == step_id


def test_timer_operations_apply_in_order() -> None:
    def timer(key: str, days: int) -> ActiveTimer:
        return ActiveTimer(key=key, track="t", state="s", event="e", due_at=NOW + timedelta(days))

    closed, started = timer_rows(
        [
            StartTimer(timer("a", 1)),  # cancels a stored "a", then starts one
            CancelTimer("a", "fired"),  # fires the "a" just started
            StartTimer(timer("a", 2)),  # a new "a", pending
            CancelTimer("b", "exited"),
        ],
        NOW,
    )
    assert closed == [("a", "cancelled"), ("b", "cancelled")]
    assert [(key, due.day, status, at) for key, _, _, _, due, status, at in started] == [
        ("a", NOW.day + 1, "fired", NOW),
        ("a", NOW.day + 2, "pending", None),
    ]
