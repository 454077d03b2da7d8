"""Celery tasks of sandbox clinics: ids in, one service call."""

from celery import shared_task

from carehub.sandbox.services import sandbox_clock_advance_run


@shared_task(name="carehub.sandbox.test_clock_advance", acks_late=True, ignore_result=True)
def sandbox_clock_advance_task(clinic_id: int) -> int:
    return sandbox_clock_advance_run(clinic_id=clinic_id)
