from django.contrib import admin

from carehub.clinics.models import Clinic, ClinicThreshold


@admin.register(Clinic)
class ClinicAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "time_zone", "created_at"]
    search_fields = ["name", "slug"]


@admin.register(ClinicThreshold)
class ClinicThresholdAdmin(admin.ModelAdmin):
    list_display = ["clinic", "pathway_key", "name", "value", "source", "updated_at"]
    list_filter = ["clinic", "pathway_key"]
    search_fields = ["name", "source"]
