"""A sandbox clinic's test clock (ADR 0024).

`GET /clinic/test-clock` shows the caller's clinic's test clock: where it stands, the advance
under way, the next moment something falls due. `POST /clinic/test-clock/advance` asks for an
advance, `{"to": "<moment with offset>"}` or `{"by": "P2W"}` (ISO 8601 duration in weeks, days,
hours, minutes, seconds), at most a year and a day forward: 202, and a worker runs it (the GET
says when it is done). Only the clinic admin advances; a second advance while one runs is 409
`advance_in_progress`. A production clinic has no test clock: the GET says so (`sandbox`
false, `now` null), an advance answers 409 `not_a_sandbox`. Both audited.
"""

from __future__ import annotations

import re
from datetime import timedelta

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.response import Response

from carehub.api.patients import AuditedApi
from carehub.api.requests import StaffRequest, validated
from carehub.api.schema import example, problems
from carehub.audit.models import Action
from carehub.care_access import Operation
from carehub.sandbox.selectors import SandboxClock, sandbox_clock_get
from carehub.sandbox.services import NotASandbox, sandbox_clock_advance

_DURATION = re.compile(
    r"^P(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?$"
)


@extend_schema_field({"type": "string", "format": "duration", "example": "P2W"})
class IsoDurationField(serializers.Field):
    """An ISO 8601 duration of weeks, days, hours, minutes and seconds (`P2W`, `P1DT12H`);
    years and months are refused (their length depends on the date)."""

    default_error_messages = {
        "invalid": "Give an ISO 8601 duration in weeks, days, hours, minutes or seconds, "
        "e.g. P2W, P3D, PT12H."
    }

    def to_internal_value(self, data: object) -> timedelta:
        match = _DURATION.match(data) if isinstance(data, str) and len(data) <= 40 else None
        if match is None or data in ("P", "PT") or str(data).endswith("T"):
            self.fail("invalid")
        assert match is not None
        parts = {name: int(value) for name, value in match.groupdict().items() if value}
        return timedelta(**parts)

    def to_representation(self, value: timedelta) -> str:
        return f"PT{int(value.total_seconds())}S"


class SandboxClockSerializer(serializers.Serializer):
    sandbox = serializers.BooleanField(
        source="is_sandbox", help_text="A sandbox clinic (false: production, no test clock)"
    )
    now = serializers.DateTimeField(
        allow_null=True, help_text="The clinic's now: its test clock (null: production)"
    )
    advancing_to = serializers.DateTimeField(
        allow_null=True, help_text="Where the advance under way goes (null: none)"
    )
    advance_requested_at = serializers.DateTimeField(
        allow_null=True, help_text="When that advance was asked for (real time)"
    )
    last_error = serializers.CharField(
        allow_blank=True, help_text="Why the last advance stopped early (empty: it did not)"
    )
    next_due_at = serializers.DateTimeField(
        allow_null=True, help_text="The next moment something of the clinic falls due"
    )
    max_advance_days = serializers.IntegerField(help_text="The longest single advance")


def _clock(clinic_id: int) -> SandboxClock:
    found = sandbox_clock_get(clinic_id=clinic_id)
    if not found.is_sandbox:
        raise NotASandbox(
            f"{found.clinic_name} is a production clinic: it lives on the real clock. Only a "
            "sandbox clinic has a test clock."
        )
    return found


class SandboxClockApi(AuditedApi):
    operation = Operation.TEST_CLOCK_VIEW
    audit_action = Action.TEST_CLOCK_VIEW

    OutputSerializer = SandboxClockSerializer

    @extend_schema(
        operation_id="test_clock_get",
        tags=["clinic"],
        responses={200: SandboxClockSerializer, **problems(403)},
    )
    def get(self, request: StaffRequest) -> Response:
        found = sandbox_clock_get(clinic_id=request.user.clinic_id)
        self.audit(detail={"test_clock": found.now.isoformat() if found.now else None})
        return Response(self.OutputSerializer(found).data)


class SandboxClockAdvanceApi(AuditedApi):
    operation = Operation.TEST_CLOCK_ADVANCE
    audit_action = Action.TEST_CLOCK_ADVANCE

    class InputSerializer(serializers.Serializer):
        to = serializers.DateTimeField(
            required=False, help_text="The moment to move to, with its offset"
        )
        by = IsoDurationField(required=False, help_text="Or how far: P2W, P3D, PT12H")

    OutputSerializer = SandboxClockSerializer

    @extend_schema(
        operation_id="test_clock_advance",
        tags=["clinic"],
        request=InputSerializer,
        examples=[
            example("Two weeks", {"by": "P2W"}),
            example("To a moment", {"to": "2027-03-01T09:00:00+00:00"}),
        ],
        responses={202: SandboxClockSerializer, **problems(400, 403, 409)},
    )
    def post(self, request: StaffRequest) -> Response:
        data = validated(self.InputSerializer, request.data)
        before = _clock(request.user.clinic_id)
        clinic = sandbox_clock_advance(
            clinic_id=request.user.clinic_id,
            user=request.user,
            to=data.validated_data.get("to"),
            by=data.validated_data.get("by"),
        )
        self.audit_obj = clinic
        after = sandbox_clock_get(clinic_id=clinic.pk)
        self.audit(
            detail={
                "from": before.now.isoformat() if before.now else None,
                "to": after.advancing_to.isoformat() if after.advancing_to else None,
            }
        )
        return Response(
            self.OutputSerializer(after).data,
            status=202,
            headers={"Location": request.build_absolute_uri("/api/v1/clinic/test-clock")},
        )
