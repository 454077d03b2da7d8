from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction

from carehub.accounts.models import User
from carehub.core import clock
from carehub.core.exceptions import Conflict
from carehub.pathways.models import Enrolment, OutboxEffect
from carehub.patients.models import Patient
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
    dedupe_key: str | None = None,
) -> CareTask:
    """A task on a discipline's worklist. Created once per effect (or dedupe key), however often
    the code creating it runs."""
    if source_effect is not None:
        existing = CareTask.objects.filter(source_effect=source_effect).first()
        if existing is not None:
            return existing
    if dedupe_key is not None:
        existing = CareTask.objects.filter(dedupe_key=dedupe_key).first()
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
        dedupe_key=dedupe_key,
    )


@transaction.atomic
def flag_raise(
    *,
    enrolment: Enrolment | None,
    code: str,
    severity: str,
    message: str,
    raised_at: datetime,
    source_effect: OutboxEffect | None = None,
    dedupe_key: str | None = None,
    patient: Patient | None = None,
) -> Flag:
    """A flag on the clinic's board about the enrolment's patient (or `patient`, for a flag
    raised outside a pathway, e.g. by a score entered by staff); once per effect or dedupe key."""
    if enrolment is None and patient is None:
        raise ValueError("a flag is about an enrolment or a patient")
    if source_effect is not None or dedupe_key is not None:
        existing = (
            Flag.objects.filter(source_effect=source_effect).first()
            if source_effect is not None
            else Flag.objects.filter(dedupe_key=dedupe_key).first()
        )
        if existing is not None:
            return existing
    if enrolment is not None:
        clinic_id, patient_id = enrolment.clinic_id, enrolment.patient_id
    else:
        assert patient is not None
        clinic_id, patient_id = patient.clinic_id, patient.pk
    return Flag.objects.create(
        clinic_id=clinic_id,
        patient_id=patient_id,
        enrolment=enrolment,
        code=code,
        severity=Severity(severity),
        message=message[:300],
        raised_at=raised_at,
        source_effect=source_effect,
        dedupe_key=dedupe_key,
    )


def _worklist_state(item: CareTask | Flag) -> dict[str, object]:
    return {"id": item.pk, "status": item.status}


@transaction.atomic
def care_task_complete(*, task: CareTask, user: User) -> CareTask:
    """Mark an open task done; a task already done (or cancelled) is a conflict (409)."""
    locked = CareTask.objects.select_for_update().get(pk=task.pk)
    if locked.status != TaskStatus.OPEN:
        raise Conflict(
            f"The task is already {locked.get_status_display().lower()}.",
            extra={"current": _worklist_state(locked)},
        )
    locked.status = TaskStatus.DONE
    locked.completed_at = clock.now()
    locked.completed_by = user
    locked.save(update_fields=["status", "completed_at", "completed_by", "updated_at"])
    for field in ("status", "completed_at", "completed_by", "updated_at"):
        setattr(task, field, getattr(locked, field))
    return task


@transaction.atomic
def flag_set_status(*, flag: Flag, status: FlagStatus, user: User) -> Flag:
    """Acknowledge (someone is on it) or resolve a flag. A resolved flag stays resolved, and
    setting the status a flag already has is a conflict (409), as is reopening it."""
    if status not in (FlagStatus.ACKNOWLEDGED, FlagStatus.RESOLVED):
        raise Conflict("A flag can only be acknowledged or resolved.")
    locked = Flag.objects.select_for_update().get(pk=flag.pk)
    if locked.status == FlagStatus.RESOLVED or locked.status == status:
        raise Conflict(
            f"The flag is already {locked.get_status_display().lower()}.",
            extra={"current": _worklist_state(locked)},
        )
    locked.status = status
    locked.save(update_fields=["status", "updated_at"])
    flag.status, flag.updated_at = locked.status, locked.updated_at
    return flag


SESSION_DISCIPLINES = {"pt": "physical_therapist", "cbt": "psychologist"}


def session_notes_overdue_tasks(*, now: datetime | None = None) -> int:
    """A task for the therapist when an attended session has had no progress note for
    `SESSION_NOTES_DUE_HOURS` (looking back 30 days); one task per session."""
    from carehub.observations.models import Kind, Observation
    from carehub.pathways.models import EnrolmentStatus

    now = now or clock.now()
    due_before = now - timedelta(hours=settings.SESSION_NOTES_DUE_HOURS)
    sessions = (
        Observation.objects.filter(
            kind=Kind.SESSION,
            value_bool=True,
            corrected_by__isnull=True,
            entered_in_error=False,
            observed_at__lte=due_before,
            observed_at__gte=now - timedelta(days=30),
        )
        .exclude(data__has_key="notes")
        .select_related("patient")
    )
    created = 0
    for session in sessions:
        enrolment = (
            Enrolment.objects.filter(patient=session.patient, status=EnrolmentStatus.ACTIVE)
            .order_by("pk")
            .first()
        )
        discipline = SESSION_DISCIPLINES.get(session.code)
        if enrolment is None or discipline is None:
            continue
        key = f"session-notes:{session.pk}"
        if CareTask.objects.filter(dedupe_key=key).exists():
            continue
        day = session.observed_at.astimezone(ZoneInfo(session.patient.time_zone)).date()
        care_task_create(
            enrolment=enrolment,
            discipline=discipline,
            title=f"Progress note overdue for the {session.code.upper()} session of {day:%d %b}",
            due_at=now,
            dedupe_key=key,
        )
        created += 1
    return created
