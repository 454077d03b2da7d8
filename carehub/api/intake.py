"""Intake facts and the medication list: the observations the intractable-pain pathway's intake,
neuromodulation route and opioid-safety track read, recorded from a clinic's systems.

- `POST /patients/{id}/pain-onset` (`onset`, a date in the patient's calendar: `pain.months`),
  `.../conservative-care-start` (`started`: `conservative_care.weeks`),
  `.../failed-treatments` (`treatment_class`, `reason`, the adequate-trial details:
  `failed_treatment_classes`), `.../psych-evaluations` (`outcome`: `psych_eval.outcome`),
  `.../statuses` (`code`, `value`: `substance_use.active`, `adverse_effects.intolerable`,
  `naloxone.offered`, and the occurrences `pdmp_checked`, `udt_done`, `opioid_reassessed`),
  `.../medications` (`drug`, `daily_dose`, `unit`: `mme.daily`, `opioid.long_term`,
  `benzodiazepine.coprescribed`); `GET /patients/{id}/medications` is the current list with
  each opioid's MME and the source of the factors.
- Corrections: every one of them takes `corrects` (the id of the observation it replaces: the
  same patient and kind, not yet replaced; 409 naming the replacement otherwise), and
  `POST /observations/{id}/withdraw` (`reason`) withdraws one entered in error. Observations are
  never edited: the replaced or withdrawn one stays in the history and no fact reads it.
- Each takes the optional `event` of the other recording endpoints (record, then tell the
  patient's pathways; see `carehub.api.observations`), e.g. `psych_evaluation_recorded` or
  `medication_recorded`.

They call the observation services (`carehub.observations.services`), the one place their
rules live; the role matrix decides who records what (`medication.record`: physician and
pharmacist; `psych_evaluation.record`: physician and psychologist; the rest
`observation.record`).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from carehub.api.observations import (
    ObservationSerializer,
    _CorrectsField,
    _PatientRecordApi,
)
from carehub.api.patients import AuditedApi
from carehub.api.requests import StaffRequest, validated
from carehub.api.schema import example, problems, read_schema, view_serializer
from carehub.audit.models import Action
from carehub.care_access import Operation
from carehub.core import clock
from carehub.observations import reference
from carehub.observations.models import Kind, Observation
from carehub.observations.selectors import (
    mme_breakdown,
    observation_get_for_user,
    observation_history,
)
from carehub.observations.services import (
    conservative_care_start_record,
    failed_treatment_record,
    medication_record,
    observation_withdraw,
    pain_onset_record,
    psych_evaluation_record,
    status_record,
)


# A date in the patient's calendar, recorded by one observation service (`record_service`)
# that takes it as its argument `date_field`: the InputSerializer is made from that name. (No
# docstring: the schema describes a view without its own docstring by its nearest base's.)
class _DateRecordApi(_PatientRecordApi):
    date_field = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        if "date_field" in cls.__dict__:
            date = serializers.DateField(help_text="A date in the patient's calendar, not ahead")
            cls.InputSerializer = view_serializer(
                cls, "InputSerializer", _CorrectsField, {cls.date_field: date}
            )
        super().__init_subclass__(**kwargs)


class PatientPainOnsetRecordApi(_DateRecordApi):
    """When this pain started (`pain.months`, e.g. the intake's `pain.months >= 6`)."""

    audit_action = Action.OBSERVATION_PAIN_ONSET
    step_name = "pain_onset"
    date_field = "onset"
    record_service = staticmethod(pain_onset_record)
    record_operation_id = "patients_pain_onset_record"
    record_examples = [example("Onset", {"onset": "2024-09-01"})]


class PatientConservativeCareStartRecordApi(_DateRecordApi):
    """When documented conservative care started (`conservative_care.weeks`)."""

    audit_action = Action.OBSERVATION_CONSERVATIVE_CARE
    step_name = "conservative_care_start"
    date_field = "started"
    record_service = staticmethod(conservative_care_start_record)
    record_operation_id = "patients_conservative_care_start_record"
    record_examples = [example("Started", {"started": "2025-01-15"})]


class PatientFailedTreatmentRecordApi(_PatientRecordApi):
    """A treatment class tried and failed, with the adequate-trial details payers ask for
    (`failed_treatment_classes` counts the distinct classes)."""

    audit_action = Action.OBSERVATION_FAILED_TREATMENT
    step_name = "failed_treatment"

    class InputSerializer(_CorrectsField):
        treatment_class = serializers.ChoiceField(choices=list(reference.TREATMENT_CLASSES))
        reason = serializers.ChoiceField(choices=list(reference.FAILED_TREATMENT_REASONS))
        observed_at = serializers.DateTimeField(help_text="When the failure was established")
        max_dose = serializers.CharField(
            required=False, allow_blank=True, max_length=100, help_text="e.g. `3600 mg/day`"
        )
        duration_weeks = serializers.FloatField(
            required=False, allow_null=True, min_value=0, max_value=5200
        )
        baseline_score = serializers.FloatField(
            required=False, allow_null=True, min_value=0, max_value=1000
        )
        end_score = serializers.FloatField(
            required=False, allow_null=True, min_value=0, max_value=1000
        )

    record_service = staticmethod(failed_treatment_record)

    record_operation_id = "patients_failed_treatments_record"
    record_examples = [
        example(
            "Gabapentinoid",
            {
                "treatment_class": "gabapentinoid",
                "reason": "insufficient_effect",
                "observed_at": "2026-01-05T10:00:00Z",
                "max_dose": "3600 mg/day",
                "duration_weeks": 8,
            },
        )
    ]


class PatientPsychEvaluationRecordApi(_PatientRecordApi):
    """The outcome of a pre-implant psychological evaluation (`psych_eval.outcome`)."""

    operation = Operation.PSYCH_EVALUATION_RECORD
    audit_action = Action.OBSERVATION_PSYCH_EVALUATION
    step_name = "psych_evaluation"

    class InputSerializer(_CorrectsField):
        outcome = serializers.ChoiceField(choices=list(reference.PSYCH_EVALUATION_OUTCOMES))
        observed_at = serializers.DateTimeField()

    record_service = staticmethod(psych_evaluation_record)

    record_operation_id = "patients_psych_evaluations_record"
    record_examples = [
        example("Cleared", {"outcome": "cleared", "observed_at": "2026-01-05T10:00:00Z"})
    ]


class PatientStatusRecordApi(_PatientRecordApi):
    """A status: boolean ones (`substance_use_active`, `adverse_effects_intolerable`,
    `naloxone_offered`) take `value` true or false, the latest holding; occurrences
    (`pdmp_checked`, `udt_done`, `opioid_reassessed`) take no value (null)."""

    audit_action = Action.OBSERVATION_STATUS
    step_name = "status"

    class InputSerializer(_CorrectsField):
        code = serializers.ChoiceField(choices=list(reference.STATUSES))
        value = serializers.BooleanField(
            required=False,
            allow_null=True,
            default=None,
            help_text="true/false for a boolean status; null (or omitted) for an occurrence",
        )
        observed_at = serializers.DateTimeField()

    record_service = staticmethod(status_record)

    record_operation_id = "patients_statuses_record"
    record_examples = [
        example(
            "No active substance use",
            {
                "code": "substance_use_active",
                "value": False,
                "observed_at": "2026-01-05T10:00:00Z",
            },
        ),
        example("PDMP checked", {"code": "pdmp_checked", "observed_at": "2026-01-05T10:00:00Z"}),
    ]


class MedicationRowSerializer(serializers.Serializer):
    observation_id = serializers.IntegerField(source="pk")
    drug = serializers.CharField(source="code")
    daily_dose = serializers.FloatField(source="value_number")
    unit = serializers.SerializerMethodField()
    observed_at = serializers.DateTimeField(help_text="Since when this dose holds")
    mme = serializers.SerializerMethodField(
        help_text="Its daily morphine milligram equivalents (null: no CDC factor, or not an opioid)"
    )

    def get_unit(self, row: Observation) -> str:
        return str(row.data.get("unit", ""))

    def get_mme(self, row: Observation) -> float | None:
        return self.context["per_drug"].get(row.code)


class PatientMedicationsApi(_PatientRecordApi):
    """`/patients/{id}/medications`: GET the current list with its MME, POST a drug's current
    daily dose (0: stopped)."""

    operation = Operation.MEDICATION_RECORD
    audit_action = Action.OBSERVATION_MEDICATION
    step_name = "medication"
    method_operations = {
        "GET": (Operation.MEDICATION_VIEW, Action.MEDICATION_LIST),
        "POST": (Operation.MEDICATION_RECORD, Action.OBSERVATION_MEDICATION),
    }

    class InputSerializer(_CorrectsField):
        drug = serializers.SlugField(
            max_length=64, help_text="e.g. `oxycodone`, `fentanyl_transdermal`, `diazepam`"
        )
        daily_dose = serializers.FloatField(
            min_value=0, max_value=100000, help_text="Total daily dose; 0 = stopped"
        )
        unit = serializers.ChoiceField(
            choices=list(reference.MEDICATION_UNITS),
            help_text="The MME factor's unit for opioids (mg; the fentanyl patch mcg/h)",
        )
        observed_at = serializers.DateTimeField(help_text="Since when this dose holds")

    class ListSerializer(serializers.Serializer):
        medications = MedicationRowSerializer(
            many=True, help_text="Each drug's latest dose (stopped ones, 0, included)"
        )
        mme_daily = serializers.FloatField(help_text="`mme.daily`: the opioids with a factor")
        not_counted = serializers.ListField(
            child=serializers.CharField(), help_text="Opioids on the list without a CDC factor"
        )
        source = serializers.CharField(help_text="Where the MME factors come from")  # type: ignore[assignment]  # a field named like a DRF attribute

    record_service = staticmethod(medication_record)

    @read_schema("patients_medications_list", "observations", ListSerializer)
    def get(self, request: StaffRequest, patient_id: int) -> Response:
        patient = self.scoped_patient(patient_id)
        now = clock.now()
        # Each drug's latest dose (DISTINCT ON the drug): one row per drug, whatever the history.
        rows = list(
            observation_history(patient=patient, kind=Kind.MEDICATION)
            .filter(observed_at__lte=now)
            .order_by("code", "-observed_at", "-id")
            .distinct("code")
        )
        breakdown = mme_breakdown(patient=patient, now=now)
        data = self.ListSerializer(
            {
                "medications": rows,
                "mme_daily": breakdown.total,
                "not_counted": list(breakdown.not_counted),
                "source": breakdown.source,
            },
            context={"per_drug": breakdown.per_drug},
        ).data
        self.audit(detail={"listed": len(rows)})
        return Response(data)

    record_operation_id = "patients_medications_record"
    record_examples = [
        example(
            "Oxycodone",
            {
                "drug": "oxycodone",
                "daily_dose": 30,
                "unit": "mg",
                "observed_at": "2026-01-05T10:00:00Z",
            },
        )
    ]


class ObservationWithdrawApi(AuditedApi):
    """Withdraw an observation entered in error (wrong patient, never happened): a withdrawal
    replaces it, so no fact reads it any more; both stay in the history. To fix a value instead,
    record the kind again with `corrects`."""

    operation = Operation.OBSERVATION_RECORD
    audit_action = Action.OBSERVATION_WITHDRAW

    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(max_length=255, help_text="Why it is withdrawn")

    class OutputSerializer(serializers.Serializer):
        observation = ObservationSerializer(help_text="The withdrawal")

    @extend_schema(
        operation_id="observations_withdraw",
        tags=["observations"],
        request=InputSerializer,
        examples=[example("Wrong patient", {"reason": "Entered on the wrong patient"})],
        responses={201: OutputSerializer, **problems(400, 403, 404, 409)},
    )
    def post(self, request: StaffRequest, observation_id: int) -> Response:
        observation = self.scoped(
            observation_get_for_user(user=request.user, observation_id=observation_id)
        )
        data = validated(self.InputSerializer, request.data)
        withdrawal = observation_withdraw(
            observation=observation,
            reason=data.validated_data["reason"],
            recorded_by=request.user,
        )
        self.audit(detail={"kind": observation.kind, "withdrawal": withdrawal.pk})
        return Response(self.OutputSerializer({"observation": withdrawal}).data, status=201)
