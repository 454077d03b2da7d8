"""An enrolment's life: start a patient on a pathway, pause and resume it, discharge.

- `POST /patients/{id}/enrolments` starts the patient on a published pathway (`definition_key`,
  optionally a `definition_version`; the latest otherwise): 201 with the enrolment. A patient
  already on that pathway answers 409 with the open enrolment as `current`.
- `POST /enrolments/{public_id}/pause` needs a `reason` (a hospital stay, a holiday): timers and
  check-ins wait; `resume` moves them by the paused time. Pausing what is not active, or resuming
  what is not paused, answers 409 with the `current` state (a pause sent again with its
  `Idempotency-Key` answers the first answer; with a new key, 409 as it is paused).
- `POST /enrolments/{public_id}/discharge` sends the pathway's own discharge event (see
  `carehub.pathways.services.DISCHARGE_EVENTS`), so every track leaves by the definition's
  transitions (its check-ins stop, its flags are raised); the `reason` is kept in the step's
  explanation. Like any event it needs an `Idempotency-Key` and takes an `expected_version`.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from carehub.accounts.models import User
from carehub.api.idempotency import idempotency_key
from carehub.api.pathways import DispatchOutputSerializer, EnrolmentSerializer, dispatch_response
from carehub.api.patients import AuditedApi, PatientEnrolmentListApi
from carehub.api.requests import StaffRequest, validated
from carehub.api.schema import example, problems
from carehub.audit.models import Action
from carehub.care_access import Operation
from carehub.pathways.models import Enrolment
from carehub.pathways.selectors import enrolment_get_for_user, enrolment_view
from carehub.pathways.services import (
    enrolment_discharge,
    enrolment_pause,
    enrolment_resume,
    enrolment_start,
)

REASON_MAX_LENGTH = 200


def _enrolment_body(user: User, enrolment: Enrolment) -> dict[str, Any]:
    """The enrolment as it now is (states, pending proposals, events a person may send)."""
    fresh = enrolment_get_for_user(user=user, public_id=enrolment.public_id)
    return dict(EnrolmentSerializer(enrolment_view(enrolment=fresh, user=user)).data)


class PatientEnrolmentStartApi(AuditedApi):
    """Start the patient on a pathway (pinned to its latest version unless one is named)."""

    operation = Operation.ENROLMENT_START
    audit_action = Action.ENROLMENT_START

    class InputSerializer(serializers.Serializer):
        definition_key = serializers.SlugField(max_length=64)
        definition_version = serializers.IntegerField(
            required=False, min_value=1, help_text="Default: the latest published version"
        )

    # No `OutputSerializer` attribute: the URL's view also lists (PatientEnrolmentListApi).
    @extend_schema(
        operation_id="patients_enrolments_start",
        tags=["patients"],
        request=InputSerializer,
        examples=[example("Intractable pain", {"definition_key": "intractable-pain"})],
        responses={201: EnrolmentSerializer, **problems(400, 403, 404, 409)},
    )
    def post(self, request: StaffRequest, patient_id: int) -> Response:
        patient = self.scoped_patient(patient_id)
        data = validated(self.InputSerializer, request.data)
        enrolment = enrolment_start(
            patient=patient,
            definition_key=data.validated_data["definition_key"],
            version=data.validated_data.get("definition_version"),
            started_by=request.user,
        )
        self.audit_obj = enrolment
        body = _enrolment_body(request.user, enrolment)
        self.audit(detail={"definition": enrolment.definition_key})
        return Response(body, status=status.HTTP_201_CREATED)


class EnrolmentPauseApi(AuditedApi):
    """Pause an active pathway: its timers and check-ins wait until it is resumed."""

    operation = Operation.ENROLMENT_PAUSE
    audit_action = Action.ENROLMENT_PAUSE

    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(
            max_length=REASON_MAX_LENGTH, help_text="Why, e.g. 'hospital stay'"
        )

    OutputSerializer = EnrolmentSerializer

    @extend_schema(
        operation_id="enrolments_pause",
        tags=["enrolments"],
        request=InputSerializer,
        examples=[example("Hospital stay", {"reason": "Hospital stay"})],
        responses={200: EnrolmentSerializer, **problems(400, 403, 404, 409)},
    )
    def post(self, request: StaffRequest, public_id: str) -> Response:
        enrolment = self.scoped_enrolment(public_id)
        data = validated(self.InputSerializer, request.data)
        enrolment = enrolment_pause(
            enrolment_id=enrolment.pk, reason=data.validated_data["reason"], user=request.user
        )
        return self.audited_response(_enrolment_body(request.user, enrolment))


class EnrolmentResumeApi(AuditedApi):
    """Resume a paused pathway: pending timers and time in state move by the paused time."""

    operation = Operation.ENROLMENT_PAUSE
    audit_action = Action.ENROLMENT_RESUME

    OutputSerializer = EnrolmentSerializer

    @extend_schema(
        operation_id="enrolments_resume",
        tags=["enrolments"],
        request=None,
        responses={200: EnrolmentSerializer, **problems(403, 404, 409)},
    )
    def post(self, request: StaffRequest, public_id: str) -> Response:
        enrolment = self.scoped_enrolment(public_id)
        enrolment = enrolment_resume(enrolment_id=enrolment.pk, user=request.user)
        return self.audited_response(_enrolment_body(request.user, enrolment))


class EnrolmentDischargeApi(AuditedApi):
    """Discharge the patient from the pathway (the definition's discharge event)."""

    operation = Operation.ENROLMENT_DISCHARGE
    audit_action = Action.ENROLMENT_DISCHARGE

    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(max_length=500, help_text="Why the patient is discharged")
        expected_version = serializers.IntegerField(
            required=False, min_value=0, help_text="Refuse (409) if the enrolment has moved on"
        )

    OutputSerializer = DispatchOutputSerializer

    @extend_schema(
        operation_id="enrolments_discharge",
        tags=["enrolments"],
        request=InputSerializer,
        examples=[example("Moved away", {"reason": "Moved to another area"})],
        responses={200: DispatchOutputSerializer, **problems(400, 403, 404, 409, 422)},
    )
    def post(self, request: StaffRequest, public_id: str) -> Response:
        key = idempotency_key(request)
        enrolment = self.scoped_enrolment(public_id)
        data = validated(self.InputSerializer, request.data)
        result = enrolment_discharge(
            enrolment=enrolment,
            reason=data.validated_data["reason"],
            idempotency_key=f"api:{request.user.pk}:{key}",
            user=request.user,
            expected_version=data.validated_data.get("expected_version"),
        )
        self.audit_detail = {
            "event": result.step.event,
            "outcome": result.outcome,
            "step": result.step.sequence,
            "replayed": result.replayed,
        }
        response = dispatch_response(result, request.user)
        self.audit()
        return response


class PatientEnrolmentsApi(PatientEnrolmentStartApi, PatientEnrolmentListApi):
    """`/patients/{id}/enrolments`: GET lists (PatientEnrolmentListApi), POST starts one
    (PatientEnrolmentStartApi); each method keeps its own operation and audit action."""

    method_operations = {
        "GET": (PatientEnrolmentListApi.operation, PatientEnrolmentListApi.audit_action),
        "POST": (PatientEnrolmentStartApi.operation, PatientEnrolmentStartApi.audit_action),
    }
