"""Messaging services: the public API other apps call, preferences, daily digests and task
reminders. Sending itself is in `delivery.py` (the Celery tasks call it).

Public API (stable):

- `message_enqueue(...)`: one message to the patient (`recipient=PATIENT`) or a member of staff;
  idempotent on `idempotency_key`; published right after commit when due now.
- `message_enqueue_many([MessageRequest(...), ...])`: the same for a batch, in a constant number
  of queries (one INSERT … ON CONFLICT DO NOTHING for the messages, one for their events).
- `message_enqueue_for_roles(...)`: one message per recipient among the patient's active care
  team with the given roles ("care_team" = every member, "patient" = the patient).
- `register_suppressor(purpose, fn)`: `fn(message)` returns a reason to drop the message, or
  None; asked right before each send.
- `register_renderer(purpose, fn)`: `fn(message, channel)` returns the final text at send time.
- `register_preloader(purpose, fn)`: `fn(messages)` reads what the two hooks above need for a
  whole batch of messages about to be sent.
- `message_resend(message_id=...)`: staff action on a dead message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, TypeVar
from zoneinfo import ZoneInfo

from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import translation

from carehub.accounts.models import User
from carehub.clinics.clock import exclude_sandboxes
from carehub.clinics.models import Clinic
from carehub.core import clock
from carehub.core.exceptions import Conflict, InvalidInput
from carehub.core.models import Urgency
from carehub.core.sql import column, concrete_field
from carehub.messaging import registry
from carehub.messaging.delivery import _event, event, publish_after_commit
from carehub.messaging.models import (
    DUE_STATUSES,
    ContactPreference,
    DeliveryEvent,
    Message,
    MessageStatus,
    Purpose,
    StaffNotificationPreference,
)
from carehub.messaging.policy import local_instants
from carehub.pathways.models import OutboxEffect
from carehub.patients.models import CareTeamMembership, Patient
from carehub.worklists.models import CareTask, Priority, TaskStatus

logger = logging.getLogger(__name__)

PATIENT: Final = "patient"
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


def register_preloader(purpose: str, fn: Callable[[Sequence[Message]], None]) -> None:
    """`fn(messages)` reads, for a batch about to be sent, what the purpose's suppressor and
    renderer need (one query for the batch instead of one per message) and keeps it on the
    messages. Optional: without one, the hooks read per message."""
    registry.add_preloader(purpose, fn)


# --- enqueue ------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class MessageText:
    """What a message says and why, whoever it is to (a digest is to staff, about no patient)."""

    purpose: str
    body: str
    idempotency_key: str
    why: str
    urgency: str = "routine"
    not_before: datetime | None = None
    subject_key: str = ""
    source_effect: OutboxEffect | None = None


@dataclass(frozen=True, kw_only=True)
class MessageRequest(MessageText):
    """One message about a patient for `message_enqueue_many` (the arguments of
    `message_enqueue`)."""

    patient: Patient
    recipient: User | Literal["patient"]


_INSERT_FIELDS = [
    field for field in Message._meta.concrete_fields if not field.primary_key
]  # fmt: skip


def _insert_new(messages: list[Message]) -> dict[str, int]:
    """`INSERT … ON CONFLICT (idempotency_key) DO NOTHING RETURNING`: one statement for the
    batch; returns the ids of the rows inserted by key (a key already present is left out).
    A key inserted by a concurrent transaction waits for it, then counts as present."""
    table = connection.ops.quote_name(Message._meta.db_table)
    columns = ", ".join(column(field) for field in _INSERT_FIELDS)
    row = "(" + ", ".join(["%s"] * len(_INSERT_FIELDS)) + ")"
    params: list[Any] = []
    for message in messages:
        for field in _INSERT_FIELDS:
            value = field.pre_save(message, add=True)  # created_at / updated_at
            params.append(field.get_db_prep_save(value, connection))
    key = column(concrete_field(Message, "idempotency_key"))
    # Only quoted names from the model's metadata and placeholders: the values are parameters.
    sql = (
        f"INSERT INTO {table} ({columns}) VALUES {', '.join([row] * len(messages))} "  # noqa: S608
        f"ON CONFLICT ({key}) DO NOTHING RETURNING id, {key}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {str(found_key): int(pk) for pk, found_key in cursor.fetchall()}


def _create_many(messages: list[Message], whys: list[str]) -> list[tuple[Message, bool]]:
    """Insert each message once per key (concurrent callers get the same row), in one INSERT;
    then one INSERT of the new rows' delivery events and one publish, after commit, of those
    due now. Returns (message, created) in the order given; a key already used for another
    patient or recipient is a Conflict. `messages` carry status, not_before and claimed_at."""
    now = clock.now()
    first: dict[str, Message] = {}
    for message in messages:
        first.setdefault(message.idempotency_key, message)
    # One savepoint per batch: a Conflict undoes the whole batch and leaves the caller's
    # transaction usable.
    with transaction.atomic():
        inserted = _insert_new(list(first.values()))
        missing = [key for key in first if key not in inserted]
        existing = (
            {
                row.idempotency_key: row
                for row in Message.objects.filter(idempotency_key__in=missing)
            }
            if missing
            else {}
        )
        if len(existing) < len(missing):
            # DO NOTHING skipped a row whose key is nowhere to be found: never expected.
            raise IntegrityError(f"Message keys neither inserted nor found: {missing}")
        results: list[tuple[Message, bool]] = []
        events: list[DeliveryEvent] = []
        queued: list[int] = []
        seen: set[str] = set()
        for message, why in zip(messages, whys, strict=True):
            key = message.idempotency_key
            if key in inserted and key not in seen:
                seen.add(key)
                message.pk = inserted[key]
                message._state.adding = False
                message._state.db = connection.alias
                if message.status == MessageStatus.QUEUED:
                    reason = f"Created and queued: {why}"
                    queued.append(message.pk)
                else:
                    reason = f"Created for {message.not_before:%Y-%m-%d %H:%M} UTC: {why}"
                events.append(
                    DeliveryEvent(
                        message=message,
                        at=now,
                        status=message.status,
                        reason=reason[:1000],
                        attempt=0,
                    )
                )
                results.append((message, True))
                continue
            found = existing.get(key) or first[key]
            if found.patient_id != message.patient_id or found.to_staff_id != message.to_staff_id:
                raise Conflict(
                    f"Idempotency key {key!r} already names another message (#{found.pk})."
                )
            results.append((found, False))
        if events:
            DeliveryEvent.objects.bulk_create(events)
        if queued:
            publish_after_commit(queued)
    return results


def _new_message(
    text: MessageText,
    *,
    clinic_id: int,
    patient: Patient | None,
    to_staff: User | None,
    now: datetime,
) -> Message:
    due = text.not_before.astimezone(UTC) if text.not_before is not None else now
    due_now = due <= now
    return Message(
        clinic_id=clinic_id,
        patient=patient,
        to_staff=to_staff,
        purpose=text.purpose,
        urgency=text.urgency,
        body=text.body,
        subject_key=text.subject_key[:100],
        idempotency_key=text.idempotency_key,
        why=text.why[:500],
        status=MessageStatus.QUEUED if due_now else MessageStatus.PENDING,
        not_before=due,
        claimed_at=now if due_now else None,
        source_effect=text.source_effect,
    )


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
    request = MessageRequest(
        patient=patient,
        recipient=recipient,
        purpose=purpose,
        body=body,
        idempotency_key=idempotency_key,
        urgency=urgency,
        not_before=not_before,
        subject_key=subject_key,
        why=why,
        source_effect=source_effect,
    )
    return message_enqueue_many([request])[0]


def _validated(request: MessageRequest) -> User | None:
    """The staff recipient (None for the patient), or InvalidInput."""
    if request.urgency not in Urgency.values:
        raise InvalidInput(f"Unknown urgency {request.urgency!r} (routine or urgent).")
    if not request.purpose or len(request.purpose) > 32:
        raise InvalidInput("A purpose is a short name such as 'checkin_request'.")
    if not request.idempotency_key:
        raise InvalidInput("An idempotency key is required.")
    if not request.body:
        raise InvalidInput("A message needs a body.")
    if request.not_before is not None and request.not_before.tzinfo is None:
        raise InvalidInput("not_before must be an aware datetime.")
    if request.recipient == PATIENT:
        return None
    if isinstance(request.recipient, User):
        if request.recipient.clinic_id != request.patient.clinic_id:
            raise InvalidInput("Staff receive messages about their own clinic's patients only.")
        return request.recipient
    raise InvalidInput(f"Unknown recipient {request.recipient!r}.")


def message_enqueue_many(requests: Sequence[MessageRequest]) -> list[Message]:
    """`message_enqueue` for many messages at once, with the same guarantees, in a constant
    number of queries: one INSERT … ON CONFLICT (idempotency_key) DO NOTHING for the messages,
    one for their delivery events, one lookup of keys that already existed (if any), and the
    ids due now published after the caller's transaction commits. Returns the messages in the
    order of `requests` (the existing row for a key already used)."""
    if not requests:
        return []
    staff = [_validated(request) for request in requests]
    now = clock.now()
    messages = [
        _new_message(
            request,
            clinic_id=request.patient.clinic_id,
            patient=request.patient,
            to_staff=to_staff,
            now=now,
        )
        for request, to_staff in zip(requests, staff, strict=True)
    ]
    created = _create_many(messages, [request.why for request in requests])
    return [message for message, _ in created]


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


def in_patients_language(patient: Patient, body: str) -> str:
    """A text written in English (a pathway's notice to the patient) in the patient's language:
    the English text is its msgid in `carehub/locale` (ADR 0020); one without a translation goes
    as written (`tests/carehub/test_translations.py` fails on a built-in one)."""
    with translation.override(patient.language):
        return translation.gettext(body)


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
    common = MessageRequest(
        patient=patient,
        recipient=PATIENT,
        purpose=purpose,
        body=body,
        idempotency_key=f"{idempotency_key_prefix}:patient",
        urgency=urgency,
        why=why,
        subject_key=subject_key,
        source_effect=source_effect,
    )
    requests = [
        replace(common, recipient=user, idempotency_key=f"{idempotency_key_prefix}:staff:{user.pk}")
        for user in staff
    ]
    if to_patient:
        requests.append(replace(common, body=in_patients_language(patient, body)))
    messages = message_enqueue_many(requests)
    return messages


def messages_cancel(*, subject_keys: Sequence[str], reason: str, now: datetime) -> int:
    """Messages about these subjects not sent yet (waiting for their time, deferred, or waiting
    to retry) are not sent: each is marked suppressed with a delivery event giving `reason`.
    Messages a worker holds are left to it (its suppression check sees the same state)."""
    if not subject_keys:
        return 0
    waiting = list(
        Message.objects.select_for_update(skip_locked=True)
        .filter(subject_key__in=list(subject_keys), status__in=DUE_STATUSES)
        .order_by("pk")
    )
    Message.objects.filter(pk__in=[m.pk for m in waiting]).update(
        status=MessageStatus.SUPPRESSED, updated_at=clock.now()
    )
    DeliveryEvent.objects.bulk_create(
        [_event(m, MessageStatus.SUPPRESSED, f"Cancelled: {reason}", at=now) for m in waiting]
    )
    return len(waiting)


@transaction.atomic(durable=True)
def message_resend(*, message_id: int) -> Message:
    """Staff action on a dead message: a fresh set of attempts, published at once."""
    message = Message.objects.select_for_update().get(pk=message_id)
    if message.status != MessageStatus.DEAD:
        raise Conflict(f"Only a dead message can be resent (this one is {message.status}).")
    # A message no longer needed (its check-in answered or closed) would only be suppressed:
    # refused, saying why, rather than "resent" into a suppression.
    not_needed = registry.suppression_reason(message)
    if not_needed:
        raise Conflict(
            f"Not resent: this message is no longer needed ({not_needed}).",
            extra={"current": {"status": message.status, "not_needed": not_needed}},
        )
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
    "opted_out",
    "opted_out_sms",
    "opted_out_email",
    "opted_out_in_app",
    "daily_budget",
)
STAFF_PREFERENCE_FIELDS = ("daily_digest", "digest_hour", "channel")


P = TypeVar("P", ContactPreference, StaffNotificationPreference)


def _preference_set(
    model: type[P], fields: tuple[str, ...], owner: dict[str, Any], changes: dict[str, object]
) -> P:
    """Change the named fields of the owner's preferences (made on first use), validated."""
    unknown = set(changes) - set(fields)
    if unknown:
        raise InvalidInput(f"Cannot change {', '.join(sorted(unknown))} here.")
    pref, _ = model.objects.select_for_update().get_or_create(**owner)
    for field, value in changes.items():
        setattr(pref, field, value)
    pref.full_clean()
    pref.save()
    return pref


@transaction.atomic
def contact_preference_set(*, patient: Patient, **changes: object) -> ContactPreference:
    return _preference_set(
        ContactPreference, CONTACT_PREFERENCE_FIELDS, {"patient": patient}, changes
    )


@transaction.atomic
def staff_notification_preference_set(
    *, staff: User, **changes: object
) -> StaffNotificationPreference:
    return _preference_set(
        StaffNotificationPreference, STAFF_PREFERENCE_FIELDS, {"staff": staff}, changes
    )


# --- daily digests ------------------------------------------------------------------------------


def _clinic_zone(clinic: Clinic | None) -> ZoneInfo:
    return ZoneInfo(clinic.time_zone if clinic is not None else "UTC")


def _clinic_scope(clinic_id: int | None, field: str = "clinic_id") -> Q:
    """The wall clock's runs leave sandbox clinics out; an advance of a sandbox's test clock
    runs for that clinic alone (ADR 0024)."""
    return exclude_sandboxes(field) if clinic_id is None else Q(**{field: clinic_id})


def digests_compile(*, now: datetime | None = None, clinic_id: int | None = None) -> int:
    """Once per local day, at each digest reader's hour, gather their held routine messages into
    one digest message; returns how many digests were created. Held messages of staff who no
    longer want a digest are released to be sent one by one."""
    now = now or clock.now()
    waiting = set(
        Message.objects.filter(status=MessageStatus.HELD_FOR_DIGEST, digest__isnull=True)
        .filter(_clinic_scope(clinic_id))
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
    why = f"Daily digest of {len(included)} routine message(s) held for {staff}"
    [(digest, _)] = _create_many(
        [
            _new_message(
                MessageText(
                    purpose=Purpose.DIGEST,
                    body=f"Your daily digest for {local_date}: {len(included)} message(s).",
                    idempotency_key=key,
                    subject_key=f"digest:{local_date}",
                    why=why,
                ),
                clinic_id=staff.clinic_id,
                patient=None,
                to_staff=staff,
                now=clock.now(),
            )
        ],
        [why],
    )
    Message.objects.filter(pk__in=[m.pk for m in included]).update(digest=digest, updated_at=now)
    for message in included:
        event(
            message,
            MessageStatus.HELD_FOR_DIGEST,
            f"Included in the daily digest #{digest.pk} of {local_date}",
            at=now,
            related_id=digest.pk,
        )
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


def task_reminders_send(now: datetime | None = None, *, clinic_id: int | None = None) -> int:
    """Remind the care-team staff of each open task's discipline of tasks due within 24 hours
    or overdue: once per task per local day (the clinic's), urgent for urgent tasks. Key:
    `task-reminder:{task id}:{local date}` (per recipient). Returns how many were enqueued."""
    now = now or clock.now()
    tasks = list(
        CareTask.objects.filter(
            status=TaskStatus.OPEN, due_at__isnull=False, due_at__lte=now + timedelta(hours=24)
        )
        .filter(_clinic_scope(clinic_id))
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
            patient=task.patient,
            roles=[task.discipline],
            purpose=Purpose.TASK_REMINDER,
            body=f"Task {when} {due_local:%a %d %b %H:%M}: {task.title} "
            f"(patient {task.patient.mrn})",
            idempotency_key_prefix=prefix,
            urgency=Urgency.URGENT if task.priority == Priority.URGENT else Urgency.ROUTINE,
            why=f"Open {task.discipline} task {when} {due_local:%Y-%m-%d %H:%M %Z}",
            subject_key=f"task:{task.pk}",
        )
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
