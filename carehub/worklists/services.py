from datetime import datetime

from django.db import transaction

from carehub.pathways.models import Enrolment, OutboxEffect
from carehub.worklists.models import CareTask, Flag, Priority, Severity


@transaction.atomic
def care_task_create(
    *,
    enrolment: Enrolment,
    discipline: str,
    title: str,
    due_at: datetime | None,
    priority: str = Priority.ROUTINE,
    source_effect: OutboxEffect | None = None,
) -> CareTask:
    """A task on a discipline's worklist. Created once per effect, however often it runs."""
    if source_effect is not None:
        existing = CareTask.objects.filter(source_effect=source_effect).first()
        if existing is not None:
            return existing
    return CareTask.objects.create(
        clinic_id=enrolment.clinic_id,
        patient_id=enrolment.patient_id,
        enrolment=enrolment,
        discipline=discipline,
        title=title[:200],
        due_at=due_at,
        priority=Priority(priority),
        source_effect=source_effect,
    )


@transaction.atomic
def flag_raise(
    *,
    enrolment: Enrolment,
    code: str,
    severity: str,
    message: str,
    raised_at: datetime,
    source_effect: OutboxEffect | None = None,
) -> Flag:
    if source_effect is not None:
        existing = Flag.objects.filter(source_effect=source_effect).first()
        if existing is not None:
            return existing
    return Flag.objects.create(
        clinic_id=enrolment.clinic_id,
        patient_id=enrolment.patient_id,
        enrolment=enrolment,
        code=code,
        severity=Severity(severity),
        message=message[:300],
        raised_at=raised_at,
        source_effect=source_effect,
    )
