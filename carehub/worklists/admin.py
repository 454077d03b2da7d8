from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from carehub.core.admin_scope import ClinicScopedAdmin
from carehub.worklists.models import CareTask, Flag, FlagStatus, TaskStatus
from carehub.worklists.services import care_task_complete, flag_set_status


class WorklistAdmin(ClinicScopedAdmin):
    """Tasks and flags come from pathway effects; staff act on them through the actions."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(CareTask)
class CareTaskAdmin(WorklistAdmin):
    clinic_path = "clinic"

    list_display = ["title", "patient", "discipline", "due_at", "priority", "status", "state"]
    list_filter = ["status", "discipline", "priority", "clinic"]
    search_fields = ["title", "patient__mrn"]
    list_select_related = ["patient"]
    actions = ["complete_selected"]

    @admin.action(description="Mark the selected tasks done")
    def complete_selected(self, request: HttpRequest, queryset: QuerySet[CareTask]) -> None:
        for task in queryset.filter(status=TaskStatus.OPEN):
            care_task_complete(task=task, user=request.user)  # type: ignore[arg-type]


@admin.register(Flag)
class FlagAdmin(WorklistAdmin):
    clinic_path = "clinic"

    list_display = ["message", "patient", "severity", "status", "raised_at"]
    list_filter = ["status", "severity", "clinic"]
    list_select_related = ["patient"]
    actions = ["acknowledge_selected", "resolve_selected"]

    @admin.action(description="Acknowledge the selected flags")
    def acknowledge_selected(self, request: HttpRequest, queryset: QuerySet[Flag]) -> None:
        for flag in queryset.filter(status=FlagStatus.OPEN):
            flag_set_status(flag=flag, status=FlagStatus.ACKNOWLEDGED, user=request.user)  # type: ignore[arg-type]

    @admin.action(description="Resolve the selected flags")
    def resolve_selected(self, request: HttpRequest, queryset: QuerySet[Flag]) -> None:
        for flag in queryset.exclude(status=FlagStatus.RESOLVED):
            flag_set_status(flag=flag, status=FlagStatus.RESOLVED, user=request.user)  # type: ignore[arg-type]
