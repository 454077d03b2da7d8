from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q

from carehub.accounts.models import STAFF_ROLES, User
from carehub.clinics.clock import exclude_sandboxes
from carehub.core import clock
from carehub.core.exceptions import Conflict, InvalidInput
from carehub.integrations.models import ChangeType
from carehub.integrations.services import change_record
from carehub.observations.models import Kind, Observation
from carehub.pathways.models import Enrolment, EnrolmentStatus, OutboxEffect
from carehub.patients.models import Patient
from carehub.worklists.models import CareTask, Flag, FlagStatus, Priority, Severity, TaskStatus

W = TypeVar("W", CareTask, Flag)


def _change(type: ChangeType, row: CareTask | Flag, data: dict[str, Any], at: datetime) -> None:
    """The change feed's record of a task or flag changing (codes only: no title, reason or
    message)."""
    change_record(
        clinic_id=row.clinic_id,
        patient_id=row.patient_id,
        enrolment_id=row.enrolment_id,
        type=type,
        subject_id=row.pk,
        data=data,
        at=at,
    )


def _task_change(type: ChangeType, task: CareTask, at: datetime) -> None:
    """The change feed's record of a task opened or closed."""
    _change(
        type,
        task,
        {"discipline": task.discipline, "priority": task.priority, "status": task.status},
        at,
    )


def _flag_change(type: ChangeType, flag: Flag, at: datetime) -> None:
    """The change feed's record of a flag raised, acknowledged or resolved."""
    _change(type, flag, {"code": flag.code, "severity": flag.severity, "status": flag.status}, at)


def _insert_or_existing(row: W, change: Callable[[], None], existing: Callable[[], W | None]) -> W:
    """Insert the new task or flag and record its change, in a savepoint; when a unique
    constraint refuses it (an equal one was made meanwhile), the `existing` one instead."""
    try:
        with transaction.atomic():
            row.save(force_insert=True)
            change()
    except IntegrityError:
        made = existing()
        if made is None:
            raise
        return made
    return row


def _new_task(
    clinic_id: int,
    patient_id: int,
    enrolment: Enrolment | None,
    discipline: str,
    title: str,
    due_at: datetime | None,
    priority: str,
) -> CareTask:
    """An open task of the patient's clinic (not saved), whoever opens it."""
    return CareTask(
        clinic_id=clinic_id,
        patient_id=patient_id,
        enrolment=enrolment,
        discipline=discipline,
        title=title,
        due_at=due_at,
        priority=Priority(priority),
    )


def _made_before(
    model: type[W], source_effect: OutboxEffect | None, dedupe_key: str | None
) -> W | None:
    """The task or flag this effect (or dedupe key) already made: making it again finds it."""
    if source_effect is not None:
        existing = model.objects.filter(source_effect=source_effect).first()
        if existing is not None:
            return existing
    if dedupe_key is not None:
        return model.objects.filter(dedupe_key=dedupe_key).first()
    return None


def _open_equal_task(enrolment: Enrolment, discipline: str, title: str) -> CareTask | None:
    return CareTask.objects.filter(
        enrolment=enrolment, discipline=discipline, title=title, status=TaskStatus.OPEN
    ).first()


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
    track: str = "",
    state: str = "",
    source_step_id: int | None = None,
    closed_reason: str = "",
    closed_at: datetime | None = None,
) -> CareTask:
    """A task on a discipline's worklist. Created once per effect (or dedupe key), however often
    the code creating it runs; while an equal task (same enrolment, discipline and title) is
    open, that task is returned and no other is opened (a unique index holds it under races).

    `track` and `state`: the pathway state the task belongs to (closed when the track leaves
    it). A task whose reason was gone before it could be created (`closed_reason`, e.g. its
    state was already left) is recorded closed: cancelled, with the reason, at `closed_at`."""
    existing = _made_before(CareTask, source_effect, dedupe_key)
    if existing is not None:
        return existing
    title = title[:200]
    task = _new_task(
        enrolment.clinic_id, enrolment.patient_id, enrolment, discipline, title, due_at, priority
    )
    # The pathway's bookkeeping: what made it, and the state it belongs to.
    task.source_effect, task.dedupe_key = source_effect, dedupe_key
    task.track, task.state, task.source_step_id = track, state, source_step_id
    if closed_reason:
        task.status = TaskStatus.CANCELLED
        task.closed_reason = closed_reason[:300]
        task.completed_at = closed_at or clock.now()
        task.save(force_insert=True)
        return task  # never open: nothing to tell
    equal = _open_equal_task(enrolment, discipline, title)
    if equal is not None:
        return equal
    # An equal task opened meanwhile is not an error: that one is the answer.
    return _insert_or_existing(
        task,
        lambda: _task_change(ChangeType.TASK_OPENED, task, task.created_at),
        lambda: (
            _made_before(CareTask, source_effect, dedupe_key)
            or _open_equal_task(enrolment, discipline, title)
        ),
    )


