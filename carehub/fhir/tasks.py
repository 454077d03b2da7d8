"""Celery tasks of the FHIR doors: ids in, one service call."""

from celery import shared_task

from carehub.fhir.export import export_run

# An export of a large clinic takes longer than the default limits (CELERY_TASK_TIME_LIMIT).
EXPORT_SOFT_LIMIT_SECONDS = 1800


@shared_task(
    name="carehub.fhir.export_run",
    acks_late=True,
    ignore_result=True,
    soft_time_limit=EXPORT_SOFT_LIMIT_SECONDS,
    time_limit=EXPORT_SOFT_LIMIT_SECONDS + 60,
)
def export_run_task(job_id: int) -> str:
    return export_run(job_id=job_id)
