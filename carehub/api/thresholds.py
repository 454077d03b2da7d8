"""The clinic's pathway thresholds: every clinical number a pathway compares with, the value
this clinic uses and where it comes from.

`GET /thresholds` lists every threshold of every published pathway for the caller's clinic: the
definition's default with its source and, when the clinic set its own, that value and source.
`PUT /thresholds/{pathway_key}/{name}` sets the clinic's value; a source is required (e.g.
"ASRA 2020"). Only the clinic admin sets them (product: the clinic admin configures the clinic;
clinicians use the numbers). Decisions from then on read the new value and show its source;
steps already logged keep the value they read. Both are audited (no patient: a clinic row).
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from carehub.api.patients import AuditedApi
from carehub.api.requests import StaffRequest, validated
from carehub.api.schema import example, problems
from carehub.audit.models import Action
from carehub.care_access import Operation
from carehub.clinics.selectors import threshold_get_for_clinic, threshold_list_for_clinic
from carehub.clinics.services import NOTE_MAX_LENGTH, SOURCE_MAX_LENGTH, threshold_set


class ThresholdSerializer(serializers.Serializer):
    pathway_key = serializers.CharField()
    name = serializers.CharField()
    unit = serializers.CharField(allow_blank=True)
    description = serializers.CharField(allow_blank=True)
    default = serializers.JSONField(help_text="The definition's value: number, boolean or text")
    default_source = serializers.CharField()
    value = serializers.JSONField(help_text="The value this clinic's pathways use")
    source = serializers.CharField(help_text="Where the value used comes from")  # type: ignore[assignment]  # a field named like a DRF attribute
    overridden = serializers.BooleanField(help_text="The clinic set its own value")
    note = serializers.CharField(allow_blank=True)
    updated_at = serializers.DateTimeField(allow_null=True)
    updated_by_id = serializers.IntegerField(allow_null=True)


class ThresholdListApi(AuditedApi):
    operation = Operation.THRESHOLD_VIEW
    audit_action = Action.THRESHOLD_LIST

    OutputSerializer = ThresholdSerializer

    @extend_schema(
        operation_id="thresholds_list",
        tags=["clinic"],
        responses={200: ThresholdSerializer(many=True), **problems(403)},
    )
    def get(self, request: StaffRequest) -> Response:
        rows = threshold_list_for_clinic(clinic_id=request.user.clinic_id)
        data = self.OutputSerializer(rows, many=True).data
        self.audit(detail={"listed": len(rows)})
        return Response(data)


class ThresholdSetApi(AuditedApi):
    operation = Operation.THRESHOLD_SET
    audit_action = Action.THRESHOLD_SET

    class InputSerializer(serializers.Serializer):
        value = serializers.JSONField(help_text="Of the default's type: number, boolean or text")
        source = serializers.CharField(  # type: ignore[assignment]  # a field named like a DRF attribute
            max_length=SOURCE_MAX_LENGTH, help_text="Where the value comes from"
        )
        note = serializers.CharField(required=False, allow_blank=True, max_length=NOTE_MAX_LENGTH)

    OutputSerializer = ThresholdSerializer

    @extend_schema(
        operation_id="thresholds_set",
        tags=["clinic"],
        request=InputSerializer,
        examples=[example("ASRA", {"value": 50, "source": "ASRA 2020"})],
        responses={200: ThresholdSerializer, **problems(400, 403, 404)},
    )
    def put(self, request: StaffRequest, pathway_key: str, name: str) -> Response:
        clinic = request.user.clinic
        before = threshold_get_for_clinic(clinic=clinic, pathway_key=pathway_key, name=name)
        data = validated(self.InputSerializer, request.data)
        row = threshold_set(
            clinic=clinic,
            pathway_key=pathway_key,
            name=name,
            value=data.validated_data["value"],
            source=data.validated_data["source"],
            note=data.validated_data.get("note", ""),
            user=request.user,
        )
        self.audit_obj = row
        after = threshold_get_for_clinic(clinic=clinic, pathway_key=pathway_key, name=name)
        body = self.OutputSerializer(after).data
        self.audit(
            detail={
                "pathway": pathway_key,
                "name": name,
                "previous": before.value,
                "value": after.value,
            }
        )
        return Response(body)
