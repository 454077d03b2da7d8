"""The clinic's change feed and its webhook receivers (carehub.integrations).

`GET /events?after=<cursor>` pages through the clinic's changes oldest first; every answer
carries `next_after`, the cursor to send next time (also when the page is empty), so a poller
never misses a change, even one that committed late. `/webhooks` lets the clinic admin register
receivers (URL, event types; the signing secret is shown when created and when rotated), list
each receiver's deliveries and resend a dead one.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.response import Response

from carehub.api.patients import AuditedApi
from carehub.api.requests import StaffRequest, validated
from carehub.api.schema import page_schema, problems, read_schema
from carehub.audit.models import Action
from carehub.care_access import Operation
from carehub.core.exceptions import InvalidInput
from carehub.integrations.models import ChangeType, DeliveryStatus, WebhookSubscription
from carehub.integrations.selectors import (
    FEED_MAX_LIMIT,
    change_feed,
    feed_cursor,
    feed_position,
    webhook_deliveries_for_subscription,
    webhook_delivery_get,
    webhook_subscription_get,
    webhook_subscriptions_for_clinic,
)
from carehub.integrations.sender import event_body
from carehub.integrations.services import (
    webhook_delivery_resend,
    webhook_subscription_create,
    webhook_subscription_update,
)


class ChangeDataSerializer(serializers.Serializer):
    clinic_id = serializers.IntegerField()
    patient_id = serializers.IntegerField(allow_null=True)
    enrolment_id = serializers.UUIDField(allow_null=True, help_text="The enrolment's public id")
    subject_id = serializers.IntegerField(help_text="The id of the row the event is about")


class ChangeEventSerializer(serializers.Serializer):
    id = serializers.UUIDField(help_text="The event id (the webhook-id header): dedupe on it")
    type = serializers.ChoiceField(choices=ChangeType.choices)
    timestamp = serializers.DateTimeField()
    data = ChangeDataSerializer(help_text="Ids and codes of the change (type-specific members)")  # type: ignore[assignment]  # a field named like a DRF attribute


class FeedPageSerializer(serializers.Serializer):
    results = ChangeEventSerializer(many=True)
    next_after = serializers.CharField(
        allow_null=True, help_text="Send as `after` next time (null: no change yet)"
    )


class EventFeedApi(AuditedApi):
    """The clinic's changes, oldest first, after a cursor."""

    operation = Operation.EVENT_LIST
    audit_action = Action.EVENT_LIST

    @extend_schema(
        operation_id="events_list",
        tags=["integrations"],
        parameters=[
            OpenApiParameter(
                "after", OpenApiTypes.STR, description="`next_after` of the previous answer"
            ),
            OpenApiParameter(
                "limit", OpenApiTypes.INT, description=f"1 to {FEED_MAX_LIMIT} (default 100)"
            ),
            OpenApiParameter(
                "type",
                OpenApiTypes.STR,
                many=True,
                enum=list(ChangeType.values),
                description="Only these event types (repeatable)",
            ),
        ],
        responses={200: FeedPageSerializer, **problems(400, 403)},
    )
    def get(self, request: StaffRequest) -> Response:
        clinic_id = request.user.clinic_id
        after_param = request.query_params.get("after")
        after = feed_position(clinic_id=clinic_id, cursor=after_param) if after_param else None
        try:
            limit = int(request.query_params.get("limit", 100))
        except ValueError as exc:
            raise InvalidInput("limit must be a number.", extra={"field": "limit"}) from exc
        if not 1 <= limit <= FEED_MAX_LIMIT:
            raise InvalidInput(f"limit must be 1 to {FEED_MAX_LIMIT}.", extra={"field": "limit"})
        types = request.query_params.getlist("type")
        unknown = [t for t in types if t not in ChangeType.values]
        if unknown:
            raise InvalidInput(f"Unknown event type: {unknown[0]}.", extra={"field": "type"})
        events = change_feed(clinic_id=clinic_id, after=after, limit=limit, types=types or None)
        next_after = feed_cursor(events[-1]) if events else after_param
        self.audit(
            patients=sorted({e.patient_id for e in events if e.patient_id}),
            detail={"listed": len(events)},
        )
        return Response(
            {"results": [event_body(e) for e in events], "next_after": next_after or None}
        )


def _receiver_url(url: str) -> str:
    scheme = urlsplit(url).scheme
    if scheme != "https" and not (scheme == "http" and settings.WEBHOOK_ALLOW_HTTP):
        raise InvalidInput("A receiver's URL must use https.", extra={"field": "url"})
    return url


class SubscriptionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.URLField()
    event_types = serializers.ListField(child=serializers.ChoiceField(choices=ChangeType.choices))
    active = serializers.BooleanField()
    description = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()


class SubscriptionWithSecretSerializer(SubscriptionSerializer):
    secret = serializers.CharField(
        help_text="The Standard Webhooks signing secret: shown now only; keep it"
    )


class SubscriptionChangedSerializer(SubscriptionSerializer):
    secret = serializers.CharField(
        required=False, help_text="The new signing secret, when `rotate_secret` was asked for"
    )


class _WebhookApi(AuditedApi):
    """The clinic's webhook receivers and their deliveries: every request needs
    `webhook.manage`."""

    operation = Operation.WEBHOOK_MANAGE

    def scoped_subscription(self, webhook_id: int) -> WebhookSubscription:
        """The clinic's receiver the URL names (404 otherwise), as the object of the audit row."""
        subscription = webhook_subscription_get(
            clinic_id=self.request.user.clinic_id, subscription_id=webhook_id
        )
        self.audit_obj = subscription
        return subscription


