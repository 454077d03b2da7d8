from django.contrib import admin

from carehub.patients.models import CareTeamMembership, Patient


class CareTeamInline(admin.TabularInline):
    model = CareTeamMembership
    extra = 0
    autocomplete_fields = ["staff"]


@admin.register(Patient)
class PatientAdmin(admin.ModelAdmin):
    list_display = ["mrn", "family_name", "given_name", "clinic", "time_zone", "preferred_channel"]
    list_filter = ["clinic", "preferred_channel"]
    search_fields = ["mrn", "family_name", "given_name"]
    inlines = [CareTeamInline]


@admin.register(CareTeamMembership)
class CareTeamMembershipAdmin(admin.ModelAdmin):
    list_display = ["patient", "staff", "is_primary", "started_at", "ended_at"]
    list_select_related = ["patient", "staff"]
