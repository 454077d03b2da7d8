"""Observations: what was measured, done or decided about a patient (scores, procedures and
their relief, therapy sessions, medications, ...), and recording the ones clinicians enter.

Reading: `GET /patients/{id}/observations` lists the current observations (corrected and
withdrawn ones are left out), newest first, filtered by `kind`, `code` and a `since` / `until`
window. A patient sees their own scores only (carehub.care_access).

Recording (`POST /patients/{id}/procedures`, `.../sessions`, `.../scores`, and
`POST /observations/{id}/result` for the relief after a recorded procedure) needs an
`Idempotency-Key`: a retry with the same key answers the observation the first request recorded
(200, `Idempotent-Replayed: true`) instead of recording it twice.

A pathway reads facts when it receives an event, so recording is usually followed by one (a
session logged, a block's result recorded), as in the admin and the demo. The body's optional
`event` does both in one request, through the same service the staff pages use
(`carehub.pathways.recording`): the observation is recorded, then the event is sent to
every active pathway of the patient that lets people send it, with the same key (per
enrolment), so the pathway decides on the facts just recorded. The outcome per pathway is in
`events` (a `no_change` outcome is not an error: the observation is recorded, and the step
explains why nothing moved). An event no active pathway accepts is refused before anything is
recorded. Without `event` the client sends the event itself (`POST /enrolments/{public_id}/
events`).

Scores go through the one scoring-and-recording service (`carehub.observations.scores`), as a
patient's check-in answers do: the instrument library scores the item answers (or checks a
total entered by staff, where the instrument allows one), an incomplete or inconsistent entry
is refused with each field named (an item as `items.<key>`), and red flags raise the same flag
and urgent care-team alerts as the patient's own answers (a PHQ-9 with item 9 at 1 or more).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.response import Response

from carehub.api.idempotency import REPLAYED_HEADER, idempotency_key
from carehub.api.patients import AuditedApi, PatientPageApi
from carehub.api.requests import StaffRequest, validated
from carehub.api.schema import example, problems
from carehub.audit.models import Action
from carehub.care_access import Operation
from carehub.core.exceptions import Conflict, InvalidInput
from carehub.observations.models import Kind, Observation, Source
from carehub.observations.scores import score_observation_record
from carehub.observations.selectors import (
    observation_get_for_user,
    observation_list_for_patient,
)
from carehub.observations.services import (
    procedure_record,
    procedure_result_record,
    session_record,
)
from carehub.pathways.recording import observation_record_and_tell
from carehub.pathways.services import DispatchResult
from carehub.patients.models import Patient
from carehub.patients.selectors import patient_get_for_user

NOTES_MAX_LENGTH = 2000


class ObservationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    patient_id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=Kind.values)
    code = serializers.CharField(help_text="Instrument, procedure, discipline, drug, ...")
    value_number = serializers.FloatField(allow_null=True)
    value_text = serializers.CharField(allow_blank=True)
    value_bool = serializers.BooleanField(allow_null=True)
    data = serializers.DictField(  # type: ignore[assignment]  # a field named like a DRF attribute
        child=serializers.JSONField(), help_text="Details (score items, region, notes, ...)"
    )
    observed_at = serializers.DateTimeField(help_text="When it happened")
    recorded_at = serializers.DateTimeField(source="created_at")
    recorded_by_id = serializers.IntegerField(allow_null=True)
    source = serializers.ChoiceField(choices=Source.values)  # type: ignore[assignment]  # a field named like a DRF attribute
    is_baseline = serializers.BooleanField()
    corrects_id = serializers.IntegerField(
        allow_null=True, help_text="The earlier observation this one replaces"
    )


class PatientObservationListApi(PatientPageApi):
    operation = Operation.OBSERVATION_VIEW
    audit_action = Action.OBSERVATION_LIST
    operation_id = "patients_observations_list"
    tag = "observations"
    page_name = "ObservationPage"
    filters = [
        OpenApiParameter("kind", str, enum=Kind.values),
        OpenApiParameter("code", str, description="e.g. `peg`, `mbb1`, `pt`"),
        OpenApiParameter("since", str, description="Observed at or after (ISO 8601)"),
        OpenApiParameter("until", str, description="Observed before (ISO 8601)"),
    ]
    ordering = ("-observed_at", "-id")

    class FilterSerializer(serializers.Serializer):
        kind = serializers.ChoiceField(choices=Kind.choices, required=False)
        code = serializers.SlugField(required=False, max_length=64)
        since = serializers.DateTimeField(required=False)
        until = serializers.DateTimeField(required=False)

    OutputSerializer = ObservationSerializer

    def rows(self, patient: Patient, **filters: Any) -> QuerySet[Observation]:
        return observation_list_for_patient(user=self.request.user, patient=patient, **filters)


class EventResultSerializer(serializers.Serializer):
    enrolment = serializers.UUIDField(source="enrolment.public_id")
    event = serializers.CharField(source="step.event")
    outcome = serializers.CharField()
    step = serializers.IntegerField(source="step.sequence")
    replayed = serializers.BooleanField()
    summary = serializers.SerializerMethodField()

    def get_summary(self, result: DispatchResult) -> str:
        return str((result.step.explanation or {}).get("summary", ""))


class RecordedOutputSerializer(serializers.Serializer):
    observation = ObservationSerializer()
    replayed = serializers.BooleanField(help_text="The answer to an earlier request")
    events = EventResultSerializer(
        many=True, help_text="The pathway event sent after recording, per enrolment"
    )


class _EventField(serializers.Serializer):
    event = serializers.SlugField(
        required=False,
        max_length=64,
        help_text="A pathway event to send after recording, e.g. `pt_session_logged`",
    )


class _CorrectsField(_EventField):
    corrects = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=2**63 - 1,
        help_text="The id of the observation this one replaces (same patient and kind, not yet "
        "replaced): the correction path; the replaced one stays in the history, unread",
    )


def _corrected(patient: Patient, values: dict[str, Any]) -> Observation | None:
    """The observation `corrects` names: one of this patient's (400 otherwise)."""
    corrects = values.get("corrects")
    if corrects is None:
        return None
    observation = Observation.objects.filter(pk=corrects, patient=patient).first()
    if observation is None:
        message = "No such observation of this patient."
        raise InvalidInput(f"corrects: {message}", extra={"fields": {"corrects": [message]}})
    return observation


