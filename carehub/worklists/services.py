from datetime import datetime

from django.db import transaction

from carehub.accounts.models import User
from carehub.core import clock
from carehub.pathways.models import Enrolment, OutboxEffect
from carehub.worklists.models import CareTask, Flag, FlagStatus, Priority, Severity, TaskStatus


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
    dedupe_key: str | None = None,
) -> Flag:
    if source_effect is not None or dedupe_key is not None:
        existing = (
            Flag.objects.filter(source_effect=source_effect).first()
            if source_effect is not None
            else Flag.objects.filter(dedupe_key=dedupe_key).first()
        )
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
        dedupe_key=dedupe_key,
    )


@transaction.atomic
def care_task_complete(*, task: CareTask, user: User) -> CareTask:
    if task.status == TaskStatus.OPEN:
        task.status = TaskStatus.DONE
        task.completed_at = clock.now()
        task.completed_by = user
        task.save(update_fields=["status", "completed_at", "completed_by", "updated_at"])
    return task


@transaction.atomic
def flag_set_status(*, flag: Flag, status: FlagStatus, user: User) -> Flag:
    """Acknowledge (someone is on it) or resolve a flag; a resolved flag stays resolved."""
    if flag.status != FlagStatus.RESOLVED and flag.status != status:
        flag.status = status
        flag.save(update_fields=["status", "updated_at"])
    return flag
