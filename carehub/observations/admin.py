from datetime import datetime
from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from carehub.core.admin_scope import ClinicScopedAdmin
from carehub.core.exceptions import ApplicationError
from carehub.observations import services
from carehub.observations.models import Kind, Observation, Source
from carehub.observations.scores import score_observation_record
from carehub.patients.admin import OfAPatient


def record_through_service(data: dict[str, Any], user: Any) -> Observation:
    """Record what the admin form holds with the service for its kind (which validates it)."""
    kind, code, patient = data["kind"], data["code"], data["patient"]
    at: datetime = data["observed_at"]
    number, text, flag = (
        data.get("value_number"),
        data.get("value_text", ""),
        data.get("value_bool"),
    )
    details = data.get("data") or {}
    # Staff of the patient's clinic are recorded as the author; an operator without a clinic
    # is not clinical staff (the audit trail still knows who used the admin).
    author = user if getattr(user, "clinic_id", None) == patient.clinic_id else None
    common = {"patient": patient, "recorded_by": author}
    if kind == Kind.SCORE:
        # Scored like every other door (red flags included); unticked = the baseline rule.
        recorded = score_observation_record(
            **common,
            instrument=code,
            score=number,
            observed_at=at,
            source=Source.STAFF,
            is_baseline=True if data.get("is_baseline") else None,
            items=details.get("items"),
        )
        assert recorded.observation is not None  # outside a check-in: recorded or refused
        return recorded.observation
    if kind == Kind.PROCEDURE:
        return services.procedure_record(
            **common,
            procedure=code,
            performed_at=at,
            relief_pct=number,
            relief_weeks=details.get("relief_weeks"),
            region=details.get("region", ""),
        )
    if kind == Kind.SESSION:
        return services.session_record(
            **common,
            discipline=code,
            attended=bool(flag),
            observed_at=at,
            notes=details.get("notes", ""),
        )
    if kind == Kind.MEDICATION:
        if number is None:
            raise ApplicationError(
                "A medication needs its daily dose.",
                extra={"fields": {"value_number": "the daily dose"}},
            )
        return services.medication_record(
            **common, drug=code, daily_dose=number, unit=details.get("unit", "mg"), observed_at=at
        )
    if kind == Kind.FAILED_TREATMENT:
        return services.failed_treatment_record(
            **common, treatment_class=code, reason=text, observed_at=at
        )
    if kind == Kind.PAIN_ONSET:
        return services.pain_onset_record(**common, onset=at.date())
    if kind == Kind.CONSERVATIVE_CARE_START:
        return services.conservative_care_start_record(**common, started=at.date())
    if kind == Kind.PSYCH_EVALUATION:
        return services.psych_evaluation_record(**common, outcome=text, observed_at=at)
    return services.status_record(**common, code=code, value=flag, observed_at=at)


# Whose observation, what and its value: the add form's first fields and the list's columns.
_OBSERVATION_COLUMNS = ("patient", "kind", "code", "value_number", "value_text", "value_bool")


class ObservationAddForm(forms.ModelForm):
    class Meta:
        model = Observation
        fields = [
            *_OBSERVATION_COLUMNS,
            "data",
            "observed_at",
            "is_baseline",
        ]
        help_texts = {
            "code": "Instrument (peg, phq9, ...), procedure (mbb1, esi, ...), discipline "
            "(pt, cbt), drug, treatment class or status code",
            "value_text": "Failed treatment: the reason; psych evaluation: the outcome",
        }

    def __init__(self, *args: Any, user: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def clean(self) -> dict[str, Any] | None:
        data = super().clean()
        if data is None or self.errors:
            return data
        try:
            # The admin view's transaction wraps this: nothing stays if the form is refused.
            self.instance = record_through_service(data, self.user)
        except ApplicationError as exc:
            fields = exc.extra.get("fields")
            if isinstance(fields, dict):
                for field, message in fields.items():
                    self.add_error(field if field in self.fields else None, str(message))
            else:
                raise forms.ValidationError(exc.message) from exc
        return data


@admin.register(Observation)
class ObservationAdmin(OfAPatient, ClinicScopedAdmin):
    """Observations are append-only: they are added (through the services, which validate them)
    and viewed, never changed or deleted (a correction is a new observation)."""

    list_display = [
        "observed_at",
        *_OBSERVATION_COLUMNS,
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

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):
        if obj is not None:
            return super().get_form(request, obj, change=change, **kwargs)
        kwargs["form"] = ObservationAddForm
        form_class = super().get_form(request, obj, change=change, **kwargs)

        class WithUser(form_class):  # type: ignore[misc, valid-type]
            def __init__(self, *args: Any, **inner: Any) -> None:
                super().__init__(*args, user=request.user, **inner)

        return WithUser

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Observation, form: Any, change: bool) -> None:
        return None  # the service recorded it while validating the form

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        return None
