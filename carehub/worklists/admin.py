"""Admin for worklists: tasks and flags come from pathway effects; staff act on them through
the list's actions (a task or a flag itself is only viewed)."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.db.models import QuerySet
from django.http import HttpRequest

from carehub.accounts.requests import admin_user
from carehub.core.admin import ListActionsAdmin
from carehub.core.exceptions import ApplicationError
from carehub.worklists.models import CareTask, Flag, FlagStatus, TaskStatus
from carehub.worklists.services import care_task_complete, flag_set_status


@admin.register(CareTask)
class CareTaskAdmin(ListActionsAdmin):
    clinic_path = "clinic"

    list_display = ["title", "patient", "discipline", "due_at", "priority", "status", "state"]
    list_filter = ["status", "discipline", "priority", "clinic"]
    search_fields = ["title", "patient__mrn"]
    list_select_related = ["patient"]
    actions = ["complete_selected"]

    @admin.action(description="Mark the selected tasks done")
    def complete_selected(self, request: HttpRequest, queryset: QuerySet[CareTask]) -> None:
        for task in queryset.filter(status=TaskStatus.OPEN):
            care_task_complete(task=task, user=admin_user(request))


class FlagActionForm(ActionForm):
    text = forms.CharField(
        required=False,
        label="What was done / outcome",
        help_text="Acknowledging an urgent flag needs what was done; resolving needs the outcome.",
    )


@admin.register(Flag)
class FlagAdmin(ListActionsAdmin):
    clinic_path = "clinic"

    list_display = ["message", "patient", "severity", "status", "raised_at", "resolved_at"]
    list_filter = ["status", "severity", "clinic"]
    list_select_related = ["patient"]
    actions = ["acknowledge_selected", "resolve_selected"]
    action_form = FlagActionForm

    def _set_status(self, request: HttpRequest, queryset: QuerySet[Flag], status: str) -> None:
        """Through `flag_set_status`, with the text beside the action as the note (acknowledge)
        or outcome (resolve); a flag it refuses is named and left unchanged."""
        text = request.POST.get("text", "")
        for flag in queryset:
            try:
                flag_set_status(
                    flag=flag,
                    status=FlagStatus(status),
                    user=admin_user(request),
                    note=text if status == FlagStatus.ACKNOWLEDGED else "",
                    outcome=text if status == FlagStatus.RESOLVED else "",
                )
            except ApplicationError as exc:
                self.message_user(request, f"{flag}: {exc.message}", messages.ERROR)

    @admin.action(description="Acknowledge the selected flags (with what was done)")
    def acknowledge_selected(self, request: HttpRequest, queryset: QuerySet[Flag]) -> None:
        self._set_status(request, queryset.filter(status=FlagStatus.OPEN), FlagStatus.ACKNOWLEDGED)

    @admin.action(description="Resolve the selected flags (with the outcome)")
    def resolve_selected(self, request: HttpRequest, queryset: QuerySet[Flag]) -> None:
        self._set_status(request, queryset.exclude(status=FlagStatus.RESOLVED), FlagStatus.RESOLVED)
