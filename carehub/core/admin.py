from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from carehub.core.admin_scope import GLOBAL, SUPERUSERS, ClinicScopedAdmin
from carehub.core.models import IdempotencyRecord, SchedulerHeartbeat


@admin.register(SchedulerHeartbeat)
class SchedulerHeartbeatAdmin(ClinicScopedAdmin):
    # The scheduler's liveness: of the whole installation, and about no one.
    clinic_path = GLOBAL
    list_display = ["name", "last_beat_at"]


class ReadOnlyAdmin(ClinicScopedAdmin):
    """For rows only the services write (logs, outboxes, scheduled work): view, never edit."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(ReadOnlyAdmin):
    """Who sent which key for what, and how it ended. The first answer itself is not shown: it
    may hold patient data, which the audited pages and API show."""

    # No clinic of its own: keys of every clinic's staff and clients, whose targets name
    # their objects; an operator's tool.
    clinic_path = SUPERUSERS

    list_display = [
        "key",
        "actor",
        "operation",
        "target",
        "status",
        "response_status",
        "created_at",
    ]
    list_filter = ["status", "operation"]
    search_fields = ["key", "target"]
    list_select_related = ["actor"]
    exclude = ["response_body", "message"]
