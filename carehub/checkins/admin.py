from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from carehub.checkins.models import Checkin, CheckinLink, CheckinSeries


class ReadOnly(admin.ModelAdmin):
    """Written by pathway effects, the scheduler and patients' answers only."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(CheckinSeries)
class CheckinSeriesAdmin(ReadOnly):
    list_display = ["patient", "series", "instrument", "every", "started_at", "stopped_at"]
    list_filter = ["instrument"]
    list_select_related = ["patient"]


@admin.register(Checkin)
class CheckinAdmin(ReadOnly):
    list_display = ["patient", "instrument", "sequence", "due_at", "closes_at", "status", "score"]
    list_filter = ["status", "instrument"]
    list_select_related = ["patient"]
    search_fields = ["patient__mrn"]
    date_hierarchy = "due_at"


@admin.register(CheckinLink)
class CheckinLinkAdmin(ReadOnly):
    """When links were sent and opened; the token itself is never stored or shown."""

    list_display = ["checkin", "created_at", "expires_at", "last_opened_at"]
    exclude = ["token_hash"]
    list_select_related = ["checkin__patient"]
