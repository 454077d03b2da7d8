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
