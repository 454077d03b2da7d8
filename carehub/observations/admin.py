from typing import Any

from django.contrib import admin
from django.forms import ModelForm
from django.http import HttpRequest

from carehub.observations.models import Observation


@admin.register(Observation)
class ObservationAdmin(admin.ModelAdmin):
    """Observations are append-only: they can be added and viewed, never changed or deleted
    (a correction is a new observation that `corrects` the old one)."""

    list_display = [
        "observed_at",
        "patient",
        "kind",
        "code",
        "value_number",
        "value_text",
        "value_bool",
        "is_baseline",
        "source",
        "recorded_by",
        "entered_in_error",
    ]
    list_filter = ["kind", "code", "source", "is_baseline", "entered_in_error"]
    list_select_related = ["patient", "recorded_by"]
    search_fields = ["patient__mrn"]
    date_hierarchy = "observed_at"
    raw_id_fields = ["patient", "corrects"]
    readonly_fields = ["recorded_by", "entered_in_error", "created_at", "updated_at"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(
        self, request: HttpRequest, obj: Observation, form: ModelForm, change: bool
    ) -> None:
        obj.recorded_by = request.user  # type: ignore[assignment]  # who entered it, for audit
        super().save_model(request, obj, form, change)
