"""Patients, within the user's scope (carehub.care_access)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from carehub.api.pagination import paginated, paginated_response
from carehub.api.permissions import RoleAllows
from carehub.api.schema import problems
from carehub.care_access import Operation
from carehub.pathways.selectors import enrolment_list_for_patient
from carehub.patients.selectors import patient_get_for_user, patient_list_for_user

PATIENT_ORDERING = ("family_name", "given_name", "id")
PAGE_PARAMETERS = [
    OpenApiParameter("cursor", str, description="Opaque cursor from `next` / `previous`"),
    OpenApiParameter("page_size", int, description="1 to 100 (default 50)"),
]


class PatientListApi(APIView):
    permission_classes = [IsAuthenticated, RoleAllows]
    operation = Operation.PATIENT_LIST

    class FilterSerializer(serializers.Serializer):
        search = serializers.CharField(required=False, allow_blank=True, max_length=100)

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        mrn = serializers.CharField()
        given_name = serializers.CharField()
        family_name = serializers.CharField()
        date_of_birth = serializers.DateField(allow_null=True)

    @extend_schema(
        operation_id="patients_list",
        tags=["patients"],
        parameters=[
            OpenApiParameter("search", str, description="Words matching names or the MRN"),
            *PAGE_PARAMETERS,
        ],
        responses={200: paginated(OutputSerializer, "PatientPage"), **problems(400, 403, 404)},
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        patients = patient_list_for_user(
            user=request.user, search=filters.validated_data.get("search", "")
        )
        return paginated_response(
            request=request,
            view=self,
            queryset=patients,
            serializer_class=self.OutputSerializer,
            ordering=PATIENT_ORDERING,
        )


class CareTeamMemberSerializer(serializers.Serializer):
    staff_id = serializers.IntegerField()
    name = serializers.CharField(source="staff")
    role = serializers.CharField(source="staff.role")
    is_primary = serializers.BooleanField()
    started_at = serializers.DateTimeField()


class PatientDetailApi(APIView):
    permission_classes = [IsAuthenticated, RoleAllows]
    operation = Operation.PATIENT_VIEW

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        mrn = serializers.CharField()
        given_name = serializers.CharField()
        family_name = serializers.CharField()
        date_of_birth = serializers.DateField(allow_null=True)
        time_zone = serializers.CharField()
        care_team = CareTeamMemberSerializer(source="active_care_team", many=True)

    @extend_schema(
        operation_id="patients_retrieve",
        tags=["patients"],
        responses={200: OutputSerializer, **problems(403, 404)},
    )
    def get(self, request: Request, patient_id: int) -> Response:
        patient = patient_get_for_user(user=request.user, patient_id=patient_id)
        return Response(self.OutputSerializer(patient).data)


class PatientEnrolmentListApi(APIView):
    permission_classes = [IsAuthenticated, RoleAllows]
    operation = Operation.ENROLMENT_VIEW

    class OutputSerializer(serializers.Serializer):
        public_id = serializers.UUIDField()
        definition_key = serializers.CharField()
        definition_version = serializers.IntegerField()
        status = serializers.CharField()
        version = serializers.IntegerField()
        states = serializers.SerializerMethodField()
        started_at = serializers.DateTimeField()
        completed_at = serializers.DateTimeField(allow_null=True)

        def get_states(self, enrolment) -> dict[str, str]:  # type: ignore[no-untyped-def]
            return {track: item["state"] for track, item in enrolment.configuration.items()}

    @extend_schema(
        operation_id="patients_enrolments_list",
        tags=["patients"],
        parameters=PAGE_PARAMETERS,
        responses={200: paginated(OutputSerializer, "EnrolmentSummaryPage"), **problems(403, 404)},
    )
    def get(self, request: Request, patient_id: int) -> Response:
        patient = patient_get_for_user(user=request.user, patient_id=patient_id)
        return paginated_response(
            request=request,
            view=self,
            queryset=enrolment_list_for_patient(patient=patient),
            serializer_class=self.OutputSerializer,
        )
