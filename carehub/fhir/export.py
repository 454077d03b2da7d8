"""Bulk export of a clinic (`GET /fhir/R4/Group/<clinic>/$export`): a job, run by a Celery
task (its id the payload), writing one ndjson file per resource type into the database.

The job reads what the requesting user may see (carehub.care_access), as every FHIR read does:
a coordinator or physician exports their whole clinic. `_since` keeps resources updated at or
after that instant; `_type` limits the types. Rows are read in id order in batches, each
resource built like the read endpoints build it (`selectors.PATIENT_DATA_TYPES`), but without
the fhir.resources model check of every whole resource: the builders check every value that
comes from the data against its FHIR primitive type, the test suite validates what they build
over every branch, and the export validates a deterministic sample (`SAMPLE_EVERY`), failing
the job if one is refused (ADR 0023).
A run is idempotent: a task delivered again (a worker that died) rewrites the files, a job
already completed is left alone."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.db import transaction

from carehub.accounts.models import User
from carehub.core import clock
from carehub.core.exceptions import InvalidInput
from carehub.core.publish import publish_ids, publish_ids_after_commit, task_named
from carehub.fhir import resources
from carehub.fhir.models import ExportFile, ExportJob, ExportStatus
from carehub.fhir.selectors import PATIENT_DATA_TYPES

logger = logging.getLogger(__name__)

EXPORT_TYPES: tuple[str, ...] = tuple(PATIENT_DATA_TYPES)
# carehub.fhir.tasks.export_run_task, published by name (that module imports this one).
EXPORT_RUN = "carehub.fhir.export_run"

BATCH_SIZE = 2000
# The model check (about a millisecond a resource) is run on the resources at these positions
# of every batch: 4 of each 2,000.
SAMPLE_EVERY = 500
# A job still accepted this long after it was last published lost its task (the broker was down
# when the job committed): the next status poll publishes it again.
REPUBLISH_AFTER = timedelta(minutes=1)
# A job running for less than this is another task's (the task's soft time limit).
RUN_LEASE = timedelta(seconds=1800)


# `json.dumps(resource, separators=(",", ":"))` without making an encoder per resource (and
# without the check for cycles, which built resources never have).
_ENCODE = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode


def export_types(raw: str | None) -> list[str]:
    """`_type` (comma-separated) as a list of exportable types; every type when absent."""
    if not raw:
        return list(EXPORT_TYPES)
    types = [t.strip() for t in raw.split(",") if t.strip()]
    unknown = [t for t in types if t not in EXPORT_TYPES]
    if unknown or not types:
        raise InvalidInput(
            f"_type must name some of {', '.join(EXPORT_TYPES)}.", extra={"field": "_type"}
        )
    return list(dict.fromkeys(types))


def export_job_create(
    *, user: User, types: list[str], since: datetime | None, request_url: str
) -> ExportJob:
    """A job for the user's clinic; its task is published once the job is committed."""
    if user.clinic_id is None:
        raise InvalidInput("Only staff of a clinic can export its data.")
    with transaction.atomic():
        job = ExportJob.objects.create(
            clinic_id=user.clinic_id,
            requested_by=user,
            types=types,
            since=since,
            request_url=request_url[:2000],
        )
        publish_ids_after_commit(partial(task_named, EXPORT_RUN), [job.pk])
    return job


def _lines(user: User, name: str, since: datetime | None) -> tuple[str, int, set[int]]:
    spec = PATIENT_DATA_TYPES[name]
    queryset = spec.export_queryset(user)
    if since is not None:
        queryset = queryset.filter(updated_at__gte=since)
    parts: list[str] = []
    patients: set[int] = set()
    count, after = 0, 0
    while True:
        rows = list(queryset.filter(pk__gt=after).order_by("pk")[:BATCH_SIZE])
        if not rows:
            break
        after = rows[-1].pk
        built: list[dict[str, Any]] = spec.build(rows, validate=False)
        for index in range(0, len(built), SAMPLE_EVERY):
            resources.validated(built[index])
        parts.extend(map(_ENCODE, built))
        patients.update(spec.patient_ids(rows))
        count += len(built)
    return "\n".join(parts) + ("\n" if parts else ""), count, patients


def export_run(*, job_id: int) -> str:
    """Write the job's files; returns the job's status."""
    with transaction.atomic():
        job = ExportJob.objects.select_for_update().select_related("requested_by").get(pk=job_id)
        if job.status in (ExportStatus.COMPLETED, ExportStatus.FAILED):
            return job.status
        if (
            job.status == ExportStatus.RUNNING
            and job.started_at is not None
            and job.started_at > clock.now() - RUN_LEASE
        ):
            return job.status  # another task runs it (a task published twice)
        job.status, job.started_at = ExportStatus.RUNNING, clock.now()
        job.save(update_fields=["status", "started_at", "updated_at"])
    try:
        files, patients = [], set()
        for name in job.types:
            content, count, touched = _lines(job.requested_by, name, job.since)
            patients |= touched
            files.append(ExportFile(job=job, resource_type=name, count=count, content=content))
        with transaction.atomic():
            ExportFile.objects.filter(job=job).delete()
            # One INSERT a file: bulk_create would send the files as a text array (PostgreSQL's
            # UNNEST insert), whose quoting escapes every '"' of the ndjson in Python, a regex
            # callback per quote: minutes for a clinic's export (ADR 0023).
            for file in files:
                file.save(force_insert=True)
            job.status, job.completed_at = ExportStatus.COMPLETED, clock.now()
            job.patient_ids = sorted(patients)
            job.save(update_fields=["status", "completed_at", "patient_ids", "updated_at"])
    except Exception as exc:
        logger.exception("FHIR export %s failed", job.public_id)
        ExportJob.objects.filter(pk=job.pk).update(
            status=ExportStatus.FAILED, error=f"{type(exc).__name__}"[:500], updated_at=clock.now()
        )
        return ExportStatus.FAILED
    return ExportStatus.COMPLETED


def export_job_poll(*, job: ExportJob) -> None:
    """Called by the status URL: publish again a job whose task was lost (still accepted
    `REPUBLISH_AFTER` after it was last published). One poll wins the conditional update."""
    if job.status != ExportStatus.ACCEPTED or job.updated_at > clock.now() - REPUBLISH_AFTER:
        return
    claimed = ExportJob.objects.filter(
        pk=job.pk, status=ExportStatus.ACCEPTED, updated_at=job.updated_at
    ).update(updated_at=clock.now())
    if claimed:
        logger.warning("FHIR export %s was still waiting: published again", job.public_id)
        publish_ids(task_named(EXPORT_RUN), [job.pk])