class _ObservationRecordApi(AuditedApi):
    """What recording shares: the key, the event check, the idempotent write, the event."""

    operation = Operation.OBSERVATION_RECORD
    InputSerializer: type[serializers.Serializer]
    OutputSerializer = RecordedOutputSerializer

    def recording_patient(self, patient_id: int) -> Patient:
        """The patient the URL names, within the user's scope (404 otherwise), as the subject of
        the audit row; its object is the observation recorded."""
        patient = patient_get_for_user(user=self.request.user, patient_id=patient_id)
        self.audit_patient = patient
        return patient

    def record(
        self,
        request: StaffRequest,
        patient: Patient,
        operation: str,
        create: Callable[[dict[str, Any]], Observation],
    ) -> Response:
        key = idempotency_key(request)
        data = validated(self.InputSerializer, request.data)
        values: dict[str, Any] = data.validated_data
        event = values.get("event")
        user = request.user
        told = observation_record_and_tell(
            patient=patient,
            event=event,
            idempotency_key=f"api:{user.pk}:{key}",
            user=user,
            require_listener=True,
            record=lambda: self.idempotent_create(operation, Observation, lambda: create(values)),
        )
        observation, replayed = told.recorded
        self.audit_obj = observation
        self.audit_detail = {"kind": observation.kind, "code": observation.code}
        if event:
            self.audit_detail["event"] = event
        if told.not_told is not None:
            exc = told.not_told
            retry = " A retry with the same key sends it." if isinstance(exc, Conflict) else ""
            raise type(exc)(
                f"The observation was recorded (id {observation.pk}) but the event was not "
                f"sent: {exc.message}{retry}",
                extra={**exc.extra, "observation_id": observation.pk},
            ) from exc
        body = self.OutputSerializer(
            {"observation": observation, "replayed": replayed, "events": told.results}
        ).data
        self.audit()
        if replayed:
            return Response(body, headers={REPLAYED_HEADER: "true"})
        return Response(body, status=status.HTTP_201_CREATED)


