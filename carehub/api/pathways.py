"""Pathway enrolments, their timelines, events and escalation proposals.

Events (`POST /enrolments/{public_id}/events`), like every write, need an `Idempotency-Key`
header (carehub.api.idempotency): a retry with the same key answers the first outcome (header
`Idempotent-Replayed: true`) without a second step; the key is also passed to the dispatch (as
`api:<user>:<key>`), whose own log of event keys answers a replayed event. An event the
pathway logged but that moved nothing (outcome `no_change`: no transition from the current
state, or no guard held) answers 422 `no_change` with the explanation; the step stays in the
timeline.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import (
    OpenApiExample,
    extend_schema,
    extend_schema_view,
)
from rest_framework import serializers
from rest_framework.response import Response

from carehub.accounts.models import User
from carehub.api.idempotency import REPLAYED_HEADER, idempotency_key
from carehub.api.patients import AuditedApi, StatusListApi
from carehub.api.requests import StaffRequest, validated
from carehub.api.schema import example, page_schema, problems, read_schema
from carehub.audit.models import Action
from carehub.care_access import Operation
from carehub.core.exceptions import CriteriaNotMet
from carehub.pathways.dispatch.store import current_state
from carehub.pathways.models import Proposal, ProposalStatus
from carehub.pathways.selectors import (
    enrolment_get_for_user,
    enrolment_timeline,
    enrolment_view,
    proposal_get_for_user,
    proposal_list_for_user,
)
from carehub.pathways.services import (
    DispatchResult,
    pathway_event_send,
    proposal_approve,
    proposal_reject,
)
from workflows import Outcome


class EventChangedNothing(CriteriaNotMet):
    """The pathway logged the event, but no transition was taken (422)."""

    code = "no_change"


# --- shared output shapes ---------------------------------------------------------------------


class TrackSerializer(serializers.Serializer):
    track = serializers.CharField()
    title = serializers.CharField()
    state = serializers.CharField()
    entered_at = serializers.DateTimeField()
    final = serializers.BooleanField()


class PendingProposalSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    track = serializers.CharField()
    source = serializers.CharField()  # type: ignore[assignment]  # a field named like a DRF attribute
    target = serializers.CharField()
    event = serializers.CharField()
    roles = serializers.ListField(child=serializers.CharField())
    summary = serializers.CharField()
    proposed_at = serializers.DateTimeField()


class EnrolmentSerializer(serializers.Serializer):
    public_id = serializers.UUIDField(source="enrolment.public_id")
    patient_id = serializers.IntegerField(source="enrolment.patient_id")
    definition_key = serializers.CharField(source="enrolment.definition_key")
    definition_version = serializers.IntegerField(source="enrolment.definition_version")
    title = serializers.CharField()
    status = serializers.CharField(source="enrolment.status")
    version = serializers.IntegerField(source="enrolment.version")
    started_at = serializers.DateTimeField(source="enrolment.started_at")
    completed_at = serializers.DateTimeField(source="enrolment.completed_at", allow_null=True)
    tracks = TrackSerializer(many=True)
    pending_proposals = PendingProposalSerializer(many=True)
    available_events = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text=(
            "Per track, the events you may send now: the definition lets your role send them "
            "(guards are evaluated when sent)"
        ),
    )


class StepSerializer(serializers.Serializer):
    sequence = serializers.IntegerField(help_text="Enrolment version after this step")
    event = serializers.CharField()
    outcome = serializers.CharField()
    at = serializers.DateTimeField()
    actor_id = serializers.IntegerField(allow_null=True)
    actor_role = serializers.CharField()
    transitions = serializers.JSONField()
    explanation = serializers.JSONField(help_text="Guards evaluated, values read, `summary`")


def dispatch_response(result: DispatchResult, user: User) -> Response:
    """200 with the outcome and the new state, or 422 when nothing changed."""
    enrolment = enrolment_get_for_user(user=user, public_id=result.enrolment.public_id)
    if result.outcome == Outcome.NO_CHANGE.value:
        explanation = result.step.explanation or {}
        raise EventChangedNothing(
            explanation.get("summary") or "The event changed nothing.",
            extra={
                "explanation": explanation,
                "current": current_state(enrolment),
                "step": result.step.sequence,
                "replayed": result.replayed,
            },
        )
    body = {
        "outcome": result.outcome,
        "replayed": result.replayed,
        "step": StepSerializer(result.step).data,
        "enrolment": EnrolmentSerializer(enrolment_view(enrolment=enrolment, user=user)).data,
    }
    headers = {REPLAYED_HEADER: "true"} if result.replayed else {}
    return Response(body, headers=headers)


class DispatchOutputSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=[o.value for o in Outcome])
    replayed = serializers.BooleanField(help_text="The answer to an earlier request")
    step = StepSerializer()
    enrolment = EnrolmentSerializer()


# --- enrolments -------------------------------------------------------------------------------


class EnrolmentDetailApi(AuditedApi):
    operation = Operation.ENROLMENT_VIEW
    audit_action = Action.ENROLMENT_VIEW

    OutputSerializer = EnrolmentSerializer

    @read_schema("enrolments_retrieve", "enrolments", EnrolmentSerializer)
    def get(self, request: StaffRequest, public_id: str) -> Response:
        enrolment = self.scoped_enrolment(public_id)
        return self.audited_response(
            self.OutputSerializer(enrolment_view(enrolment=enrolment, user=request.user)).data
        )


class EnrolmentTimelineApi(AuditedApi):
    """The step log, newest first, each step with its explanation."""

    operation = Operation.ENROLMENT_VIEW
    audit_action = Action.ENROLMENT_TIMELINE

    OutputSerializer = StepSerializer

    @page_schema(
        "enrolments_timeline", "enrolments", StepSerializer, "StepPage", errors=(400, 403, 404)
    )
    def get(self, request: StaffRequest, public_id: str) -> Response:
        enrolment = self.scoped_enrolment(public_id)
        return self.audited_page(enrolment_timeline(enrolment=enrolment), self.OutputSerializer)


class EnrolmentEventSendApi(AuditedApi):
    """Send an event to the pathway. The definition names who may send each event: any other
    role is refused with 403 naming the `roles` that may (none for the pathway's own timer and
    internal events); `approve` / `reject` go through the proposal."""

    operation = Operation.ENROLMENT_EVENT_SEND
    audit_action = Action.ENROLMENT_EVENT_SEND

    class InputSerializer(serializers.Serializer):
        event = serializers.CharField(max_length=64)
        expected_version = serializers.IntegerField(
            required=False, min_value=0, help_text="Refuse (409) if the enrolment has moved on"
        )
        reason = serializers.CharField(
            required=False,
            allow_blank=True,
            max_length=500,
            help_text="Why; required by events that say so (e.g. the discharge event)",
        )

    OutputSerializer = DispatchOutputSerializer

    @extend_schema(
        operation_id="enrolments_events_send",
        tags=["enrolments"],
        request=InputSerializer,
        examples=[example("Request an ESI", {"event": "esi_requested"})],
        responses={200: DispatchOutputSerializer, **problems(400, 403, 404, 409, 422)},
    )
    def post(self, request: StaffRequest, public_id: str) -> Response:
        key = idempotency_key(request)
        enrolment = self.scoped_enrolment(public_id)
        data = validated(self.InputSerializer, request.data)
        self.audit_detail = {"event": data.validated_data["event"]}
        result = pathway_event_send(
            enrolment=enrolment,
            event=data.validated_data["event"],
            # Keys are the client's; namespaced per user so clients never collide.
            idempotency_key=f"api:{request.user.pk}:{key}",
            user=request.user,
            expected_version=data.validated_data.get("expected_version"),
            reason=data.validated_data.get("reason", ""),
        )
        self.audit_detail.update(
            outcome=result.outcome, step=result.step.sequence, replayed=result.replayed
        )
        response = dispatch_response(result, request.user)
        self.audit()
        return response


# --- proposals --------------------------------------------------------------------------------


class ProposalSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    enrolment = serializers.UUIDField(source="enrolment.public_id")
    patient_id = serializers.IntegerField(source="enrolment.patient_id")
    patient_mrn = serializers.CharField(source="enrolment.patient.mrn")
    patient_name = serializers.SerializerMethodField()
    track = serializers.CharField()
    source = serializers.CharField()  # type: ignore[assignment]  # a field named like a DRF attribute
    target = serializers.CharField()
    event = serializers.CharField()
    roles = serializers.ListField(child=serializers.CharField(), help_text="Who may approve")
    summary = serializers.CharField()
    evidence = serializers.JSONField(help_text="The guard that held, with the values read")
    status = serializers.CharField()
    proposed_at = serializers.DateTimeField()
    decided_at = serializers.DateTimeField(allow_null=True)
    decided_by_id = serializers.IntegerField(allow_null=True)
    reason = serializers.CharField()

    def get_patient_name(self, proposal) -> str:
        patient = proposal.enrolment.patient
        return f"{patient.given_name} {patient.family_name}"


class ProposalListApi(StatusListApi):
    operation = Operation.PROPOSAL_LIST
    audit_action = Action.PROPOSAL_LIST
    operation_id = "proposals_list"
    tag = "proposals"
    page_name = "ProposalPage"
    statuses = ProposalStatus
    OutputSerializer = ProposalSerializer

    def rows(self, status: str | None) -> QuerySet[Proposal]:
        return proposal_list_for_user(user=self.request.user, status=status)


class ProposalDecisionOutputSerializer(serializers.Serializer):
    outcome = serializers.CharField()
    replayed = serializers.BooleanField()
    proposal = ProposalSerializer()
    enrolment = EnrolmentSerializer()


def _decision_response(result: DispatchResult, proposal_id: int, user: User) -> Response:
    proposal = proposal_get_for_user(user=user, proposal_id=proposal_id)
    enrolment = enrolment_get_for_user(user=user, public_id=result.enrolment.public_id)
    body = {
        "outcome": result.outcome,
        "replayed": result.replayed,
        "proposal": ProposalSerializer(proposal).data,
        "enrolment": EnrolmentSerializer(enrolment_view(enrolment=enrolment, user=user)).data,
    }
    return Response(body, headers={REPLAYED_HEADER: "true"} if result.replayed else {})


class _ProposalDecisionApi(AuditedApi):
    """What approving and rejecting share: the scoped proposal, its input, the decision through
    a service with a key per proposal, action and user (a double click gets the first answer),
    the response and the audit row."""

    operation = Operation.PROPOSAL_DECIDE
    action = ""
    OutputSerializer = ProposalDecisionOutputSerializer
    InputSerializer: type[serializers.Serializer]
    example: OpenApiExample

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Each decision's POST documented by its action, InputSerializer and example."""
        super().__init_subclass__(**kwargs)
        schema = extend_schema(
            operation_id=f"proposals_{cls.action}",
            tags=["proposals"],
            request=cls.InputSerializer,
            examples=[cls.example],
            responses={200: ProposalDecisionOutputSerializer, **problems(400, 403, 404, 409, 422)},
        )
        extend_schema_view(post=schema)(cls)

    def decide(self, proposal: Proposal, user: Any, key: str, data: dict[str, Any]) -> Any:
        raise NotImplementedError

    def post(self, request: StaffRequest, proposal_id: int) -> Response:
        proposal = proposal_get_for_user(user=request.user, proposal_id=proposal_id)
        self.audit_patient, self.audit_obj = proposal.enrolment.patient, proposal
        data = validated(self.InputSerializer, request.data)
        key = f"api:proposal:{proposal.pk}:{self.action}:{request.user.pk}"
        result = self.decide(proposal, request.user, key, data.validated_data)
        response = _decision_response(result, proposal.pk, request.user)
        self.audit(detail={"outcome": result.outcome, "replayed": result.replayed})
        return response


class ProposalApproveApi(_ProposalDecisionApi):
    """Approve an escalation: only a role the pathway's gate names may (403 otherwise); the
    guard is evaluated again and must still hold (422 otherwise)."""

    audit_action = Action.PROPOSAL_APPROVE
    action = "approve"
    example = example("Approve", {"note": "Criteria met"})

    class InputSerializer(serializers.Serializer):
        note = serializers.CharField(required=False, allow_blank=True, max_length=2000)

    def decide(self, proposal: Proposal, user: Any, key: str, data: dict[str, Any]) -> Any:
        return proposal_approve(
            proposal=proposal, user=user, idempotency_key=key, note=data.get("note", "")
        )


class ProposalRejectApi(_ProposalDecisionApi):
    """Reject an escalation; a reason is required."""

    audit_action = Action.PROPOSAL_REJECT
    action = "reject"
    example = example("Reject", {"reason": "Patient prefers to wait"})

    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(max_length=2000)

    def decide(self, proposal: Proposal, user: Any, key: str, data: dict[str, Any]) -> Any:
        return proposal_reject(
            proposal=proposal, user=user, idempotency_key=key, reason=data["reason"]
        )
