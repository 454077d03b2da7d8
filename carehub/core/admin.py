from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from carehub.core.models import SchedulerHeartbeat


@admin.register(SchedulerHeartbeat)
class SchedulerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ["name", "last_beat_at"]


class ReadOnlyAdmin(admin.ModelAdmin):
    """For rows only the services write (logs, outboxes, scheduled work): view, never edit."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
