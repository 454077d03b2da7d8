"""The benchmark code at tiny scale, so that it cannot rot: the generator, and each scenario's
core measurement once (no wall-clock limits are asserted). Also the EXPLAIN assertion for the
check-in sweep's claim, which the benchmarks rely on (the timer and message claims have theirs
in tests/carehub/pathways and tests/carehub/messaging).

The beat side of P2 needs django-celery-beat in INSTALLED_APPS (`config.settings.bench`), which
carehub itself never has: under the test settings that test is deselected here and run instead
by `test_the_beat_side_runs_under_the_bench_settings`, in a pytest process of its own with the
bench settings and a test database of its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from bench import generate
from bench.core import describe, percentile
from bench.scenarios import beat, burst, caseload, claim, engine, fhir_export, migrate, simulate
from carehub.checkins.services import due_checkins_query

# The bench generates as the tables' owner (TRUNCATE, bulk loads with the triggers off), as
# `make bench` does (ADR 0014).
pytestmark = [pytest.mark.django_db, pytest.mark.db_owner]


@pytest.fixture
def clinic() -> generate.ClinicInfo:
    return generate.generate_clinic(patients=30, months=2, seed=3)


@pytest.fixture
def queue() -> Iterator[str]:
    name = settings.CELERY_TASK_DEFAULT_QUEUE
    beat.purge(name)
    yield name
    beat.purge(name)


def test_statistics() -> None:
    assert percentile([1, 2, 3, 4, 5], 50) == 3
    assert percentile([0, 10], 95) == pytest.approx(9.5)
    figures = describe([1.0, 2.0, 3.0])
    assert (figures["n"], figures["median"], figures["max"]) == (3, 2.0, 3.0)


def test_generator_builds_a_consistent_clinic(clinic: generate.ClinicInfo) -> None:
    from carehub.checkins.models import Checkin
    from carehub.messaging.models import Message
    from carehub.pathways.models import Enrolment, PathwayStep
    from carehub.patients.models import Patient

    assert Patient.objects.count() == 30
    assert Enrolment.objects.filter(status="active").count() == 30
    assert PathwayStep.objects.count() == clinic.rows["pathways_pathwaystep"] > 30
    assert Checkin.objects.filter(status="scheduled").count() == 90  # 3 series a patient
    assert Checkin.objects.filter(status="answered").exists()
    assert Message.objects.count() == clinic.rows["messaging_message"]
    assert generate.clinic_info() == clinic
    # Sequences continue after the generated ids: the services can insert.
    from carehub.clinics.services import clinic_create

    clinic_create(name="Another", slug="another", time_zone="UTC")


def test_claim_core_measurement() -> None:
    now = timezone.now()
    generate.timer_table("default", 200, 30, now=now)
    generate.message_table("default", 200, 30, now=now)
    for table in ("timers", "messages"):
        seconds, claimed = claim.claim_once("default", table, now, batch=10)
        assert claimed == 10
        assert seconds > 0
        assert "LockRows" in claim.plan("default", table, now, batch=10)


def test_the_checkin_claim_uses_the_partial_index(clinic: generate.ClinicInfo) -> None:
    query = (
        due_checkins_query(timezone.now())
        .select_for_update(skip_locked=True, of=("self",))
        .select_related("series", "patient", "enrolment")
        .order_by("due_at", "pk")[:200]
    )
    sql, params = query.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # small table: show the usable plan
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "checkin_due" in plan, plan
    assert "checkins_checkin_pkey" not in plan, plan


def test_carehub_side_of_the_scheduler_comparison(
    clinic: generate.ClinicInfo, queue: str, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    # In a test the transaction never commits: the publishes are captured instead of queued.
    with django_capture_on_commit_callbacks() as published:
        figures = beat.carehub_trial(40, queue=queue, due=5, lead=0.1)
    assert figures["opened"] == figures["due"] == 5
    assert len(published) == 1  # one publish after commit: the batch's 5 send tasks


BEAT_TEST = "test_beat_side_of_the_scheduler_comparison"


@pytest.mark.django_db(transaction=True)
@pytest.mark.bench_settings
def test_beat_side_of_the_scheduler_comparison(queue: str) -> None:
    figures = beat.beat_trial(50, queue=queue, cap_seconds=20, due=5, lead=0.5)
    assert figures["enqueued"] == 5
    assert not figures["capped"]


@pytest.mark.skip_if_bench_settings
def test_the_beat_side_runs_under_the_bench_settings() -> None:
    """Runs the test above where django-celery-beat is installed, and says why if it fails."""
    database = connection.settings_dict["NAME"]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.bench",
        "TEST_DATABASE_NAME": f"{database}_beat",
        "CELERY_QUEUE": f"carehub-{database}-beat",
    }
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "--ds=config.settings.bench", "--create-db", f"{__file__}::{BEAT_TEST}"],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "1 passed" in run.stdout


def test_burst_core_measurement(clinic: generate.ClinicInfo) -> None:
    from carehub.checkins.services import checkins_open_due
    from carehub.messaging.delivery import message_send
    from carehub.messaging.models import Message

    patients = burst.prepare_patients(5)
    checkins = burst.insert_checkins(
        patients, first_due=datetime.now(UTC) - timedelta(seconds=5), spread=1
    )
    assert len(checkins) == 5
    assert checkins_open_due() == 5
    keys = [f"checkin:{pk}:request" for pk in checkins]
    for message_id in Message.objects.filter(idempotency_key__in=keys).values_list("pk", flat=True):
        assert message_send(message_id=message_id) == "sent"
        message_send(message_id=message_id)  # a redelivered task changes nothing
    figures = burst.measure(checkins)
    assert figures["exactly_once"], figures
    assert figures["lag_seconds"]["n"] == 5


def test_soak_memory_sample() -> None:
    from bench.workers import rss_bytes

    class Current:
        pid = os.getpid()

    assert rss_bytes(Current()) > 10 * 2**20  # type: ignore[arg-type]


def test_caseload_query_counts(clinic: generate.ClinicInfo) -> None:
    counts = caseload.query_counts(caseload.token_for())
    assert set(counts) == {"10", "50", "100"}
    assert len(set(counts.values())) == 1, counts  # the same whatever the page size
    path = caseload.dashboard_path()
    assert path is None or path.startswith("/")


def test_engine_pure_and_persisted(clinic: generate.ClinicInfo) -> None:
    from carehub.pathways.models import Enrolment

    pairs = engine.decide_workload()
    assert len(pairs) > 10
    assert engine.pure_rate(pairs, 0.05) > 0
    ids = list(Enrolment.objects.order_by("pk").values_list("pk", flat=True))
    figures = engine._client(0, ids[2:10], ids[:2], time.time(), 0.5, "test")
    assert figures["transitioned"] > 0
    assert figures["deadlocks"] == figures["errors"] == 0


def test_simulator_measurement() -> None:
    figures = simulate.measure(patients=6, days=40)
    assert figures["tally"].patients == 6
    assert figures["tally"].decisions > 6
    assert figures["cpu"] > 0
    assert figures["coverage"]["states_reached"] > 4  # beyond the four initial states


def test_fhir_export_core_measurement(clinic: generate.ClinicInfo) -> None:
    from carehub.fhir.models import ExportJob

    figures = fhir_export.export_once()
    assert figures["status"] == "completed"
    assert figures["patients"] == 30
    assert figures["resources"]["Observation"] > 0  # type: ignore[index]
    assert not ExportJob.objects.exists()  # the run leaves nothing behind


def test_migration_measurement(clinic: generate.ClinicInfo) -> None:
    from bench.core import Context
    from bench.env import BenchEnv
    from carehub.pathways.models import Enrolment, EnrolmentMigration

    lines: list[str] = []
    ctx = Context(env=BenchEnv("", "", "", ""), quick=True, log=lines.append)
    result = migrate.run(ctx)
    assert result.inputs["running_enrolments"] == 30
    assert result.runs[0]["apply_counts"]["migrated"] == 30
    assert sum(result.runs[0]["classified"].values()) == 30
    # Rolled back: the clinic is on version 1 again for the next run.
    assert set(Enrolment.objects.values_list("definition_version", flat=True)) == {1}
    assert set(EnrolmentMigration.objects.values_list("status", flat=True)) == {"rolled_back"}
