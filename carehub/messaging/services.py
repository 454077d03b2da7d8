"""Messaging services: the public API other apps call, preferences, daily digests and task
reminders. Sending itself is in `delivery.py` (the Celery tasks call it).

Public API (stable):

- `message_enqueue(...)`: one message to the patient (`recipient=PATIENT`) or a member of staff;
  idempotent on `idempotency_key`; published right after commit when due now.
- `message_enqueue_for_roles(...)`: one message per recipient among the patient's active care
  team with the given roles ("care_team" = every member, "patient" = the patient).
- `register_suppressor(purpose, fn)`: `fn(message)` returns a reason to drop the message, or
  None; asked right before each send.
- `register_renderer(purpose, fn)`: `fn(message, channel)` returns the final text at send time.
- `message_resend(message_id=...)`: staff action on a dead message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction

from carehub.accounts.models import User
from carehub.clinics.models import Clinic
from carehub.core import clock
from carehub.core.exceptions import Conflict, InvalidInput
from carehub.messaging import registry
from carehub.messaging.delivery import event, publish_after_commit
from carehub.messaging.models import (
    ContactPreference,
    Message,
    MessageStatus,
    Purpose,
    StaffNotificationPreference,
    Urgency,
)
from carehub.messaging.policy import local_instants
from carehub.pathways.models import OutboxEffect
from carehub.patients.models import CareTeamMembership, Patient
from carehub.worklists.models import CareTask, Priority, TaskStatus

logger = logging.getLogger(__name__)

PATIENT = "patient"
CARE_TEAM = "care_team"


# --- hooks --------------------------------------------------------------------------------------


def register_suppressor(purpose: str, fn: Callable[[Message], str | None]) -> None:
    """`fn(message)` returns a reason to suppress the message (e.g. "already answered"), or None.
    Checked right before every send; register from your AppConfig.ready()."""
    registry.add_suppressor(purpose, fn)


def register_renderer(purpose: str, fn: Callable[[Message, str], str]) -> None:
    """`fn(message, channel)` returns the text to send, from the message's body (a template).
    Called at send time, for each attempt; register from your AppConfig.ready()."""
    registry.add_renderer(purpose, fn)


# --- enqueue ------------------------------------------------------------------------------------


def _create(
    *,
    clinic_id: int,
    patient: Patient | None,
    to_staff: User | None,
    purpose: str,
    body: str,
    idempotency_key: str,
    urgency: str,
    not_before: datetime | None,
    subject_key: str,
    why: str,
    source_effect: OutboxEffect | None,
) -> tuple[Message, bool]:
    """Insert the message once per key (concurrent callers get the same row)."""
    now = clock.now()
    due = not_before.astimezone(UTC) if not_before is not None else now
    due_now = due <= now
    with transaction.atomic():
        existing = Message.objects.filter(idempotency_key=idempotency_key).first()
        if existing is None:
            try:
                with transaction.atomic():
                    message = Message.objects.create(
                        clinic_id=clinic_id,
                        patient=patient,
                        to_staff=to_staff,
                        purpose=purpose,
                        urgency=urgency,
                        body=body,
                        subject_key=subject_key[:100],
                        idempotency_key=idempotency_key,
                        why=why[:500],
                        status=MessageStatus.QUEUED if due_now else MessageStatus.PENDING,
                        not_before=due,
                        claimed_at=now if due_now else None,
                        source_effect=source_effect,
                    )
            except IntegrityError:
                # A concurrent caller inserted the same key first (or a real constraint error).
                existing = Message.objects.filter(idempotency_key=idempotency_key).first()
                if existing is None:
                    raise
        if existing is not None:
            same_recipient = existing.to_staff_id == (to_staff.pk if to_staff else None)
            if existing.patient_id != (patient.pk if patient else None) or not same_recipient:
                raise Conflict(
                    f"Idempotency key {idempotency_key!r} already names another message "
                    f"(#{existing.pk})."
                )
            return existing, False
        if due_now:
            event(message, MessageStatus.QUEUED, f"Created and queued: {why}", at=now)
            publish_after_commit([message.pk])
        else:
            event(
                message, MessageStatus.PENDING,
                f"Created for {due:%Y-%m-%d %H:%M} UTC: {why}", at=now,
            )  # fmt: skip
        return message, True


def message_enqueue(
    *,
    patient: Patient,
    recipient: User | Literal["patient"],
    purpose: str,
    body: str,
    idempotency_key: str,
    urgency: str = "routine",
    not_before: datetime | None = None,
    subject_key: str = "",
    why: str,
    source_effect: OutboxEffect | None = None,
) -> Message:
    """One message about `patient` to the patient (`recipient=PATIENT`) or a member of staff.

    Idempotent on `idempotency_key`: the same key returns the existing row (a key already used
    for another patient or recipient is a Conflict). A message due now (no `not_before`, or one
    in the past) is published right after the caller's transaction commits; a later one is
    queued by the dispatcher when it is due. The policy (quiet hours, opt-out, budget, digest,
    suppression) is applied at send time."""
    if urgency not in Urgency.values:
        raise InvalidInput(f"Unknown urgency {urgency!r} (routine or urgent).")
    if not purpose or len(purpose) > 32:
        raise InvalidInput("A purpose is a short name such as 'checkin_request'.")
    if not idempotency_key:
        raise InvalidInput("An idempotency key is required.")
    if not body:
        raise InvalidInput("A message needs a body.")
    if not_before is not None and not_before.tzinfo is None:
        raise InvalidInput("not_before must be an aware datetime.")
    if recipient == PATIENT:
        to_staff = None
    elif isinstance(recipient, User):
        if recipient.clinic_id != patient.clinic_id:
            raise InvalidInput("Staff receive messages about their own clinic's patients only.")
        to_staff = recipient
    else:
        raise InvalidInput(f"Unknown recipient {recipient!r}.")
    message, _ = _create(
        clinic_id=patient.clinic_id, patient=patient, to_staff=to_staff, purpose=purpose,
        body=body, idempotency_key=idempotency_key, urgency=urgency, not_before=not_before,
        subject_key=subject_key, why=why, source_effect=source_effect,
    )  # fmt: skip
    return message


def recipients_for(*, patient: Patient, roles: list[str]) -> tuple[list[User], bool]:
    """Active staff on the patient's active care team with one of the roles (every member for
    "care_team"), by id; and whether the patient is a recipient ("patient")."""
    memberships = CareTeamMembership.objects.filter(
        patient_id=patient.pk, ended_at__isnull=True, staff__is_active=True
    ).select_related("staff")
    if CARE_TEAM not in roles:
        memberships = memberships.filter(staff__role__in=roles)
    staff = sorted({m.staff for m in memberships}, key=lambda user: user.pk)
    return staff, PATIENT in roles


def message_enqueue_for_roles(
    *,
    patient: Patient,
    roles: list[str],
    purpose: str,
    body: str,
    idempotency_key_prefix: str,
    urgency: str = "routine",
    why: str,
    subject_key: str = "",
    source_effect: OutboxEffect | None = None,
) -> list[Message]:
    """One message per recipient; keys are `{prefix}:staff:{user id}` and `{prefix}:patient`."""
    staff, to_patient = recipients_for(patient=patient, roles=roles)
    common = {
        "patient": patient, "purpose": purpose, "body": body, "urgency": urgency, "why": why,
        "subject_key": subject_key, "source_effect": source_effect,
    }  # fmt: skip
    with transaction.atomic():
        messages = [
            message_enqueue(
                recipient=user,
                idempotency_key=f"{idempotency_key_prefix}:staff:{user.pk}",
                **common,  # type: ignore[arg-type]
            )
            for user in staff
        ]
        if to_patient:
            messages.append(
                message_enqueue(
                    recipient=PATIENT,
                    idempotency_key=f"{idempotency_key_prefix}:patient",
                    **common,  # type: ignore[arg-type]
                )
            )
    return messages


@transaction.atomic(durable=True)
def message_resend(*, message_id: int) -> Message:
    """Staff action on a dead message: a fresh set of attempts, published at once."""
    message = Message.objects.select_for_update().get(pk=message_id)
    if message.status != MessageStatus.DEAD:
        raise Conflict(f"Only a dead message can be resent (this one is {message.status}).")
    now = clock.now()
    message.status = MessageStatus.QUEUED
    message.attempts = 0
    message.not_before = now
    message.claimed_at = now
    message.save(update_fields=["status", "attempts", "not_before", "claimed_at", "updated_at"])
    event(message, MessageStatus.QUEUED, "Resent by staff: a fresh set of attempts", at=now)
    publish_after_commit([message.pk])
    return message


# --- preferences --------------------------------------------------------------------------------

CONTACT_PREFERENCE_FIELDS = (
    "opted_out", "opted_out_sms", "opted_out_email", "opted_out_in_app", "daily_budget",
)  # fmt: skip
STAFF_PREFERENCE_FIELDS = ("daily_digest", "digest_hour", "channel")


@transaction.atomic
def contact_preference_set(*, patient: Patient, **changes: object) -> ContactPreference:
    unknown = set(changes) - set(CONTACT_PREFERENCE_FIELDS)
    if unknown:
        raise InvalidInput(f"Cannot change {', '.join(sorted(unknown))} here.")
    pref, _ = ContactPreference.objects.select_for_update().get_or_create(patient=patient)
    for field, value in changes.items():
        setattr(pref, field, value)
    pref.full_clean()
    pref.save()
    return pref


@transaction.atomic
def staff_notification_preference_set(
    *, staff: User, **changes: object
) -> StaffNotificationPreference:
    unknown = set(changes) - set(STAFF_PREFERENCE_FIELDS)
    if unknown:
        raise InvalidInput(f"Cannot change {', '.join(sorted(unknown))} here.")
    pref, _ = StaffNotificationPreference.objects.select_for_update().get_or_create(staff=staff)
    for field, value in changes.items():
        setattr(pref, field, value)
    pref.full_clean()
    pref.save()
    return pref


# --- daily digests ------------------------------------------------------------------------------


def _clinic_zone(clinic: Clinic | None) -> ZoneInfo:
    return ZoneInfo(clinic.time_zone if clinic is not None else "UTC")


def digests_compile(*, now: datetime | None = None) -> int:
    """Once per local day, at each digest reader's hour, gather their held routine messages into
    one digest message; returns how many digests were created. Held messages of staff who no
    longer want a digest are released to be sent one by one."""
    now = now or clock.now()
    waiting = set(
        Message.objects.filter(status=MessageStatus.HELD_FOR_DIGEST, digest__isnull=True)
        .values_list("to_staff_id", flat=True)
        .distinct()
    )
    if not waiting:
        return 0
    readers = {
        pref.staff_id: pref
        for pref in StaffNotificationPreference.objects.filter(
            staff_id__in=waiting, daily_digest=True
        ).select_related("staff__clinic")
    }
    created = 0
    for staff_id in sorted(waiting):
        pref = readers.get(staff_id)
        if pref is None or not pref.staff.is_active:
            _release_held(staff_id=staff_id, now=now)
            continue
        tz = _clinic_zone(pref.staff.clinic)
        local_date = now.astimezone(tz).date()
        if now < local_instants(local_date, pref.digest_hour, tz)[0]:
            continue
        if digest_compile_for(staff=pref.staff, local_date=local_date.isoformat(), now=now):
            created += 1
    return created


@transaction.atomic(durable=True)
def digest_compile_for(*, staff: User, local_date: str, now: datetime) -> Message | None:
    """The digest of `local_date` for one person (key `digest:{staff id}:{local date}`): at most
    one a day; messages held after it wait for the next one."""
    key = f"digest:{staff.pk}:{local_date}"
    if Message.objects.filter(idempotency_key=key).exists():
        return None
    held = list(
        Message.objects.select_for_update(skip_locked=True)
        .filter(to_staff=staff, status=MessageStatus.HELD_FOR_DIGEST, digest__isnull=True)
        .order_by("created_at", "pk")
    )
    included = []
    for message in held:
        reason = registry.suppression_reason(message)
        if reason:
            message.status = MessageStatus.SUPPRESSED
            message.save(update_fields=["status", "updated_at"])
            event(message, MessageStatus.SUPPRESSED, f"Suppressed: {reason}", at=now)
        else:
            included.append(message)
    if not included or staff.clinic_id is None:
        return None
    digest, _ = _create(
        clinic_id=staff.clinic_id, patient=None, to_staff=staff, purpose=Purpose.DIGEST,
        body=f"Your daily digest for {local_date}: {len(included)} message(s).",
        idempotency_key=key, urgency=Urgency.ROUTINE, not_before=None,
        subject_key=f"digest:{local_date}",
        why=f"Daily digest of {len(included)} routine message(s) held for {staff}",
        source_effect=None,
    )  # fmt: skip
    Message.objects.filter(pk__in=[m.pk for m in included]).update(digest=digest, updated_at=now)
    for message in included:
        event(
            message, MessageStatus.HELD_FOR_DIGEST,
            f"Included in the daily digest #{digest.pk} of {local_date}", at=now, related=digest,
        )  # fmt: skip
    return digest


@transaction.atomic(durable=True)
def _release_held(*, staff_id: int, now: datetime) -> None:
    for message in Message.objects.select_for_update(skip_locked=True).filter(
        to_staff_id=staff_id, status=MessageStatus.HELD_FOR_DIGEST, digest__isnull=True
    ):
        message.status = MessageStatus.PENDING
        message.not_before = now
        message.save(update_fields=["status", "not_before", "updated_at"])
        event(message, MessageStatus.PENDING, "Released: no daily digest wanted any more", at=now)


def render_digest(message: Message, channel: str) -> str:
    """The digest's text: its heading and each message it carries, rendered for the channel."""
    lines = [message.body, ""]
    for item in message.digested.select_related("patient").order_by("created_at", "pk"):
        about = f" ({item.patient.mrn})" if item.patient is not None else ""
        lines.append(f"- {item.purpose.replace('_', ' ')}{about}: {registry.render(item, channel)}")
    return "\n".join(lines)


