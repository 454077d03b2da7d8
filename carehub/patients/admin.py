from typing import Any, ClassVar

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from carehub.core.admin import ReadOnlyInline
from carehub.core.admin_scope import ClinicScopedAdmin
from carehub.patients.models import CareTeamMembership, Patient
from carehub.patients.services import (
    PATIENT_EDITABLE_FIELDS,
    care_team_add,
    care_team_end,
    patient_register,
    patient_update,
)


class OfAPatient:
    """Rows about one patient (their check-ins, observations, preferences, care team): a user
    sees those of their clinic's patients, listed with the patient."""

    clinic_path: ClassVar[str] = "patient__clinic"
    list_select_related: ClassVar[bool | list[str] | tuple[str, ...]] = ["patient"]


class CareTeamInline(ReadOnlyInline):
    """Read-only here: members are added and removed on the care team page (services)."""

    model = CareTeamMembership
    readonly_fields = ("staff", "is_primary", "started_at", "ended_at")


@admin.register(Patient)
class PatientAdmin(ClinicScopedAdmin):
    clinic_path = "clinic"

    list_display = [
        "mrn",
        "family_name",
        "given_name",
        "clinic",
        "time_zone",
        "language",
        "preferred_channel",
    ]
    list_filter = ["clinic", "language", "preferred_channel"]
    search_fields = ["mrn", "family_name", "given_name"]
    inlines = [CareTeamInline]

    # Deactivation goes through its service (patient_deactivate: refused while on a pathway).
    DEACTIVATION_FIELDS = ["active", "deactivated_at", "deactivation_reason"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return self.DEACTIVATION_FIELDS
        return ["clinic", "mrn", *self.DEACTIVATION_FIELDS]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # clinical records are not deleted

    def save_model(self, request: HttpRequest, obj: Patient, form: Any, change: bool) -> None:
        data = form.cleaned_data
        if change:
            changes = {f: data[f] for f in PATIENT_EDITABLE_FIELDS if f in form.changed_data}
            patient_update(patient=Patient.objects.get(pk=obj.pk), **changes)
            return
        created = patient_register(
            clinic=data["clinic"],
            mrn=data["mrn"],
            **{f: data[f] for f in PATIENT_EDITABLE_FIELDS if f in data},
        )
        obj.pk = created.pk
        obj.refresh_from_db()


@admin.register(CareTeamMembership)
class CareTeamMembershipAdmin(OfAPatient, ClinicScopedAdmin):
    list_display = ["patient", "staff", "is_primary", "started_at", "ended_at"]
    list_select_related = ["patient", "staff"]
    list_filter = ["ended_at"]
    fields = ["patient", "staff", "is_primary"]
    raw_id_fields = ["patient"]
    actions = ["end_selected"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a membership ends; it is not erased

    def save_model(
        self, request: HttpRequest, obj: CareTeamMembership, form: Any, change: bool
    ) -> None:
        data = form.cleaned_data
        created = care_team_add(
            patient=data["patient"], staff=data["staff"], is_primary=data["is_primary"]
        )
        obj.pk = created.pk
        obj.refresh_from_db()

    @admin.action(description="End the selected memberships")
    def end_selected(self, request: HttpRequest, queryset: QuerySet[CareTeamMembership]) -> None:
        for membership in queryset:
            care_team_end(membership=membership)
        self.message_user(request, "Memberships ended.", messages.SUCCESS)
