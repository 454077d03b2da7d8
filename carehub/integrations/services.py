"""Writes of the integrations app: recording a change (the feed and, through the fan-out
trigger, its webhook deliveries), subscriptions, and resending a dead delivery.

`change_record` runs inside the caller's transaction: a change that rolls back leaves no event
and no delivery behind. Sending is `carehub.integrations.sender`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import transaction

from carehub.accounts.models import User
from carehub.clinics.models import Clinic
from carehub.core import clock
from carehub.core.exceptions import Conflict, InvalidInput, NotFound
from carehub.integrations.models import (
    ChangeEvent,
    ChangeType,
    DeliveryStatus,
    WebhookDelivery,
    WebhookSubscription,
    new_secret,
)

# Only these kinds of values may travel in an event's data: ids, codes, numbers, booleans.
_ALLOWED = (int, float, bool, type(None))
CODE_MAX_LENGTH = 80


def _checked_data(data: dict[str, Any]) -> dict[str, Any]:
    """An event's data: ids and codes only. A string longer than a code is refused, so no free
    text (a note, a reason, a message body) ever leaves in an event."""
    for key, value in data.items():
        if isinstance(value, str):
            if len(value) > CODE_MAX_LENGTH:
                raise ValueError(f"event data '{key}' is longer than a code")
        elif not isinstance(value, _ALLOWED):
            raise ValueError(f"event data '{key}' must be an id, a code, a number or a boolean")
    return data


def change_record(
    *,
    clinic_id: int,
    type: ChangeType,
    subject_id: int,
    patient_id: int | None = None,
    enrolment_id: int | None = None,
    data: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> ChangeEvent:
    """Record a change in the caller's transaction (the trigger adds its deliveries)."""
    return ChangeEvent.objects.create(
        clinic_id=clinic_id,
        type=type,
        subject_id=subject_id,
        patient_id=patient_id,
        enrolment_id=enrolment_id,
        data=_checked_data(dict(data or {})),
        occurred_at=at or clock.now(),
    )


def _event_types(values: Iterable[str]) -> list[str]:
    types = sorted(set(values))
    unknown = [value for value in types if value not in ChangeType.values]
    if not types:
        raise InvalidInput("Name at least one event type.", extra={"field": "event_types"})
    if unknown:
        raise InvalidInput(
            f"Unknown event type(s): {', '.join(unknown)}.",
            extra={"field": "event_types", "allowed": list(ChangeType.values)},
        )
    return types


@transaction.atomic
def webhook_subscription_create(
    *, clinic: Clinic, url: str, event_types: Iterable[str], description: str = "", user: User
) -> WebhookSubscription:
    """A receiver for the clinic's events from now on (earlier events are in the feed)."""
    return WebhookSubscription.objects.create(
        clinic=clinic,
        url=url,
        event_types=_event_types(event_types),
        description=description,
        created_by=user,
    )


@transaction.atomic
def webhook_subscription_update(
    *,
    subscription: WebhookSubscription,
    url: str | None = None,
    event_types: Iterable[str] | None = None,
    active: bool | None = None,
    description: str | None = None,
    rotate_secret: bool = False,
) -> WebhookSubscription:
    """Change a receiver. Deactivating it stops new deliveries; those pending are still sent.
    `rotate_secret`: a new signing secret from the next attempt on."""
    if url is not None:
        subscription.url = url
    if event_types is not None:
        subscription.event_types = _event_types(event_types)
    if active is not None:
        subscription.active = active
    if description is not None:
        subscription.description = description
    if rotate_secret:
        subscription.secret = new_secret()
    subscription.save()
    return subscription


@transaction.atomic
def webhook_delivery_resend(*, delivery_id: int) -> WebhookDelivery:
    """Give a dead delivery a fresh set of attempts, due now (409 unless it is dead)."""
    try:
        delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery_id)
    except WebhookDelivery.DoesNotExist as exc:
        raise NotFound("No such webhook delivery.") from exc
    if delivery.status != DeliveryStatus.DEAD:
        raise Conflict(
            f"Only a dead delivery can be resent (this one is {delivery.status}).",
            extra={"current": {"delivery": delivery.pk, "status": delivery.status}},
        )
    delivery.status = DeliveryStatus.PENDING
    delivery.attempts = 0
    delivery.next_attempt_at = clock.now()
    delivery.save(update_fields=["status", "attempts", "next_attempt_at"])
    return delivery
