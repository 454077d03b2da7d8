"""Admin: a clinic's webhook receivers (editable by its admin), the change feed and the
deliveries (read only; dead deliveries can be resent). Scoped to the user's clinic."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from carehub.core.admin import ReadOnlyAdmin, resend_each
from carehub.core.admin_scope import ClinicScopedAdmin
from carehub.integrations.models import (
    ChangeEvent,
    DeliveryStatus,
    WebhookDelivery,
    WebhookSubscription,
)
from carehub.integrations.services import webhook_delivery_resend


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(ClinicScopedAdmin):
    clinic_path = "clinic"

    list_display = ["url", "active", "description", "created_at"]
    list_filter = ["active"]
    readonly_fields = ["created_by", "created_at"]
    fields = ["clinic", "url", "event_types", "active", "description", "secret", "created_by"]

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(ChangeEvent)
class ChangeEventAdmin(ReadOnlyAdmin):
    clinic_path = "clinic"

    list_display = ["occurred_at", "type", "patient", "subject_id", "public_id"]
    list_filter = ["type"]
    list_select_related = ["patient"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ClinicScopedAdmin):
    clinic_path = "subscription__clinic"

    list_display = ["event", "subscription", "status", "attempts", "next_attempt_at"]
    list_filter = ["status"]
    list_select_related = ["event", "subscription"]
    readonly_fields = [
        "subscription",
        "event",
        "status",
        "attempts",
        "next_attempt_at",
        "claimed_at",
        "delivered_at",
        "last_status_code",
        "last_error",
        "created_at",
    ]
    actions = ["resend_dead"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Resend the selected dead deliveries")
    def resend_dead(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        resend_each(
            self,
            request,
            queryset.filter(status=DeliveryStatus.DEAD),
            lambda pk: webhook_delivery_resend(delivery_id=pk),
            "deliveries",
        )
