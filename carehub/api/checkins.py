"""Check-ins: a patient's scheduled questionnaires, their answers and scores.

`POST /checkins/{id}/answers` goes through `checkin_submit`, exactly like the patient's link
page: the answers are scored, the score is stored as an observation, red flags raise a flag and
alert the care team at once, and the next check-in of the series is planned. A patient answers
their own open check-in (`source` `patient`); a clinician may enter the answers on the patient's
behalf, e.g. read out on the phone or from a paper form at a visit (`source` `staff`, so the
record says who answered). A check-in already answered, or no longer open, answers 410 `gone`,
as the link page does; invalid answers 400 with each item named under `errors`
(`answers.<item>`). The answer carries the messages the patient must see at once (crisis
resources after a PHQ-9 item 9 answer, for instance).
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from carehub.accounts.models import Role
from carehub.api.exception_handler import Gone
from carehub.api.patients import AuditedApi, PatientPageApi
from carehub.api.requests import StaffRequest, validated
from carehub.api.schema import example, problems, read_schema
from carehub.audit.models import Action
from carehub.care_access import Operation
from carehub.checkins.models import Checkin, CheckinStatus
from carehub.checkins.selectors import checkin_get_for_user, checkin_list_for_patient
from carehub.checkins.services import checkin_open_now, checkin_submit
from carehub.core.exceptions import Conflict, InvalidInput
from carehub.observations.models import Source
from carehub.patients.models import Patient

ANSWERS_MAX_ITEMS = 50


class RedFlagSerializer(serializers.Serializer):
    code = serializers.CharField()
    urgency = serializers.CharField()
    item = serializers.CharField(allow_null=True)


class CheckinSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    patient_id = serializers.IntegerField()
    enrolment = serializers.UUIDField(source="enrolment.public_id")
    series = serializers.CharField(source="series.series")
    instrument = serializers.CharField()
    instrument_version = serializers.IntegerField(allow_null=True)
    sequence = serializers.IntegerField()
    status = serializers.ChoiceField(choices=CheckinStatus.choices)
    due_at = serializers.DateTimeField()
    closes_at = serializers.DateTimeField(help_text="Answers are accepted until then")
    opened_at = serializers.DateTimeField(allow_null=True)
    answered_at = serializers.DateTimeField(allow_null=True)
    score = serializers.FloatField(allow_null=True, help_text="When answered and scorable")
    band = serializers.CharField(help_text="Severity band of the score, if the instrument has")
    red_flags = RedFlagSerializer(many=True)


class CheckinDetailSerializer(CheckinSerializer):
    answers = serializers.DictField(
        child=serializers.JSONField(), help_text="The answers given, by item key"
    )
    observation_id = serializers.IntegerField(
        allow_null=True, help_text="The score observation the answers were recorded as"
    )


class PatientCheckinListApi(PatientPageApi):
    """The patient's check-ins, the latest due first."""

    operation = Operation.CHECKIN_VIEW
    audit_action = Action.CHECKIN_LIST
    operation_id = "patients_checkins_list"
    tag = "check-ins"
    page_name = "CheckinPage"
    filters = [
        OpenApiParameter("status", str, enum=CheckinStatus.values),
        OpenApiParameter("instrument", str, description="An instrument key, e.g. `peg`"),
    ]
    ordering = ("-due_at", "-id")

    class FilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=CheckinStatus.choices, required=False)
        instrument = serializers.SlugField(required=False, max_length=32)

    OutputSerializer = CheckinSerializer

    def rows(self, patient: Patient, **filters: Any) -> QuerySet[Checkin]:
        return checkin_list_for_patient(patient=patient, **filters)


class CheckinDetailApi(AuditedApi):
    operation = Operation.CHECKIN_VIEW
    audit_action = Action.CHECKIN_VIEW

    OutputSerializer = CheckinDetailSerializer

    @read_schema("checkins_retrieve", "check-ins", CheckinDetailSerializer)
    def get(self, request: StaffRequest, checkin_id: int) -> Response:
        checkin = self.scoped(checkin_get_for_user(user=request.user, checkin_id=checkin_id))
        return self.audited_response(self.OutputSerializer(checkin).data)


