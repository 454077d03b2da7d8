"""Admin for delivery: messages with their delivery log, what the development backends "sent",
and preferences. Messages change only through the services (the resend action)."""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from carehub.core.admin import ListActionsAdmin, ReadOnlyAdmin, ReadOnlyInline, resend_each
from carehub.core.admin_scope import SUPERUSERS, ClinicScopedAdmin
from carehub.messaging.models import (
    ContactPreference,
    DeliveryEvent,
    InAppNotification,
    Message,
    MessageStatus,
    ProviderReport,
    RecordedMessage,
    StaffNotificationPreference,
)
from carehub.messaging.services import (
    CONTACT_PREFERENCE_FIELDS,
    STAFF_PREFERENCE_FIELDS,
    contact_preference_set,
    message_resend,
    staff_notification_preference_set,
)
from carehub.patients.admin import OfAPatient


class DeliveryEventInline(ReadOnlyInline):
    """Why the message was sent or not: every change of state, with its reason."""

    model = DeliveryEvent
    fk_name = "message"
    readonly_fields = ("at", "status", "attempt", "reason", "related_message")
    ordering = ["pk"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Message)
class MessageAdmin(ListActionsAdmin):
    clinic_path = "clinic"

    list_display = [
        "pk",
        "purpose",
        "patient",
        "to_staff",
        "urgency",
        "status",
        "channel",
        "attempts",
        "not_before",
        "sent_at",
    ]
    list_filter = ["status", "purpose", "channel", "urgency", "clinic"]
    search_fields = ["idempotency_key", "subject_key", "patient__mrn"]
    list_select_related = ["patient", "to_staff"]
    inlines = [DeliveryEventInline]
    actions = ["resend_dead"]

    @admin.action(description="Resend the selected dead messages")
    def resend_dead(self, request: HttpRequest, queryset: QuerySet[Message]) -> None:
        resend_each(
            self,
            request,
            queryset.filter(status=MessageStatus.DEAD),
            lambda pk: message_resend(message_id=pk),
            "message(s)",
        )


class OfAMessage:
    """Rows about one message (its delivery log, its providers' reports, its in-app copy): a
    user sees those of their clinic's messages, listed with the message."""

    clinic_path: ClassVar[str] = "message__clinic"
    list_select_related: ClassVar[bool | list[str] | tuple[str, ...]] = ["message"]


@admin.register(DeliveryEvent)
class DeliveryEventAdmin(OfAMessage, ReadOnlyAdmin):
    list_display = ["at", "message", "status", "attempt", "reason"]
    list_filter = ["status"]


@admin.register(RecordedMessage)
class RecordedMessageAdmin(ReadOnlyAdmin):
    """Sent messages: what the development SMS gateway and e-mail backend recorded."""

    # No clinic: what the development gateways recorded, addressed to anyone.
    clinic_path = SUPERUSERS

    list_display = ["at", "channel", "to", "subject", "body", "duplicate_requests"]
    list_filter = ["channel"]
    search_fields = ["to", "idempotency_key"]


@admin.register(ProviderReport)
class ProviderReportAdmin(OfAMessage, ReadOnlyAdmin):
    """Delivery-status reports as the providers sent them (SMS and e-mail callbacks), with what
    each did to its message. A report no message carries the id of yet has no clinic: only
    superusers see it."""

    list_display = [
        "received_at",
        "provider",
        "provider_message_id",
        "status",
        "provider_status",
        "error_code",
        "message",
        "outcome",
    ]
    list_filter = ["status", "provider"]
    search_fields = ["provider_message_id"]


@admin.register(InAppNotification)
class InAppNotificationAdmin(OfAMessage, ReadOnlyAdmin):
    list_display = ["created_at", "patient", "staff", "body", "read_at"]
    list_select_related = ["patient", "staff"]


class PreferenceAdmin(ClinicScopedAdmin):
    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ContactPreference)
class ContactPreferenceAdmin(OfAPatient, PreferenceAdmin):
    list_display = ["patient", "opted_out", "opted_out_sms", "opted_out_email", "daily_budget"]
    list_filter = ["opted_out", "opted_out_sms", "opted_out_email"]
    raw_id_fields = ["patient"]
    fields = ["patient", *CONTACT_PREFERENCE_FIELDS]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ["patient"] if obj is not None else []

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        saved = contact_preference_set(
            patient=obj.patient, **{f: getattr(obj, f) for f in CONTACT_PREFERENCE_FIELDS}
        )
        obj.pk = saved.pk


@admin.register(StaffNotificationPreference)
class StaffNotificationPreferenceAdmin(PreferenceAdmin):
    clinic_path = "staff__clinic"

    list_display = ["staff", "daily_digest", "digest_hour", "channel"]
    list_filter = ["daily_digest", "channel"]
    list_select_related = ["staff"]
    raw_id_fields = ["staff"]
    fields = ["staff", *STAFF_PREFERENCE_FIELDS]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ["staff"] if obj is not None else []

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        saved = staff_notification_preference_set(
            staff=obj.staff, **{f: getattr(obj, f) for f in STAFF_PREFERENCE_FIELDS}
        )
        obj.pk = saved.pk
