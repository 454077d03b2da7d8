"""Messages and their delivery records, for staff: what was sent to a patient or to staff about
them, on which channel, and why it was sent or not (every change of state with its reason).

A stored body never holds a check-in link's token (the token is minted when the message is sent
and only its hash is kept), but bodies and delivery reasons are still passed through the same
redaction as the logs (`/c/<token>` → `/c/[redacted]`), so a token that reached a row by any
other route is not disclosed. Dead messages (delivery gave up after its attempts) are listed for
the clinic; `resend` gives one a fresh set of attempts.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from carehub.api.patients import AuditedApi, PatientPageApi
from carehub.api.requests import StaffRequest
from carehub.api.schema import page_schema, problems
from carehub.audit.models import Action
from carehub.care_access import Operation
from carehub.core.exceptions import Conflict
from carehub.core.logging import redact
from carehub.core.models import Urgency
from carehub.messaging.models import (
    EVENT_STATUS_CHOICES,
    DeliveryChannel,
    Message,
    MessageStatus,
)
from carehub.messaging.selectors import (
    message_dead_list_for_user,
    message_get_for_user,
    message_list_for_patient,
)
from carehub.messaging.services import message_resend
from carehub.patients.models import Patient


class RedactedCharField(serializers.CharField):
    """Text that may have carried a check-in link: its token is redacted."""

    def to_representation(self, value: Any) -> str:
        return redact(str(value))


class DeliveryEventSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    status = serializers.ChoiceField(
        choices=EVENT_STATUS_CHOICES,
        help_text="The status the message took, or `delivered` when its provider confirmed it",
    )
    reason = RedactedCharField(help_text="Why the message changed state")
    attempt = serializers.IntegerField()


class MessageSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    patient_id = serializers.IntegerField(allow_null=True)
    to_patient = serializers.BooleanField(help_text="To the patient; otherwise to `to_staff_id`")
    to_staff_id = serializers.IntegerField(allow_null=True)
    purpose = serializers.CharField()
    urgency = serializers.ChoiceField(choices=Urgency.values)
    status = serializers.ChoiceField(choices=MessageStatus.choices)
    channel = serializers.ChoiceField(
        choices=[*DeliveryChannel.values, ""], help_text="Chosen at send time"
    )
    body = RedactedCharField(help_text="The text (a check-in link's token never appears)")
    why = RedactedCharField(help_text="Why the message was decided")
    attempts = serializers.IntegerField()
    not_before = serializers.DateTimeField()
    sent_at = serializers.DateTimeField(allow_null=True)
    last_error = RedactedCharField(allow_blank=True)
    created_at = serializers.DateTimeField()
    events = DeliveryEventSerializer(many=True, help_text="Every change of state, oldest first")


class PatientMessageListApi(PatientPageApi):
    """Messages to the patient and to staff about the patient, newest first."""

    operation = Operation.MESSAGE_LIST
    audit_action = Action.MESSAGE_LIST
    operation_id = "patients_messages_list"
    tag = "messages"
    page_name = "MessagePage"

    OutputSerializer = MessageSerializer

    def rows(self, patient: Patient, **filters: Any) -> QuerySet[Message]:
        return message_list_for_patient(user=self.request.user, patient=patient)


class MessageDeadListApi(AuditedApi):
    """The clinic's dead messages (delivery gave up), newest first."""

    operation = Operation.MESSAGE_DEAD_LIST
    audit_action = Action.MESSAGE_DEAD_LIST

    OutputSerializer = MessageSerializer

    @page_schema("messages_dead_list", "messages", MessageSerializer, "DeadMessagePage")
    def get(self, request: StaffRequest) -> Response:
        return self.audited_page(
            message_dead_list_for_user(user=request.user),
            self.OutputSerializer,
            patient_field="patient_id",
        )


class MessageResendApi(AuditedApi):
    """Give a dead message a fresh set of attempts (409 with its status otherwise)."""

    operation = Operation.MESSAGE_RESEND
    audit_action = Action.MESSAGE_RESEND

    OutputSerializer = MessageSerializer

    @extend_schema(
        operation_id="messages_resend",
        tags=["messages"],
        request=None,
        responses={200: MessageSerializer, **problems(403, 404, 409)},
    )
    def post(self, request: StaffRequest, message_id: int) -> Response:
        message = self.scoped(message_get_for_user(user=request.user, message_id=message_id))
        try:
            message_resend(message_id=message.pk)
        except Conflict as exc:
            raise Conflict(
                exc.message,
                extra={"current": {"message": message.pk, "status": message.status}},
            ) from exc
        data = self.OutputSerializer(
            message_get_for_user(user=request.user, message_id=message.pk)
        ).data
        return self.audited_response(data)
