"""Registering patients and keeping their details: what a clinic's EHR or scheduling system
sends when a patient is referred, moves, changes phone or leaves the clinic's care.

- `POST /patients` registers a patient of the caller's clinic (MRN unique in the clinic: 409
  otherwise), with time zone, language, contact channels and the local send window.
- `PATCH /patients/{id}` changes any of those details (the clinic and the MRN stay).
- `POST /patients/{id}/deactivate` (`reason`): see `patients.services.patient_deactivate`;
  refused (409, the running enrolments as `current`) while the patient is on a pathway.
- `PUT /patients/{id}/care-team` makes the active care team exactly the members given (ended
  memberships stay in history), which is also what decides the scope of therapists,
  psychologists and pharmacists.

Every write goes through the patients app's services (the admin and any other door call the
same), takes an `Idempotency-Key`, and is audited.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from carehub.accounts.models import STAFF_ROLES, User
from carehub.accounts.selectors import staff_list_for_clinic
from carehub.api.patients import (
    AuditedApi,
    CareTeamMemberSerializer,
    LocalTimeField,
    PatientDetailApi,
    PatientListApi,
)
from carehub.api.requests import StaffRequest, validated
from carehub.api.schema import example, page_schema, problems
from carehub.audit.models import Action
from carehub.care_access import Operation
from carehub.core.exceptions import InvalidInput
from carehub.patients.models import Channel, Language, Patient
from carehub.patients.selectors import patient_get_for_user
from carehub.patients.services import (
    DEACTIVATION_REASON_MAX_LENGTH,
    care_team_set,
    patient_deactivate,
    patient_register,
    patient_update,
)

PatientSerializer = PatientDetailApi.OutputSerializer
E164 = r"^\+[1-9][0-9]{6,14}$"


class _PatientDetailsInput(serializers.Serializer):
    """The details a patient's record carries besides the clinic and the MRN."""

    given_name = serializers.CharField(max_length=100)
    family_name = serializers.CharField(max_length=100)
    date_of_birth = serializers.DateField(required=False, allow_null=True)
    time_zone = serializers.CharField(
        max_length=64, help_text="IANA time zone, e.g. `Europe/London` (check-ins, quiet hours)"
    )
    language = serializers.ChoiceField(
        choices=Language.values, required=False, help_text="Default `en`"
    )
    email = serializers.EmailField(required=False, allow_blank=True)
    phone = serializers.RegexField(
        E164, required=False, allow_blank=True, help_text="E.164, e.g. `+447700900123`"
    )
    preferred_channel = serializers.ChoiceField(
        choices=Channel.values, required=False, help_text="Default `sms`"
    )
    fallback_channel = serializers.ChoiceField(
        choices=[*Channel.values, ""], required=False, help_text="Default `email`; `` for none"
    )
    send_window_start = LocalTimeField(
        required=False, help_text="Local time messages may start (default 09:00)"
    )
    send_window_end = LocalTimeField(
        required=False, help_text="Local time messages stop (default 20:00), after the start"
    )


def _patient_body(user: User, patient: Patient) -> dict[str, Any]:
    """The patient as `GET /patients/{id}` shows them (with the active care team)."""
    return dict(PatientSerializer(patient_get_for_user(user=user, patient_id=patient.pk)).data)


class PatientCreateApi(AuditedApi):
    """Register a patient of your clinic."""

    operation = Operation.PATIENT_CREATE
    audit_action = Action.PATIENT_CREATE

    class InputSerializer(_PatientDetailsInput):
        mrn = serializers.CharField(
            max_length=64, help_text="Medical record number, unique in the clinic"
        )

    # No `OutputSerializer` attribute: the URL's view also lists (PatientListApi).
    @extend_schema(
        operation_id="patients_create",
        tags=["patients"],
        request=InputSerializer,
        examples=[
            example(
                "New referral",
                {
                    "mrn": "RP-2001",
                    "given_name": "Maria",
                    "family_name": "Lopez",
                    "date_of_birth": "1971-04-02",
                    "time_zone": "America/Chicago",
                    "language": "es",
                    "phone": "+13125550123",
                    "preferred_channel": "sms",
                },
            )
        ],
        responses={201: PatientSerializer, **problems(400, 403, 409)},
    )
    def post(self, request: StaffRequest) -> Response:
        data = validated(self.InputSerializer, request.data)
        values = dict(data.validated_data)
        patient = patient_register(clinic=request.user.clinic, **values)
        self.audit_patient = self.audit_obj = patient
        body = _patient_body(request.user, patient)
        return self.audited_response(body, status=status.HTTP_201_CREATED)


class PatientsApi(PatientCreateApi, PatientListApi):
    """`/patients`: GET lists (PatientListApi), POST registers (PatientCreateApi)."""

    method_operations = {
        "GET": (PatientListApi.operation, PatientListApi.audit_action),
        "POST": (PatientCreateApi.operation, PatientCreateApi.audit_action),
    }


