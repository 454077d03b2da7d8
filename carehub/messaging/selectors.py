"""Reads of the messaging app: what was sent or not, and why."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.db.models import Prefetch, QuerySet

from carehub.accounts.models import User
from carehub.core.selectors import one_or_not_found
from carehub.messaging.access import messages_visible_to
from carehub.messaging.channels import UnreachableContact, sms_gateway_path
from carehub.messaging.models import (
    DeliveryEvent,
    Message,
    MessageStatus,
    RecordedMessage,
)
from carehub.messaging.registry import preload, suppression_reason
from carehub.patients.models import Patient


@dataclass(frozen=True)
class DeadMessageState:
    """What can be done about a dead message."""

    unreachable: bool  # its last failure: the patient's contact cannot be reached (fix it first)
    not_needed: str  # why resending would send nothing (e.g. "already answered"), or ""


def dead_message_states(messages: Sequence[Message]) -> dict[int, DeadMessageState]:
    """Per dead message: whether the patient's contact failed (the last error is an
    `UnreachableContact`) and whether it is still needed (the suppressors its purpose
    registered), for a whole page at once (the preloaders: a constant number of queries)."""
    preload(messages)
    mark = f"{UnreachableContact.__name__}:"
    states = {}
    for message in messages:
        lines = message.last_error.strip().splitlines()
        states[message.pk] = DeadMessageState(
            unreachable=bool(message.to_patient and lines and mark in lines[-1]),
            not_needed=suppression_reason(message) or "",
        )
    return states


def message_history(*, message_id: int) -> list[DeliveryEvent]:
    """Every change of the message's state with its reason, oldest first."""
    return list(
        DeliveryEvent.objects.filter(message_id=message_id)
        .select_related("related_message")
        .order_by("pk")
    )


def _with_events(messages: QuerySet[Message]) -> QuerySet[Message]:
    return messages.prefetch_related(
        Prefetch("events", queryset=DeliveryEvent.objects.order_by("pk"))
    )


def message_list_for_patient(*, user: User, patient: Patient) -> QuerySet[Message]:
    """Messages about the patient the user may see, with their delivery events (two queries
    whatever the page size; the ordering is the caller's)."""
    return _with_events(messages_visible_to(user).filter(patient=patient))


def message_dead_list_for_user(*, user: User) -> QuerySet[Message]:
    """Dead messages (delivery gave up) the user may see, with their delivery events."""
    return _with_events(messages_visible_to(user).filter(status=MessageStatus.DEAD))


def message_get_for_user(*, user: User, message_id: int) -> Message:
    visible = _with_events(messages_visible_to(user)).select_related("patient")
    return one_or_not_found(visible, "message", pk=message_id)


def _names_subclass(path: str, base: str) -> bool:
    from django.utils.module_loading import import_string

    try:
        found = import_string(path)
    except ImportError:
        return False
    return isinstance(found, type) and issubclass(found, import_string(base))


def recording_sms_gateway() -> bool:
    """Whether MESSAGING_SMS_GATEWAY is the recording development gateway (or one built on it)."""
    return _names_subclass(sms_gateway_path(), "carehub.messaging.channels.RecordingSmsGateway")


def recording_email_backend() -> bool:
    """Whether EMAIL_BACKEND is the recording development backend (or one built on it)."""
    from django.conf import settings

    return _names_subclass(
        settings.EMAIL_BACKEND, "carehub.messaging.channels.RecordingEmailBackend"
    )


def recording_backends_configured() -> bool:
    """Whether the development backends record what is "sent" (SMS gateway or e-mail backend)."""
    return recording_sms_gateway() or recording_email_backend()


def recorded_messages_for_user(
    *, user: User, channel: str = "", limit: int = 200
) -> list[tuple[RecordedMessage, Message]]:
    """What the development backends recorded for the messages the user may see
    (`messages_visible_to`: their patients, their own digests), newest first, each with the
    message it delivered (a recorded message carries the message's idempotency key)."""
    keys = messages_visible_to(user).values("idempotency_key")
    recorded = RecordedMessage.objects.filter(idempotency_key__in=keys)
    if channel:
        recorded = recorded.filter(channel=channel)
    rows = list(recorded.order_by("-at", "-pk")[:limit])
    messages = {
        m.idempotency_key: m
        for m in messages_visible_to(user)
        .filter(idempotency_key__in=[r.idempotency_key for r in rows])
        .select_related("patient", "to_staff")
    }
    return [(row, messages[row.idempotency_key]) for row in rows]


def recorded_message_get_for_user(
    *, user: User, recorded_id: int
) -> tuple[RecordedMessage, Message]:
    """One recorded message of a message the user may see (NotFound otherwise)."""
    keys = messages_visible_to(user).values("idempotency_key")
    recorded = one_or_not_found(
        RecordedMessage.objects.filter(idempotency_key__in=keys), "message", pk=recorded_id
    )
    return recorded, messages_visible_to(user).get(idempotency_key=recorded.idempotency_key)
