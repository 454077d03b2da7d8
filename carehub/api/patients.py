"""Patients, within the user's scope (carehub.care_access), and the audit every view of patient
data goes through (`AuditedApi`)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from datetime import time
from typing import Any, TypeVar

from django.db import models
from drf_spectacular.plumbing import get_lib_doc_excludes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from carehub.api.idempotency import IdempotentWrites
from carehub.api.pagination import paginated_response
from carehub.api.permissions import StaffApi
from carehub.api.requests import StaffRequest, validated
from carehub.api.schema import page_schema, read_schema, view_serializer
from carehub.audit.models import Action, Outcome
from carehub.audit.services import audit_record
from carehub.care_access import (
    Operation,
    checkins_visible_to,
    enrolments_visible_to,
    flags_visible_to,
    messages_visible_to,
    observations_visible_to,
    patients_visible_to,
    proposals_visible_to,
    tasks_visible_to,
)
from carehub.clinics.clock import clinic_time
from carehub.core.exceptions import NotFound
from carehub.core.models import IdempotencyRecord
from carehub.pathways.models import Enrolment
from carehub.pathways.selectors import enrolment_get_for_user, enrolment_list_for_patient
from carehub.patients.models import Patient
from carehub.patients.selectors import patient_get_for_user, patient_list_for_user

PATIENT_ORDERING = ("family_name", "given_name", "id")

# A model with a `patient` (a check-in, a task, an observation, ...).
OfPatientT = TypeVar("OfPatientT", bound=models.Model)

LOCAL_TIME_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$"


@extend_schema_field(
    {
        "type": "string",
        "pattern": LOCAL_TIME_PATTERN,
        "example": "09:00",
        "description": (
            "A wall-clock time in the patient's time zone, HH:MM or HH:MM:SS (no offset)"
        ),
    }
)
class LocalTimeField(serializers.Field):
    """A time of day without a zone (the patient's own clock): `HH:MM[:SS]`."""

    default_error_messages = {"invalid": "A local time, HH:MM or HH:MM:SS (no offset)."}

    def to_internal_value(self, data: Any) -> time:
        if not isinstance(data, str) or not re.fullmatch(LOCAL_TIME_PATTERN, data):
            self.fail("invalid")
        return time.fromisoformat(data)

    def to_representation(self, value: time) -> str:
        return value.isoformat(timespec="minutes" if not value.second else "seconds")


# URL arguments naming an object within the user's scope (see `_object_in_scope`).
SCOPED_KWARGS = frozenset(
    {
        "patient_id",
        "public_id",
        "proposal_id",
        "task_id",
        "checkin_id",
        "observation_id",
        "message_id",
        "flag_id",
    }
)


# URL arguments naming an object with a `patient`, and the objects of that kind a user may see.
_PATIENT_OBJECTS: dict[str, Callable[[Any], models.QuerySet[Any]]] = {
    "task_id": tasks_visible_to,
    "checkin_id": checkins_visible_to,
    "observation_id": observations_visible_to,
    "message_id": messages_visible_to,
    "flag_id": flags_visible_to,
}


class AuditedApi(IdempotentWrites, StaffApi):
    """An API view whose every answer to an authenticated user is audited (carehub.audit), and
    whose writes take an `Idempotency-Key` (carehub.api.idempotency).

    The view calls `audit()` on success, after setting `audit_patient` / `audit_obj` as soon as
    it has fetched its object. A failure is recorded here: 403 as `denied` (with the patient when
    the object is within the user's scope), 404 as `denied` without any patient or object id
    (the object is outside the scope or does not exist: nothing about it is disclosed, not even
    to the audit trail of the user's clinic), anything else as `error`. 401 is not recorded."""

    request: StaffRequest  # `IsAuthenticated` runs first (carehub.api.requests)
    audit_action: str = ""
    # A URL serving several methods names each method's operation and audit action.
    method_operations: dict[str, tuple[Operation, str]] = {}

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        if request.method in self.method_operations:
            self.operation, self.audit_action = self.method_operations[request.method]
        self.audited = False
        self.audit_patient: Patient | None = None
        self.audit_obj: models.Model | None = None
        self.audit_detail: dict[str, Any] = {}
        self.clinic_time = ExitStack()
        super().initial(request, *args, **kwargs)
        # The user is known now (a token authenticates in the view): a sandbox clinic's request
        # runs at its test clock (ADR 0024); the idempotency key and the audit keep real time.
        self.clinic_time.enter_context(clinic_time(getattr(request.user, "clinic", None)))

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        clock = getattr(self, "clinic_time", None)
        if clock is not None:
            clock.close()
        return super().finalize_response(request, response, *args, **kwargs)

    def scoped_patient(self, patient_id: int) -> Patient:
        """The patient the URL names, within the user's scope (404 otherwise), as the subject
        and object of the audit row."""
        patient = patient_get_for_user(user=self.request.user, patient_id=patient_id)
        self.audit_patient = self.audit_obj = patient
        return patient

    def scoped_enrolment(self, public_id: str) -> Enrolment:
        """The enrolment the URL names, within the user's scope (404 otherwise), as the object
        of the audit row and its patient as the subject."""
        return self.scoped(enrolment_get_for_user(user=self.request.user, public_id=public_id))

    def scoped(self, obj: OfPatientT) -> OfPatientT:
        """`obj`, an object of a patient the URL names, fetched within the user's scope (404
        otherwise), as the object of the audit row and its patient as the subject."""
        self.audit_patient, self.audit_obj = obj.patient, obj  # type: ignore[attr-defined]
        return obj

    def audited_page(
        self,
        queryset: models.QuerySet[Any],
        serializer_class: type[serializers.Serializer],
        *,
        ordering: str | Sequence[str] = "-id",
        patient_field: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> Response:
        """A page of `queryset` (carehub.api.pagination), audited with how many rows it lists
        and, where each row names its patient in `patient_field`, those patients."""
        response = paginated_response(
            request=self.request,
            view=self,
            queryset=queryset,
            serializer_class=serializer_class,
            ordering=ordering,
        )
        rows = response.data["results"]
        patients = [row[patient_field] for row in rows] if patient_field else None
        self.audit(patients=patients, detail={"listed": len(rows), **(detail or {})})
        return response

    def audited_response(self, body: Any, status: int = 200) -> Response:
        """The success audited (`audit()`), then `body` answered."""
        self.audit()
        return Response(body, status=status)

    def audit(
        self,
        *,
        patients: Sequence[Patient | int] | None = None,
        outcome: str = Outcome.OK,
        detail: dict[str, Any] | None = None,
    ) -> None:
        audit_record(
            request=self.request,
            action=self.audit_action,
            patient=getattr(self, "audit_patient", None),
            patients=patients or (),
            obj=getattr(self, "audit_obj", None),
            outcome=outcome,
            detail={**getattr(self, "audit_detail", {}), **(detail or {})},
        )
        self.audited = True

    def handle_exception(self, exc: Exception) -> Response:
        try:
            response = super().handle_exception(exc)
        except Exception:
            self._audit_failure(500, exc)
            raise
        self._audit_failure(response.status_code, exc)
        return response

    def _audit_failure(self, status: int, exc: Exception) -> None:
        user = getattr(self.request, "_user", None)
        if getattr(self, "audited", False) or status == 401 or not getattr(user, "pk", None):
            return
        code = getattr(exc, "code", None) or getattr(exc, "default_code", None)
        detail = {"status": status, "code": str(code or type(exc).__name__)}
        if status == 404:
            self.audit_patient, self.audit_obj = None, None
            self.audit(outcome=Outcome.DENIED, detail=detail)
        elif status == 403:
            if getattr(self, "audit_patient", None) is None:
                self.audit_patient, self.audit_obj = self._object_in_scope()
            self.audit(outcome=Outcome.DENIED, detail=detail)
        else:
            self.audit(outcome=Outcome.ERROR, detail=detail)

    def idempotency_replaying(self, record: IdempotencyRecord) -> None:
        """A write answered again from its key: what it acted on must still be within the
        user's scope (404 otherwise, like any request), and the replay is audited like it."""
        if SCOPED_KWARGS & set(self.kwargs):
            patient, obj = self._object_in_scope()
            if obj is None:
                raise NotFound("Not found.")
            self.audit_patient, self.audit_obj = patient, obj
        self.audit(detail={"replayed": True, "status": record.response_status})

    def _object_in_scope(self) -> tuple[Patient | None, models.Model | None]:
        """The object the URL names and its patient, if the user may see it (a role refused
        before the view fetched anything)."""
        user = self.request.user
        kwargs = self.kwargs
        if "patient_id" in kwargs:
            patient = patients_visible_to(user).filter(pk=kwargs["patient_id"]).first()
            return patient, patient
        if "public_id" in kwargs:
            enrolment = (
                enrolments_visible_to(user)
                .select_related("patient")
                .filter(public_id=kwargs["public_id"])
                .first()
            )
            return (enrolment.patient, enrolment) if enrolment else (None, None)
        if "proposal_id" in kwargs:
            proposal = (
                proposals_visible_to(user)
                .select_related("enrolment__patient")
                .filter(pk=kwargs["proposal_id"])
                .first()
            )
            return (proposal.enrolment.patient, proposal) if proposal else (None, None)
        for kwarg, visible_to in _PATIENT_OBJECTS.items():
            if kwarg in kwargs:
                obj = visible_to(user).select_related("patient").filter(pk=kwargs[kwarg]).first()
                return (obj.patient, obj) if obj else (None, None)
        return None, None


def schema_doc_excludes() -> list[type]:
    """drf-spectacular's `GET_LIB_DOC_EXCLUDES`: the bases whose docstrings never describe an
    endpoint. A view without a docstring of its own (or of an intermediate base) gets no
    description, rather than `AuditedApi`'s, which describes the machinery every view shares."""
    return [*get_lib_doc_excludes(), AuditedApi]


# A page of what the user may see of one kind (`rows()`), optionally only those with one
# `status` (`?status=`, one of `statuses`), each row naming its patient in `patient_id`. A
# subclass names its `operation_id`, `tag`, `page_name`, `statuses`, `ordering` and
# OutputSerializer. (No docstring: the schema describes a view without its own docstring by its
# nearest base's.)
class StatusListApi(AuditedApi):
    operation_id = ""
    tag = ""
    page_name = ""
    statuses: type[models.TextChoices]
    ordering = "-id"
    OutputSerializer: type[serializers.Serializer]
    FilterSerializer: type[serializers.Serializer]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        status = serializers.ChoiceField(choices=cls.statuses.choices, required=False)
        cls.FilterSerializer = view_serializer(
            cls, "FilterSerializer", serializers.Serializer, {"status": status}
        )
        schema = page_schema(
            cls.operation_id,
            cls.tag,
            cls.OutputSerializer,
            cls.page_name,
            filters=[OpenApiParameter("status", str, enum=cls.statuses.values)],
        )
        extend_schema_view(get=schema)(cls)

    def rows(self, status: str | None) -> models.QuerySet[Any]:
        raise NotImplementedError

    def get(self, request: StaffRequest) -> Response:
        filters = validated(self.FilterSerializer, request.query_params)
        return self.audited_page(
            self.rows(filters.validated_data.get("status")),
            self.OutputSerializer,
            ordering=self.ordering,
            patient_field="patient_id",
        )


# A page of the rows of the patient the URL names (`rows()`), within the user's scope, filtered
# by the query (`FilterSerializer`, documented by `filters`). A subclass names its
# `operation_id`, `tag`, `page_name`, `ordering` and OutputSerializer. (No docstring: the schema
# describes a view without its own docstring by its nearest base's.)
class PatientPageApi(AuditedApi):
    operation_id = ""
    tag = ""
    page_name = ""
    filters: list[OpenApiParameter] = []
    ordering: str | Sequence[str] = "-id"
    OutputSerializer: type[serializers.Serializer]

    class FilterSerializer(serializers.Serializer):
        pass

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "operation_id" in cls.__dict__:
            schema = page_schema(
                cls.operation_id,
                cls.tag,
                cls.OutputSerializer,
                cls.page_name,
                filters=cls.filters,
                errors=(400, 403, 404),
            )
            extend_schema_view(get=schema)(cls)

    def rows(self, patient: Patient, **filters: Any) -> models.QuerySet[Any]:
        raise NotImplementedError

    def get(self, request: StaffRequest, patient_id: int) -> Response:
        patient = self.scoped_patient(patient_id)
        filters = validated(self.FilterSerializer, request.query_params)
        return self.audited_page(
            self.rows(patient, **filters.validated_data),
            self.OutputSerializer,
            ordering=self.ordering,
        )


# Who the patient is: the first fields of both the list's rows and the detail. (A comment, not
# a docstring: drf-spectacular would describe both components with it.)
class _PatientIdentitySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    mrn = serializers.CharField()
    given_name = serializers.CharField()
    family_name = serializers.CharField()
    date_of_birth = serializers.DateField(allow_null=True)


class PatientListApi(AuditedApi):
    operation = Operation.PATIENT_LIST
    audit_action = Action.PATIENT_LIST

    class FilterSerializer(serializers.Serializer):
        search = serializers.CharField(required=False, allow_blank=True, max_length=100)
        active = serializers.ChoiceField(choices=["true", "false"], required=False)

    class OutputSerializer(_PatientIdentitySerializer):
        active = serializers.BooleanField()

    @page_schema(
        "patients_list",
        "patients",
        OutputSerializer,
        "PatientPage",
        filters=[
            OpenApiParameter("search", str, description="Words matching names or the MRN"),
            OpenApiParameter(
                "active",
                str,
                enum=["true", "false"],
                description="Only active (or only deactivated) patients; default both",
            ),
        ],
        errors=(400, 403, 404),
    )
    def get(self, request: StaffRequest) -> Response:
        filters = validated(self.FilterSerializer, request.query_params)
        active = filters.validated_data.get("active")
        patients = patient_list_for_user(
            user=request.user,
            search=filters.validated_data.get("search", ""),
            active=None if active is None else active == "true",
        )
        # The audit names the patients listed, never the search words.
        return self.audited_page(
            patients, self.OutputSerializer, ordering=PATIENT_ORDERING, patient_field="id"
        )


class CareTeamMemberSerializer(serializers.Serializer):
    staff_id = serializers.IntegerField()
    name = serializers.CharField(source="staff")
    role = serializers.CharField(source="staff.role")
    is_primary = serializers.BooleanField()
    started_at = serializers.DateTimeField()


class PatientDetailApi(AuditedApi):
    operation = Operation.PATIENT_VIEW
    audit_action = Action.PATIENT_VIEW

    class OutputSerializer(_PatientIdentitySerializer):
        time_zone = serializers.CharField(help_text="IANA time zone, e.g. Europe/London")
        language = serializers.CharField(help_text="Language of the patient's pages and messages")
        email = serializers.CharField(allow_blank=True)
        phone = serializers.CharField(allow_blank=True, help_text="E.164")
        preferred_channel = serializers.CharField()
        fallback_channel = serializers.CharField(allow_blank=True)
        send_window_start = LocalTimeField(help_text="Local time: quiet hours before")
        send_window_end = LocalTimeField(help_text="Local time: quiet hours after")
        active = serializers.BooleanField(help_text="False once deactivated")
        deactivated_at = serializers.DateTimeField(allow_null=True)
        deactivation_reason = serializers.CharField(allow_blank=True)
        care_team = CareTeamMemberSerializer(source="active_care_team", many=True)

    @read_schema("patients_retrieve", "patients", OutputSerializer)
    def get(self, request: StaffRequest, patient_id: int) -> Response:
        patient = self.scoped_patient(patient_id)
        return self.audited_response(self.OutputSerializer(patient).data)


class PatientEnrolmentListApi(PatientPageApi):
    operation = Operation.ENROLMENT_VIEW
    audit_action = Action.ENROLMENT_LIST
    operation_id = "patients_enrolments_list"
    tag = "patients"
    page_name = "EnrolmentSummaryPage"

    class OutputSerializer(serializers.Serializer):
        public_id = serializers.UUIDField()
        definition_key = serializers.CharField()
        definition_version = serializers.IntegerField()
        status = serializers.CharField()
        version = serializers.IntegerField()
        states = serializers.SerializerMethodField()
        started_at = serializers.DateTimeField()
        completed_at = serializers.DateTimeField(allow_null=True)

        def get_states(self, enrolment) -> dict[str, str]:
            return {track: item["state"] for track, item in enrolment.configuration.items()}

    def rows(self, patient: Patient, **filters: Any) -> models.QuerySet[Any]:
        return enrolment_list_for_patient(patient=patient)