class CheckinAnswerSubmitApi(AuditedApi):
    """Submit the answers of an open check-in, once."""

    operation = Operation.CHECKIN_SUBMIT
    audit_action = Action.CHECKIN_SUBMIT

    class InputSerializer(serializers.Serializer):
        answers = serializers.DictField(
            child=serializers.JSONField(),
            help_text="Item key → answer: a number for scales and choices, true/false for "
            "yes/no items, text for text items (see the instrument's items)",
        )

        def validate_answers(self, value: dict[str, Any]) -> dict[str, Any]:
            if not value:
                raise serializers.ValidationError("Give at least one answer.")
            if len(value) > ANSWERS_MAX_ITEMS:
                raise serializers.ValidationError(f"At most {ANSWERS_MAX_ITEMS} answers.")
            return value

    class OutputSerializer(serializers.Serializer):
        checkin = CheckinDetailSerializer()
        score = serializers.FloatField(allow_null=True)
        band = serializers.CharField()
        red_flags = RedFlagSerializer(many=True)
        patient_messages = serializers.ListField(
            child=serializers.CharField(),
            help_text="What the patient must be shown at once (e.g. crisis resources)",
        )

    @extend_schema(
        operation_id="checkins_answers_submit",
        tags=["check-ins"],
        request=InputSerializer,
        examples=[example("PEG", {"answers": {"pain": 6, "enjoyment": 5, "activity": 7}})],
        responses={201: OutputSerializer, **problems(400, 403, 404, 410)},
    )
    def post(self, request: StaffRequest, checkin_id: int) -> Response:
        checkin = self.scoped(checkin_get_for_user(user=request.user, checkin_id=checkin_id))
        data = validated(self.InputSerializer, request.data)
        source = Source.PATIENT if request.user.role == Role.PATIENT else Source.STAFF
        try:
            result = checkin_submit(
                checkin_id=checkin.pk, answers=data.validated_data["answers"], source=source
            )
        except Conflict as exc:
            if exc.extra.get("gone"):
                raise Gone(exc.message) from exc
            raise
        except InvalidInput as exc:
            fields = exc.extra.get("fields")
            if isinstance(fields, dict):
                named = {
                    f"answers.{item}" if item != "answers" else "answers": message
                    for item, message in fields.items()
                }
                raise InvalidInput(exc.message, extra={"fields": named}) from exc
            raise
        checkin = checkin_get_for_user(user=request.user, checkin_id=checkin.pk)
        body = self.OutputSerializer(
            {
                "checkin": checkin,
                "score": result.score,
                "band": result.band,
                "red_flags": result.red_flags,
                "patient_messages": result.patient_messages,
            }
        ).data
        self.audit(
            detail={"source": source, "red_flags": [flag["code"] for flag in result.red_flags]}
        )
        return Response(body, status=status.HTTP_201_CREATED)


class CheckinOpenApi(AuditedApi):
    """Open a scheduled check-in now rather than at its due time (the patient is at the clinic,
    or asked for it early): the request and its reminders go out as when the scheduler opens
    it; answers are accepted until its `closes_at`. 409 with the `current` state unless it is
    scheduled on an active pathway."""

    operation = Operation.CHECKIN_OPEN
    audit_action = Action.CHECKIN_OPEN

    OutputSerializer = CheckinSerializer

    @extend_schema(
        operation_id="checkins_open",
        tags=["checkins"],
        request=None,
        responses={200: CheckinSerializer, **problems(403, 404, 409)},
    )
    def post(self, request: StaffRequest, checkin_id: int) -> Response:
        checkin = self.scoped(checkin_get_for_user(user=request.user, checkin_id=checkin_id))
        checkin_open_now(checkin=checkin)
        fresh = checkin_get_for_user(user=request.user, checkin_id=checkin_id)
        return self.audited_response(self.OutputSerializer(fresh).data)