# 422: an `event` sent after recording whose guards do not hold (the observation stays).
_RECORD_RESPONSES = {
    200: RecordedOutputSerializer,
    201: RecordedOutputSerializer,
    **problems(400, 403, 404, 409, 422),
}


class _PatientRecordApi(_ObservationRecordApi):
    """A patient's observation recorded by one observation service (`write`)."""

    step_name = ""
    # The POST's schema: its operation id and examples (with the class's InputSerializer).
    record_operation_id = ""
    record_examples: list[Any] = []

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "record_operation_id" in cls.__dict__:
            schema = extend_schema(
                operation_id=cls.record_operation_id,
                tags=["observations"],
                request=cls.InputSerializer,
                examples=cls.record_examples,
                responses=_RECORD_RESPONSES,
            )
            extend_schema_view(post=schema)(cls)

    # The observation service; the InputSerializer's fields are its arguments (but `event`, sent
    # after recording, and `corrects`, the id of what is replaced).
    record_service: Callable[..., Observation]

    def write(self, patient: Patient, values: dict[str, Any], corrects: Observation | None) -> Any:
        arguments = {name: v for name, v in values.items() if name not in ("event", "corrects")}
        user = self.request.user
        return self.record_service(
            patient=patient, recorded_by=user, corrects=corrects, **arguments
        )

    def post(self, request: StaffRequest, patient_id: int) -> Response:
        patient = self.recording_patient(patient_id)

        def create(values: dict[str, Any]) -> Observation:
            return self.write(patient, values, _corrected(patient, values))

        return self.record(request, patient, f"{self.step_name}:{patient.pk}", create)


class PatientProcedureRecordApi(_PatientRecordApi):
    """A procedure performed (e.g. `mbb1`, `esi`), with its relief when already known."""

    audit_action = Action.OBSERVATION_PROCEDURE
    step_name = "procedure"

    class InputSerializer(_CorrectsField):
        procedure = serializers.SlugField(max_length=64, help_text="e.g. `mbb1`, `esi`, `rfa`")
        performed_at = serializers.DateTimeField()
        relief_pct = serializers.FloatField(
            required=False, allow_null=True, min_value=0, max_value=100
        )
        relief_weeks = serializers.FloatField(
            required=False, allow_null=True, min_value=0, max_value=520
        )
        region = serializers.CharField(required=False, allow_blank=True, max_length=64)

    record_service = staticmethod(procedure_record)

    record_operation_id = "patients_procedures_record"
    record_examples = [
        example(
            "Medial branch block", {"procedure": "mbb1", "performed_at": "2026-01-05T10:00:00Z"}
        )
    ]


class ObservationResultRecordApi(_ObservationRecordApi):
    """The relief after a recorded procedure: a new record of the procedure carrying the result
    replaces the earlier one (which stays in the history)."""

    audit_action = Action.OBSERVATION_PROCEDURE_RESULT

    class InputSerializer(_EventField):
        relief_pct = serializers.FloatField(min_value=0, max_value=100)
        assessed_at = serializers.DateTimeField()
        relief_weeks = serializers.FloatField(
            required=False, allow_null=True, min_value=0, max_value=520
        )

    @extend_schema(
        operation_id="observations_result_record",
        tags=["observations"],
        request=InputSerializer,
        examples=[
            example("80 % relief", {"relief_pct": 80, "assessed_at": "2026-01-05T16:00:00Z"})
        ],
        responses=_RECORD_RESPONSES,
    )
    def post(self, request: StaffRequest, observation_id: int) -> Response:
        procedure = self.scoped(
            observation_get_for_user(user=request.user, observation_id=observation_id)
        )

        def create(values: dict[str, Any]) -> Observation:
            return procedure_result_record(
                procedure=procedure,
                relief_pct=values["relief_pct"],
                assessed_at=values["assessed_at"],
                relief_weeks=values.get("relief_weeks"),
                recorded_by=request.user,
            )

        return self.record(request, procedure.patient, f"result:{procedure.pk}", create)


