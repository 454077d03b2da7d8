from django.contrib import admin

from carehub.clinics.display import admin_site_header
from carehub.clinics.models import Clinic, ClinicThreshold
from carehub.core.admin_scope import ClinicScopedAdmin


@admin.register(Clinic)
class ClinicAdmin(ClinicScopedAdmin):
    clinic_path = "pk"

    list_display = [
        "name",
        "slug",
        "time_zone",
        "phone",
        "is_sandbox",
        "test_clock_at",
        "created_at",
    ]
    search_fields = ["name", "slug"]
    # Fixed at creation (ADR 0024): a sandbox is made by `manage.py sandbox_clinic_create`.
    readonly_fields = ["is_sandbox", "test_clock_at", "advance_to", "advance_error"]


@admin.register(ClinicThreshold)
class ClinicThresholdAdmin(ClinicScopedAdmin):
    clinic_path = "clinic"

    list_display = ["clinic", "pathway_key", "name", "value", "source", "updated_at"]
    list_filter = ["clinic", "pathway_key"]
    search_fields = ["name", "source"]


# The admin names the zone its times are shown in (the clinic's; see carehub.clinics.display).
admin.site.site_header = admin_site_header