class PatientUpdateApi(AuditedApi):
    """Change a patient's details: any of the fields given (the clinic and MRN stay)."""

    operation = Operation.PATIENT_UPDATE
    audit_action = Action.PATIENT_UPDATE

    class InputSerializer(_PatientDetailsInput):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, partial=True, **kwargs)

    @extend_schema(
        operation_id="patients_update",
        tags=["patients"],
        request=InputSerializer,
        examples=[
            example("Moved", {"time_zone": "Europe/Madrid", "phone": "+34600123456"}),
            example("Prefers e-mail", {"preferred_channel": "email", "email": "m@example.org"}),
        ],
        responses={200: PatientSerializer, **problems(400, 403, 404)},
    )
    def patch(self, request: StaffRequest, patient_id: int) -> Response:
        patient = self.scoped_patient(patient_id)
        data = validated(self.InputSerializer, request.data)
        changes = dict(data.validated_data)
        if not changes:
            raise InvalidInput("Give at least one field to change.")
        patient_update(patient=patient, **changes)
        body = _patient_body(request.user, patient)
        self.audit(detail={"fields": sorted(changes)})
        return Response(body)


class PatientDetailUpdateApi(PatientUpdateApi, PatientDetailApi):
    """`/patients/{id}`: GET shows (PatientDetailApi), PATCH changes (PatientUpdateApi)."""

    method_operations = {
        "GET": (PatientDetailApi.operation, PatientDetailApi.audit_action),
        "PATCH": (PatientUpdateApi.operation, PatientUpdateApi.audit_action),
    }

    # PatientDetailApi.get serializes with `self.OutputSerializer`.
    OutputSerializer = PatientSerializer


class PatientDeactivateApi(AuditedApi):
    """The patient is no longer cared for through carehub: refused while on a pathway."""

    operation = Operation.PATIENT_DEACTIVATE
    audit_action = Action.PATIENT_DEACTIVATE

    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(
            max_length=DEACTIVATION_REASON_MAX_LENGTH,
            help_text="Why, e.g. 'Care transferred to another clinic'",
        )

    @extend_schema(
        operation_id="patients_deactivate",
        tags=["patients"],
        request=InputSerializer,
        examples=[example("Transferred", {"reason": "Care transferred to another clinic"})],
        responses={200: PatientSerializer, **problems(400, 403, 404, 409)},
    )
    def post(self, request: StaffRequest, patient_id: int) -> Response:
        patient = self.scoped_patient(patient_id)
        data = validated(self.InputSerializer, request.data)
        patient_deactivate(patient=patient, reason=data.validated_data["reason"])
        return self.audited_response(_patient_body(request.user, patient))


class CareTeamMemberInput(serializers.Serializer):
    staff_id = serializers.IntegerField(min_value=1, max_value=2**31 - 1)
    is_primary = serializers.BooleanField(required=False, default=False)


class PatientCareTeamSetApi(AuditedApi):
    """Set the patient's active care team to exactly these members of staff."""

    operation = Operation.CARE_TEAM_SET
    audit_action = Action.CARE_TEAM_SET

    class InputSerializer(serializers.Serializer):
        members = serializers.ListField(
            child=CareTeamMemberInput(),
            max_length=50,
            help_text="Every member of the team (others' memberships end); at most one primary",
        )

    class OutputSerializer(serializers.Serializer):
        care_team = CareTeamMemberSerializer(many=True)

    @extend_schema(
        operation_id="patients_care_team_set",
        tags=["patients"],
        request=InputSerializer,
        examples=[
            example("Team", {"members": [{"staff_id": 2, "is_primary": True}, {"staff_id": 3}]})
        ],
        responses={200: OutputSerializer, **problems(400, 403, 404)},
    )
    def put(self, request: StaffRequest, patient_id: int) -> Response:
        patient = self.scoped_patient(patient_id)
        data = validated(self.InputSerializer, request.data)
        wanted = data.validated_data["members"]
        staff = {
            user.pk: user
            for user in User.objects.filter(
                pk__in=[m["staff_id"] for m in wanted], clinic_id=patient.clinic_id
            )
        }
        unknown = [m["staff_id"] for m in wanted if m["staff_id"] not in staff]
        if unknown:
            message = f"No member of this clinic's staff with id {unknown[0]}."
            raise InvalidInput(message, extra={"fields": {"members": [message]}})
        team = care_team_set(
            patient=patient,
            members=[(staff[m["staff_id"]], m["is_primary"]) for m in wanted],
        )
        self.audit(detail={"members": [m.staff_id for m in team]})
        return Response(self.OutputSerializer({"care_team": team}).data)


class StaffListApi(AuditedApi):
    """The clinic's active staff: the ids care teams and task assignees are given by."""

    operation = Operation.STAFF_LIST
    audit_action = Action.STAFF_LIST

    class FilterSerializer(serializers.Serializer):
        role = serializers.ChoiceField(choices=sorted(STAFF_ROLES), required=False)

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        username = serializers.CharField()
        name = serializers.CharField(source="get_full_name")
        role = serializers.CharField()

    @page_schema(
        "staff_list",
        "patients",
        OutputSerializer,
        "StaffPage",
        filters=[
            OpenApiParameter("role", str, enum=sorted(STAFF_ROLES)),
        ],
    )
    def get(self, request: StaffRequest) -> Response:
        filters = validated(self.FilterSerializer, request.query_params)
        staff = staff_list_for_clinic(
            clinic_id=request.user.clinic_id, role=filters.validated_data.get("role")
        )
        return self.audited_page(staff, self.OutputSerializer, ordering=("id",))