class PatientSessionRecordApi(_PatientRecordApi):
    """A therapy session (`pt`, `cbt`), attended or missed, with notes. Logged by the
    therapists who run them (`session.log`), each discipline by the roles the pathway
    definition names for its session event (a psychologist does not log PT sessions)."""

    operation = Operation.SESSION_LOG
    audit_action = Action.OBSERVATION_SESSION
    step_name = "session"

    class InputSerializer(_CorrectsField):
        discipline = serializers.SlugField(max_length=32, help_text="`pt` or `cbt`")
        attended = serializers.BooleanField()
        observed_at = serializers.DateTimeField()
        notes = serializers.CharField(required=False, allow_blank=True, max_length=NOTES_MAX_LENGTH)

    record_service = staticmethod(session_record)

    record_operation_id = "patients_sessions_record"
    record_examples = [
        example(
            "PT session",
            {
                "discipline": "pt",
                "attended": True,
                "observed_at": "2026-01-05T10:00:00Z",
                "notes": "Walked 10 minutes",
            },
        )
    ]


class PatientScoreRecordApi(_PatientRecordApi):
    """A score entered by staff: the item answers of an instrument read out or taken from a
    paper form (e.g. a PHQ-9 at intake), or a total where the instrument allows one (an ODI
    computed on the licensed form). Scored like a check-in, red flags included (check-in answers
    themselves are recorded by `POST /checkins/{id}/answers`)."""

    audit_action = Action.OBSERVATION_SCORE
    step_name = "score"

    class InputSerializer(_CorrectsField):
        instrument = serializers.SlugField(max_length=32, help_text="e.g. `phq9`, `peg`, `odi`")
        instrument_version = serializers.IntegerField(
            required=False, allow_null=True, min_value=1, help_text="Default: the latest"
        )
        items = serializers.DictField(
            child=serializers.IntegerField(),
            required=False,
            help_text="Item answers by item key (see `GET /instruments/{key}/{version}`); "
            "required for instruments with red-flag rules on an item (PHQ-9), refused for "
            "licensed ones (ODI, BPI)",
        )
        score = serializers.FloatField(
            required=False,
            allow_null=True,
            help_text="The total: alone where the instrument allows it (licensed instruments, "
            "free ones without red-flag rules on items); with items, it must be what they give",
        )
        observed_at = serializers.DateTimeField()
        is_baseline = serializers.BooleanField(
            required=False,
            allow_null=True,
            default=None,
            help_text="Omitted: the first current score of the instrument is the baseline",
        )

    # The input's own fields; any other field a refusal names is an item (`items.<key>`).
    FIELDS = frozenset(
        {
            "instrument",
            "instrument_version",
            "score",
            "observed_at",
            "is_baseline",
            "items",
            "source",
            "recorded_by",
            "patient",
            "corrects",
        }
    )

    def write(self, patient: Patient, values: dict[str, Any], corrects: Observation | None) -> Any:
        try:
            recorded = score_observation_record(
                patient=patient,
                instrument=values["instrument"],
                version=values.get("instrument_version"),
                items=values.get("items") or None,
                score=values.get("score"),
                observed_at=values["observed_at"],
                is_baseline=values.get("is_baseline"),
                recorded_by=self.request.user,
                source=Source.STAFF,
                corrects=corrects,
            )
        except InvalidInput as exc:
            fields = exc.extra.get("fields")
            if not isinstance(fields, dict):
                raise
            named = {k if k in self.FIELDS else f"items.{k}": v for k, v in fields.items()}
            raise InvalidInput(exc.message, extra={**exc.extra, "fields": named}) from exc
        assert recorded.observation is not None  # outside a check-in: recorded or refused
        return recorded.observation

    record_operation_id = "patients_scores_record"
    record_examples = [
        example(
            "PHQ-9 at intake",
            {
                "instrument": "phq9",
                "items": {f"item{n}": 1 for n in range(1, 10)},
                "observed_at": "2026-01-05T10:00:00Z",
            },
        ),
        example("ODI", {"instrument": "odi", "score": 40, "observed_at": "2026-01-05T10:00:00Z"}),
    ]
