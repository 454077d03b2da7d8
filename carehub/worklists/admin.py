from django.contrib import admin

from carehub.worklists.models import CareTask, Flag


@admin.register(CareTask)
class CareTaskAdmin(admin.ModelAdmin):
    list_display = ["title", "patient", "discipline", "due_at", "priority", "status"]
    list_filter = ["status", "discipline", "priority", "clinic"]
    search_fields = ["title", "patient__mrn"]
    list_select_related = ["patient"]
    readonly_fields = ["source_effect", "enrolment", "patient", "clinic"]


@admin.register(Flag)
class FlagAdmin(admin.ModelAdmin):
    list_display = ["message", "patient", "severity", "status", "raised_at"]
    list_filter = ["status", "severity", "clinic"]
    list_select_related = ["patient"]
    readonly_fields = ["source_effect", "enrolment", "patient", "clinic", "code", "raised_at"]