# --- task reminders -----------------------------------------------------------------------------


def task_reminders_send(now: datetime | None = None) -> int:
    """Remind the care-team staff of each open task's discipline of tasks due within 24 hours
    or overdue: once per task per local day (the clinic's), urgent for urgent tasks. Key:
    `task-reminder:{task id}:{local date}` (per recipient). Returns how many were enqueued."""
    now = now or clock.now()
    tasks = list(
        CareTask.objects.filter(
            status=TaskStatus.OPEN, due_at__isnull=False, due_at__lte=now + timedelta(hours=24)
        )
        .select_related("clinic", "patient")
        .order_by("due_at", "pk")
    )
    if not tasks:
        return 0
    prefixes = {}
    for task in tasks:
        local_date = now.astimezone(_clinic_zone(task.clinic)).date()
        prefixes[task.pk] = f"task-reminder:{task.pk}:{local_date.isoformat()}"
    already = {
        key.rsplit(":staff:", 1)[0]
        for key in Message.objects.filter(
            purpose=Purpose.TASK_REMINDER, subject_key__in=[f"task:{t.pk}" for t in tasks]
        ).values_list("idempotency_key", flat=True)
    }
    enqueued = 0
    for task in tasks:
        prefix = prefixes[task.pk]
        if prefix in already:
            continue
        assert task.due_at is not None
        due_local = task.due_at.astimezone(_clinic_zone(task.clinic))
        when = "overdue since" if task.due_at <= now else "due"
        messages = message_enqueue_for_roles(
            patient=task.patient, roles=[task.discipline], purpose=Purpose.TASK_REMINDER,
            body=f"Task {when} {due_local:%a %d %b %H:%M}: {task.title} "
            f"(patient {task.patient.mrn})",
            idempotency_key_prefix=prefix,
            urgency=Urgency.URGENT if task.priority == Priority.URGENT else Urgency.ROUTINE,
            why=f"Open {task.discipline} task {when} {due_local:%Y-%m-%d %H:%M %Z}",
            subject_key=f"task:{task.pk}",
        )  # fmt: skip
        enqueued += len(messages)
    return enqueued


def task_reminder_suppressor(message: Message) -> str | None:
    """A reminder for a task that is no longer open is not sent."""
    kind, _, task_id = message.subject_key.partition(":")
    if kind != "task" or not task_id.isdigit():
        return None
    status = CareTask.objects.filter(pk=int(task_id)).values_list("status", flat=True).first()
    if status is None:
        return "the task no longer exists"
    if status != TaskStatus.OPEN:
        return f"the task is already {status}"
    return None
