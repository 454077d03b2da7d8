from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from carehub.audit.export import export_queryset, write_csv
from carehub.audit.models import AuditEvent
from carehub.core.admin import ReadOnlyAdmin
from carehub.core.clock import now


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """Read-only; a clinic's staff see their clinic's events only (superusers every clinic)."""

    clinic_path = "clinic"

    list_display = [
        "at",
        "action",
        "outcome",
        "actor",
        "actor_role",
        "patient",
        "object_type",
        "object_id",
        "ip_address",
        "request_id",
    ]
    list_filter = ["action", "outcome", "at"]
    list_select_related = ["actor", "patient"]
    search_fields = ["patient__mrn", "actor__username", "request_id"]
    date_hierarchy = "at"
    actions = ["export_csv"]

    @admin.action(description="Export selected as CSV")
    def export_csv(self, request: HttpRequest, queryset: QuerySet[AuditEvent]) -> HttpResponse:
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        name = f"audit-{now():%Y%m%d-%H%M%S}.csv"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        write_csv(export_queryset(queryset), response)
        return response
