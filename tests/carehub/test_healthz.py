from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from carehub.core.models import SchedulerHeartbeat
from carehub.core.services import scheduler_heartbeat_record
from carehub.core.tasks import scheduler_heartbeat_task

pytestmark = pytest.mark.django_db


def test_healthz_reports_database_and_broker_ok(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == {"status": "ok"}
    assert body["broker"] == {"status": "ok"}
    assert body["scheduler"]["status"] == "unknown"


def test_healthz_is_503_when_the_broker_is_unreachable(client: Client, settings) -> None:  # type: ignore[no-untyped-def]
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["broker"]["status"] == "error"
    assert body["database"] == {"status": "ok"}


def test_healthz_reports_scheduler_lag_from_the_heartbeat(client: Client, settings) -> None:  # type: ignore[no-untyped-def]
    scheduler_heartbeat_task()  # the task body, as the worker runs it
    fresh = client.get("/healthz").json()["scheduler"]
    assert fresh["status"] == "ok"
    assert fresh["lag_seconds"] < 5

    SchedulerHeartbeat.objects.update(last_beat_at=timezone.now() - timedelta(minutes=10))
    late = client.get("/healthz")
    assert late.status_code == 200  # a late scheduler pages a person; the web process is fine
    assert late.json()["scheduler"]["status"] == "late"
    assert late.json()["scheduler"]["lag_seconds"] >= 600


def test_heartbeat_is_one_row_updated_in_place() -> None:
    scheduler_heartbeat_record()
    scheduler_heartbeat_record()
    assert SchedulerHeartbeat.objects.count() == 1


def test_healthz_only_answers_get(client: Client) -> None:
    assert client.post("/healthz").status_code == 405


# --- liveness and readiness ------------------------------------------------------------------


def test_livez_answers_without_reading_the_database_or_the_broker(
    client: Client, settings, django_assert_num_queries
) -> None:  # type: ignore[no-untyped-def]
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    with django_assert_num_queries(0):
        response = client.get("/livez")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_readyz_is_ok_when_the_database_takes_writes(client: Client) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok", "database": {"status": "ok"}, "broker": {"status": "ok"}
    }  # fmt: skip


def test_readyz_keeps_the_process_in_service_when_only_redis_is_down(
    client: Client, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["database"]["status"], body["broker"]["status"]) == (
        "degraded", "ok", "error",
    )  # fmt: skip


def test_readyz_notices_a_read_only_database(client: Client) -> None:
    from django.db import connection

    with connection.cursor() as cursor:  # as during a failover or an operator's read-only guard
        cursor.execute("SET LOCAL transaction_read_only = on")
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["database"] == {"status": "read_only"}
    assert response.json()["status"] == "unavailable"
    # /healthz reports the database as answering: readiness is the probe to route by.
    assert client.get("/livez").status_code == 200