def care_task_close(*, task_id: int, reason: str, at: datetime) -> bool:
    """Close a task that is no longer needed (cancelled, with the reason, kept in history);
    False when it was no longer open."""
    with transaction.atomic():
        task = (
            CareTask.objects.select_for_update().filter(pk=task_id, status=TaskStatus.OPEN).first()
        )
        if task is None:
            return False
        task.status, task.closed_reason, task.completed_at = TaskStatus.CANCELLED, reason[:300], at
        task.save(update_fields=["status", "closed_reason", "completed_at", "updated_at"])
        _task_change(ChangeType.TASK_CLOSED, task, at)
    return True


_SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.URGENT: 2}


def _unresolved_flag(patient_id: int, code: str, severity: Severity) -> Flag | None:
    """The patient's unresolved flag with this code, its severity raised to `severity` if that
    is higher (never lowered)."""
    flag = (
        Flag.objects.select_for_update()
        .filter(patient_id=patient_id, code=code)
        .exclude(status=FlagStatus.RESOLVED)
        .first()
    )
    if flag is not None and _SEVERITY_RANK[severity] > _SEVERITY_RANK[Severity(flag.severity)]:
        flag.severity = severity
        flag.save(update_fields=["severity", "updated_at"])
    return flag


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
    """Raise a flag on the patient: the enrolment's (or `patient`, for a flag raised outside a
    pathway, e.g. by a score entered by staff before enrolment). Raised once per effect (or
    dedupe key); while the patient has an unresolved flag (open or acknowledged) with the same
    code, that flag is returned instead of a second one, its severity raised if this raise is
    more severe (a unique index holds it under races). A resolved flag does not count."""
    if enrolment is None and patient is None:
        raise ValueError("a flag is about an enrolment or a patient")
    existing = _made_before(Flag, source_effect, dedupe_key)
    if existing is not None:
        return existing
    if enrolment is not None:
        clinic_id, patient_id = enrolment.clinic_id, enrolment.patient_id
    else:
        assert patient is not None
        clinic_id, patient_id = patient.clinic_id, patient.pk
    level = Severity(severity)
    unresolved = _unresolved_flag(patient_id, code, level)
    if unresolved is not None:
        return unresolved
    flag = Flag(
        clinic_id=clinic_id,
        patient_id=patient_id,
        enrolment=enrolment,
        code=code,
        severity=level,
        message=message[:300],
        raised_at=raised_at,
        source_effect=source_effect,
        dedupe_key=dedupe_key,
    )
    # The same flag raised meanwhile is no error: that one is the answer.
    return _insert_or_existing(
        flag,
        lambda: _flag_change(ChangeType.FLAG_RAISED, flag, raised_at),
        lambda: (
            _made_before(Flag, source_effect, dedupe_key)
            or _unresolved_flag(patient_id, code, level)
        ),
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
    _task_change(ChangeType.TASK_CLOSED, locked, locked.completed_at)
    for field in ("status", "completed_at", "completed_by", "updated_at"):
        setattr(task, field, getattr(locked, field))
    return task


NOTE_MAX_LENGTH = 2000


def _required_text(name: str, value: str, missing: str) -> str:
    text = value.strip()
    if not text:
        raise InvalidInput(missing, extra={"fields": {name: [missing]}})
    if len(text) > NOTE_MAX_LENGTH:
        too_long = f"At most {NOTE_MAX_LENGTH} characters."
        raise InvalidInput(too_long, extra={"fields": {name: [too_long]}})
    return text


@transaction.atomic
def flag_set_status(
    *, flag: Flag, status: FlagStatus, user: User, note: str = "", outcome: str = ""
) -> Flag:
    """Acknowledge (someone is on it) or resolve a flag, recording who did it and when.

    Acknowledging an urgent flag needs a `note` of what was done ("called the patient, safety
    plan reviewed"; optional for other flags); resolving any flag needs its `outcome`. Missing
    (or longer than `NOTE_MAX_LENGTH`) is an InvalidInput naming the field; nothing changes. A
    resolved flag stays resolved, and setting the status a flag already has is a conflict
    (409), as is reopening it. An open flag may be resolved without being acknowledged."""
    if status not in (FlagStatus.ACKNOWLEDGED, FlagStatus.RESOLVED):
        raise Conflict("A flag can only be acknowledged or resolved.")
    locked = Flag.objects.select_for_update().get(pk=flag.pk)
    if locked.status == FlagStatus.RESOLVED or locked.status == status:
        raise Conflict(
            f"The flag is already {locked.get_status_display().lower()}.",
            extra={"current": _worklist_state(locked)},
        )
    now = clock.now()
    if status == FlagStatus.ACKNOWLEDGED:
        if locked.severity == Severity.URGENT:
            text = _required_text(
                "note", note, "Say what was done for this urgent flag (e.g. the patient called)."
            )
        else:
            text = _required_text("note", note, "") if note.strip() else ""
        locked.acknowledged_at, locked.acknowledged_by, locked.acknowledged_note = now, user, text
        fields = ["acknowledged_at", "acknowledged_by", "acknowledged_note"]
    else:
        text = _required_text("outcome", outcome, "Say how the flag was resolved (the outcome).")
        locked.resolved_at, locked.resolved_by, locked.resolved_outcome = now, user, text
        fields = ["resolved_at", "resolved_by", "resolved_outcome"]
    locked.status = status
    locked.save(update_fields=["status", *fields, "updated_at"])
    _flag_change(
        ChangeType.FLAG_ACKNOWLEDGED
        if status == FlagStatus.ACKNOWLEDGED
        else ChangeType.FLAG_RESOLVED,
        locked,
        now,
    )
    for name in ("status", *fields, "updated_at"):
        setattr(flag, name, getattr(locked, name))
    return flag


SESSION_DISCIPLINES = {"pt": "physical_therapist", "cbt": "psychologist"}


def session_notes_overdue_tasks(
    *, now: datetime | None = None, clinic_id: int | None = None
) -> int:
    """A task for the therapist when an attended session has had no progress note for
    `SESSION_NOTES_DUE_HOURS` (looking back 30 days); one task per session. The wall clock's run
    leaves sandbox clinics out; an advance of a sandbox's test clock runs it for that clinic
    alone (ADR 0024)."""
    scope = (
        exclude_sandboxes("patient__clinic_id")
        if clinic_id is None
        else Q(patient__clinic_id=clinic_id)
    )

    now = now or clock.now()
    due_before = now - timedelta(hours=settings.SESSION_NOTES_DUE_HOURS)
    sessions = (
        Observation.objects.current()
        .filter(
            kind=Kind.SESSION,
            value_bool=True,
            observed_at__lte=due_before,
            observed_at__gte=now - timedelta(days=30),
        )
        .filter(scope)
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
        task = care_task_create(
            enrolment=enrolment,
            discipline=discipline,
            title=f"Progress note overdue for the {session.code.upper()} session of {day:%d %b}",
            due_at=now,
            dedupe_key=key,
        )
        if task.dedupe_key == key:  # not when an equal task was still open
            created += 1
    return created


# --- tasks people create, assign and cancel (the API, the pages) -------------------------------

TITLE_MAX_LENGTH = 200
CANCEL_REASON_MAX_LENGTH = 300


def _field_error(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field}: {message}", extra={"fields": {field: [message]}})


@transaction.atomic
def care_task_add(
    *,
    patient: Patient,
    discipline: str,
    title: str,
    due_at: datetime | None = None,
    priority: str = Priority.ROUTINE,
    enrolment: Enrolment | None = None,
    assigned_to: User | None = None,
) -> CareTask:
    """A task a person (or an outside system) puts on a discipline's worklist for a patient,
    optionally about one of the patient's enrolments and assigned to a member of staff of that
    discipline. While an equal task (same enrolment, discipline and title) is open, a conflict
    (409) naming it. Pathway tasks are created by the pathway's effects (`care_task_create`)."""
    if discipline not in STAFF_ROLES:
        raise _field_error("discipline", f"must be a staff role ({', '.join(STAFF_ROLES)})")
    text = title.strip() if isinstance(title, str) else ""
    if not text or len(text) > TITLE_MAX_LENGTH:
        raise _field_error("title", f"1 to {TITLE_MAX_LENGTH} characters")
    if priority not in Priority.values:
        raise _field_error("priority", f"one of {', '.join(Priority.values)}")
    if enrolment is not None and enrolment.patient_id != patient.pk:
        raise _field_error("enrolment", "is not an enrolment of this patient")
    if assigned_to is not None:
        _check_assignee(assigned_to, patient.clinic_id, discipline)
    equal = _open_equal_task(enrolment, discipline, text) if enrolment is not None else None
    if equal is None:
        task = _new_task(
            patient.clinic_id, patient.pk, enrolment, discipline, text, due_at, priority
        )
        task.patient, task.assigned_to = patient, assigned_to
        # Opened in the change feed like a pathway's task; an equal one opened meanwhile (the
        # unique index) is the same conflict.
        made = _insert_or_existing(
            task,
            lambda: _task_change(ChangeType.TASK_OPENED, task, task.created_at),
            lambda: _open_equal_task(enrolment, discipline, text) if enrolment else None,
        )
        if made is task:
            return task
        equal = made
    raise Conflict("An equal task is already open.", extra={"current": _worklist_state(equal)})


def _check_assignee(user: User, clinic_id: int, discipline: str) -> None:
    if user.clinic_id != clinic_id or not user.is_active:
        raise _field_error("staff_id", "is not an active member of this clinic's staff")
    if user.role != discipline:
        raise _field_error(
            "staff_id",
            f"is a {user.role}; the task is on the {discipline} worklist (its discipline)",
        )


def _open_task_locked(task: CareTask) -> CareTask:
    locked = CareTask.objects.select_for_update().get(pk=task.pk)
    if locked.status != TaskStatus.OPEN:
        raise Conflict(
            f"The task is already {locked.get_status_display().lower()}.",
            extra={"current": _worklist_state(locked)},
        )
    return locked


@transaction.atomic
def care_task_assign(*, task: CareTask, assignee: User | None) -> CareTask:
    """Assign an open task to a member of staff of its discipline (None: unassign). The task
    stays on its discipline's worklist; a closed task is a conflict (409)."""
    locked = _open_task_locked(task)
    if assignee is not None:
        _check_assignee(assignee, locked.clinic_id, locked.discipline)
    locked.assigned_to = assignee
    locked.save(update_fields=["assigned_to", "updated_at"])
    return locked


@transaction.atomic
def care_task_cancel(*, task: CareTask, reason: str, user: User | None = None) -> CareTask:
    """Cancel an open task that is no longer needed, with the reason (kept in `closed_reason`).
    A closed task is a conflict (409)."""
    text = reason.strip() if isinstance(reason, str) else ""
    if not text or len(text) > CANCEL_REASON_MAX_LENGTH:
        raise _field_error("reason", f"say why, in 1 to {CANCEL_REASON_MAX_LENGTH} characters")
    locked = _open_task_locked(task)
    locked.status = TaskStatus.CANCELLED
    locked.closed_reason = text
    locked.completed_at = clock.now()
    locked.completed_by = user
    locked.save(
        update_fields=["status", "closed_reason", "completed_at", "completed_by", "updated_at"]
    )
    _task_change(ChangeType.TASK_CLOSED, locked, locked.completed_at)
    return locked