class WebhookListCreateApi(_WebhookApi):
    """The clinic's webhook receivers (GET), or a new one (POST)."""

    method_operations = {
        "GET": (Operation.WEBHOOK_MANAGE, Action.WEBHOOK_LIST),
        "POST": (Operation.WEBHOOK_MANAGE, Action.WEBHOOK_CREATE),
    }

    class InputSerializer(serializers.Serializer):
        url = serializers.URLField(max_length=500)
        event_types = serializers.ListField(
            child=serializers.ChoiceField(choices=ChangeType.choices), min_length=1
        )
        description = serializers.CharField(required=False, allow_blank=True, max_length=200)

    @page_schema("webhooks_list", "integrations", SubscriptionSerializer, "WebhookPage")
    def get(self, request: StaffRequest) -> Response:
        return self.audited_page(
            webhook_subscriptions_for_clinic(clinic_id=request.user.clinic_id),
            SubscriptionSerializer,
        )

    @extend_schema(
        operation_id="webhooks_create",
        tags=["integrations"],
        request=InputSerializer,
        responses={201: SubscriptionWithSecretSerializer, **problems(400, 403)},
    )
    def post(self, request: StaffRequest) -> Response:
        data = validated(self.InputSerializer, request.data)
        subscription = webhook_subscription_create(
            clinic=request.user.clinic,
            url=_receiver_url(data.validated_data["url"]),
            event_types=data.validated_data["event_types"],
            description=data.validated_data.get("description", ""),
            user=request.user,
        )
        self.audit_obj = subscription
        self.audit(detail={"subscription": subscription.pk})
        return Response(SubscriptionWithSecretSerializer(subscription).data, status=201)


class WebhookDetailApi(_WebhookApi):
    """One receiver (GET), or a change to it (PATCH: URL, types, active, a new secret)."""

    method_operations = {
        "GET": (Operation.WEBHOOK_MANAGE, Action.WEBHOOK_VIEW),
        "PATCH": (Operation.WEBHOOK_MANAGE, Action.WEBHOOK_UPDATE),
    }

    class InputSerializer(serializers.Serializer):
        url = serializers.URLField(required=False, max_length=500)
        event_types = serializers.ListField(
            child=serializers.ChoiceField(choices=ChangeType.choices), min_length=1, required=False
        )
        active = serializers.BooleanField(required=False)
        description = serializers.CharField(required=False, allow_blank=True, max_length=200)
        rotate_secret = serializers.BooleanField(
            required=False, default=False, help_text="A new signing secret (shown in the answer)"
        )

    @read_schema("webhooks_retrieve", "integrations", SubscriptionSerializer)
    def get(self, request: StaffRequest, webhook_id: int) -> Response:
        subscription = self.scoped_subscription(webhook_id)
        self.audit()
        return Response(SubscriptionSerializer(subscription).data)

    @extend_schema(
        operation_id="webhooks_update",
        tags=["integrations"],
        request=InputSerializer,
        responses={
            200: SubscriptionChangedSerializer,
            **problems(400, 403, 404),
        },
    )
    def patch(self, request: StaffRequest, webhook_id: int) -> Response:
        subscription = self.scoped_subscription(webhook_id)
        data = validated(self.InputSerializer, request.data)
        values: dict[str, Any] = dict(data.validated_data)
        if "url" in values:
            values["url"] = _receiver_url(values["url"])
        subscription = webhook_subscription_update(subscription=subscription, **values)
        self.audit(detail={"subscription": subscription.pk, "rotated": values["rotate_secret"]})
        body = SubscriptionSerializer(subscription).data
        if values["rotate_secret"]:
            body["secret"] = subscription.secret
        return Response(body)


class DeliverySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    event = serializers.SerializerMethodField()
    status = serializers.ChoiceField(choices=DeliveryStatus.choices)
    attempts = serializers.IntegerField()
    next_attempt_at = serializers.DateTimeField()
    delivered_at = serializers.DateTimeField(allow_null=True)
    last_status_code = serializers.IntegerField(allow_null=True)
    last_error = serializers.CharField(allow_blank=True)

    @extend_schema_field(ChangeEventSerializer)
    def get_event(self, delivery: Any) -> dict[str, Any]:
        return event_body(delivery.event)


class WebhookDeliveryListApi(_WebhookApi):
    """A receiver's deliveries, newest first."""

    audit_action = Action.WEBHOOK_DELIVERY_LIST

    @page_schema(
        "webhooks_deliveries_list",
        "integrations",
        DeliverySerializer,
        "WebhookDeliveryPage",
        errors=(400, 403, 404),
    )
    def get(self, request: StaffRequest, webhook_id: int) -> Response:
        subscription = self.scoped_subscription(webhook_id)
        return self.audited_page(
            webhook_deliveries_for_subscription(subscription=subscription), DeliverySerializer
        )


class WebhookDeliveryResendApi(_WebhookApi):
    """Give a dead delivery a fresh set of attempts (409 unless it is dead)."""

    audit_action = Action.WEBHOOK_DELIVERY_RESEND

    @extend_schema(
        operation_id="webhooks_deliveries_resend",
        tags=["integrations"],
        request=None,
        responses={200: DeliverySerializer, **problems(403, 404, 409)},
    )
    def post(self, request: StaffRequest, delivery_id: int) -> Response:
        delivery = webhook_delivery_get(clinic_id=request.user.clinic_id, delivery_id=delivery_id)
        self.audit_obj = delivery
        webhook_delivery_resend(delivery_id=delivery.pk)
        fresh = webhook_delivery_get(clinic_id=request.user.clinic_id, delivery_id=delivery.pk)
        self.audit(detail={"delivery": delivery.pk})
        return Response(DeliverySerializer(fresh).data)
