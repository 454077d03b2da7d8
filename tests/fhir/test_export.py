"""Bulk export: kick-off, status polling, ndjson files written by a real Celery worker; the
files validate and import into another clinic (round trip)."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from carehub.audit.models import Action, AuditEvent
from carehub.checkins.services import checkin_submit
from carehub.fhir.export import export_run
from carehub.fhir.models import ExportJob, ExportStatus
from carehub.observations.models import Observation
from carehub.patients.models import Patient
from tests.api.conftest import open_checkin, register
from tests.fhir.support import valid
from tests.fhir.test_import import ITEM9, _as_transaction, post

EXPORT = "/fhir/R4/Group/test/$export"


def kick_off(client: APIClient, url: str = EXPORT) -> str:
    response = client.get(url, HTTP_PREFER="respond-async")
    assert response.status_code == 202, response.content
    return response["Content-Location"]


def poll(client: APIClient, status_url: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.get(status_url)
        if response.status_code == 200:
            return response.json()
        assert response.status_code == 202, response.content
        assert response["Retry-After"]
        time.sleep(0.2)
    raise AssertionError("the export did not complete in time")


def download(client: APIClient, manifest: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    files = {}
    for output in manifest["output"]:
        response = client.get(output["url"])
        assert response.status_code == 200
        assert response["Content-Type"] == "application/fhir+ndjson"
        lines = [json.loads(line) for line in response.content.decode().splitlines()]
        assert len(lines) == output["count"]
        files[output["type"]] = [valid(resource) for resource in lines]
    return files


@pytest.mark.django_db(transaction=True)
def test_export_by_a_worker_then_import_elsewhere(
    celery_worker_process, client_for, staff, enrolment, outsider
) -> None:  # type: ignore[no-untyped-def]
    checkin = open_checkin(enrolment, "phq9")
    checkin_submit(checkin_id=checkin.pk, answers=ITEM9)
    register(enrolment.clinic, "T-2", "Bob", "Brown")
    client = client_for(staff["coordinator"])

    status_url = kick_off(client)
    manifest = poll(client, status_url)
    files = download(client, manifest)
    assert {p["identifier"][0]["value"] for p in files["Patient"]} == {"T-1", "T-2"}
    assert files["Observation"][0]["derivedFrom"][0]["reference"].startswith(
        "QuestionnaireResponse/"
    )
    assert files["Flag"]
    assert files["CarePlan"]
    assert files["QuestionnaireResponse"]
    downloads = AuditEvent.objects.filter(action=Action.FHIR_EXPORT, patient__isnull=False)
    assert {e.patient_id for e in downloads} == set(
        Patient.objects.filter(clinic=enrolment.clinic).values_list("pk", flat=True)
    )

    bundle = _as_transaction(
        files["Patient"] + files["QuestionnaireResponse"] + files["Observation"]
    )
    response = post(client_for(outsider), bundle)
    assert response.status_code == 200, response.content
    moved = Observation.objects.get(patient__clinic=outsider.clinic, code="phq9")
    assert moved.value_number == 9
    assert moved.data["items"] == Observation.objects.get(patient=enrolment.patient).data["items"]


def test_type_and_since_limit_what_is_exported(client_for, staff, clinic, settings) -> None:  # type: ignore[no-untyped-def]
    old = register(clinic, "OLD", "Old", "One")
    Patient.objects.filter(pk=old.pk).update(updated_at=timezone.now() - timedelta(days=3))
    new = register(clinic, "NEW", "New", "One")
    client = client_for(staff["physician"])
    since = (timezone.now() - timedelta(days=1)).isoformat()
    response = client.get(EXPORT, {"_type": "Patient", "_since": since})
    assert response.status_code == 202
    job = ExportJob.objects.get()
    assert export_run(job_id=job.pk) == ExportStatus.COMPLETED
    assert export_run(job_id=job.pk) == ExportStatus.COMPLETED  # delivered again: left alone
    manifest = poll(client, response["Content-Location"], timeout=1)
    files = download(client, manifest)
    assert list(files) == ["Patient"]
    assert [p["id"] for p in files["Patient"]] == [str(new.pk)]


def test_export_refusals(client_for, staff, outsider, clinic) -> None:  # type: ignore[no-untyped-def]
    coordinator = client_for(staff["coordinator"])
    assert client_for(staff["psychologist"]).get(EXPORT).status_code == 403
    assert client_for(outsider).get(EXPORT).status_code == 404  # not their clinic
    assert coordinator.get(EXPORT, {"_type": "Encounter"}).status_code == 400
    assert coordinator.get(EXPORT, {"_since": "yesterday"}).status_code == 400
    assert not ExportJob.objects.exists()
    status_url = kick_off(coordinator)
    assert client_for(staff["physician"]).get(status_url).status_code == 404  # not theirs
    assert APIClient().get(status_url).status_code == 401


@pytest.mark.django_db(transaction=True)
def test_a_job_whose_task_was_lost_is_published_again_by_polling(
    celery_worker_process, client_for, staff, patient
) -> None:  # type: ignore[no-untyped-def]
    """A job committed while its task was not published (the broker down at commit)."""
    user = staff["coordinator"]
    job = ExportJob.objects.create(
        clinic=user.clinic, requested_by=user, types=["Patient"], request_url=EXPORT
    )
    ExportJob.objects.filter(pk=job.pk).update(updated_at=timezone.now() - timedelta(minutes=5))
    client = client_for(user)
    manifest = poll(client, f"/fhir/R4/$export-status/{job.public_id}")
    assert [p["id"] for p in download(client, manifest)["Patient"]] == [str(patient.pk)]


def test_a_running_job_is_left_to_its_task(staff, patient) -> None:  # type: ignore[no-untyped-def]
    user = staff["coordinator"]
    job = ExportJob.objects.create(
        clinic=user.clinic, requested_by=user, types=["Patient"], request_url=EXPORT,
        status=ExportStatus.RUNNING, started_at=timezone.now(),
    )  # fmt: skip
    assert export_run(job_id=job.pk) == ExportStatus.RUNNING
    assert not job.files.exists()
    ExportJob.objects.filter(pk=job.pk).update(started_at=timezone.now() - timedelta(hours=1))
    assert export_run(job_id=job.pk) == ExportStatus.COMPLETED  # its task died: run again
    assert job.files.get().count == 1
