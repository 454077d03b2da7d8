"""Reads of the integrations app: the change feed and a clinic's subscriptions and deliveries."""

from __future__ import annotations

from django.core import signing
from django.db.models import QuerySet
from django.db.models.expressions import RawSQL

from carehub.core.exceptions import InvalidInput, NotFound
from carehub.integrations.horizon import HORIZON_SQL
from carehub.integrations.models import ChangeEvent, WebhookDelivery, WebhookSubscription

FEED_SALT = "carehub.integrations.feed"
FEED_MAX_LIMIT = 500

# Rows below the horizon: nothing can commit before them any more (carehub.integrations.horizon).
_HORIZON = RawSQL(HORIZON_SQL, [])  # noqa: S611 - a constant, no input


_EVENT_FIELDS = (
    "public_id",
    "clinic_id",
    "patient_id",
    "enrolment_id",
    "type",
    "subject_id",
    "data",
    "occurred_at",
    "txid",
)


def feed_cursor(event: ChangeEvent) -> str:
    """The opaque position just after `event` (signed: a client cannot forge another clinic's)."""
    return signing.dumps([event.clinic_id, event.txid, event.pk], salt=FEED_SALT, compress=True)


def feed_position(*, clinic_id: int, cursor: str) -> tuple[int, int]:
    """(txid, id) of a cursor given to this clinic; InvalidInput when it is not one."""
    try:
        clinic, txid, pk = signing.loads(cursor, salt=FEED_SALT)
    except (signing.BadSignature, ValueError, TypeError) as exc:
        raise InvalidInput("Not a cursor of this feed.", extra={"field": "after"}) from exc
    if clinic != clinic_id:
        raise InvalidInput("Not a cursor of this feed.", extra={"field": "after"})
    return int(txid), int(pk)


def change_feed(
    *, clinic_id: int, after: tuple[int, int] | None, limit: int, types: list[str] | None = None
) -> list[ChangeEvent]:
    """The clinic's changes after a position, oldest first, in commit-safe order."""
    rows = ChangeEvent.objects.filter(clinic_id=clinic_id, txid__lt=_HORIZON)
    if after is not None:
        txid, pk = after
        rows = rows.filter(txid__gte=txid).exclude(txid=txid, pk__lte=pk)
    if types:
        rows = rows.filter(type__in=types)
    rows = rows.select_related("enrolment").only("enrolment__public_id", *_EVENT_FIELDS)
    return list(rows.order_by("txid", "pk")[: min(limit, FEED_MAX_LIMIT)])


def webhook_subscriptions_for_clinic(*, clinic_id: int) -> QuerySet[WebhookSubscription]:
    return WebhookSubscription.objects.filter(clinic_id=clinic_id)


def webhook_subscription_get(*, clinic_id: int, subscription_id: int) -> WebhookSubscription:
    try:
        return WebhookSubscription.objects.get(clinic_id=clinic_id, pk=subscription_id)
    except WebhookSubscription.DoesNotExist as exc:
        raise NotFound("No such webhook subscription.") from exc


def webhook_deliveries_for_subscription(
    *, subscription: WebhookSubscription
) -> QuerySet[WebhookDelivery]:
    return WebhookDelivery.objects.filter(subscription=subscription).select_related(
        "event__enrolment"
    )


def webhook_delivery_get(*, clinic_id: int, delivery_id: int) -> WebhookDelivery:
    try:
        return WebhookDelivery.objects.select_related("event", "subscription").get(
            subscription__clinic_id=clinic_id, pk=delivery_id
        )
    except WebhookDelivery.DoesNotExist as exc:
        raise NotFound("No such webhook delivery.") from exc
