from django.contrib import admin

from carehub.messaging.models import Message


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    """The development message log: what carehub would have sent, to whom, and why."""

    list_display = ["created_at", "patient", "to_staff", "to_patient", "urgency", "body"]
    list_filter = ["urgency", "to_patient", "clinic"]
    list_select_related = ["patient", "to_staff"]

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False
