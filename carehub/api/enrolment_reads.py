"""What a pathway reads and waits for, for a clinic's systems to show or act on.

- `GET /enrolments/{public_id}/facts`: the derived facts the enrolment's guards read now
  (`peg.improvement_pct`, `peg.responder`, `mme.daily`, `pain.months`, ...), computed exactly
  as a dispatch computes them, each with its type and meaning, and the thresholds they are
  compared with (value and source). A fact with no data behind it is null.
- `GET /enrolments/{public_id}/timers`: the timers still to fire (pending, or suspended while
  the pathway is paused), soonest first: at most one per timer of the definition, so not paged.
- `GET /enrolments/{public_id}/next-due`: what comes next, soonest first: pending timers,
  check-ins scheduled or open (an open one at its `closes_at`), open tasks (undated last).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_view
from rest_framework import serializers
from rest_framework.response import Response

from carehub.api.patients import AuditedApi
from carehub.api.requests import StaffRequest
from carehub.api.schema import read_schema, view_serializer
from carehub.audit.models import Action
from carehub.care_access import Operation
from carehub.core import clock
from carehub.pathways.models import Enrolment
from carehub.pathways.selectors import (
    enrolment_facts,
    enrolment_next_due,
    enrolment_timers_pending,
)


class _FactSerializer(serializers.Serializer):
    name = serializers.CharField()
    value = serializers.JSONField(allow_null=True, help_text="Number, boolean, text or null")
    type = serializers.ChoiceField(choices=["number", "boolean", "string"])
    description = serializers.CharField()


class _ThresholdSerializer(serializers.Serializer):
    name = serializers.CharField()
    value = serializers.JSONField(help_text="What guards compare the facts with")
    source = serializers.CharField(help_text="Where the value comes from")  # type: ignore[assignment]  # a field named like a DRF attribute
    set_by_clinic = serializers.BooleanField(help_text="False: the definition's default")


class EnrolmentFactsApi(AuditedApi):
    operation = Operation.ENROLMENT_FACTS_VIEW
    audit_action = Action.ENROLMENT_FACTS

    class OutputSerializer(serializers.Serializer):
        enrolment = serializers.UUIDField()
        as_of = serializers.DateTimeField()
        facts = _FactSerializer(many=True)
        thresholds = _ThresholdSerializer(many=True)
        not_computed = serializers.DictField(
            child=serializers.CharField(), help_text="Catalogue facts carehub cannot compute, why"
        )

    @read_schema("enrolments_facts", "enrolments", OutputSerializer)
    def get(self, request: StaffRequest, public_id: str) -> Response:
        enrolment = self.scoped_enrolment(public_id)
        facts = enrolment_facts(enrolment=enrolment, now=clock.now())
        data = self.OutputSerializer(
            {
                "enrolment": enrolment.public_id,
                "as_of": facts.as_of,
                "facts": facts.facts,
                "thresholds": facts.thresholds,
                "not_computed": facts.not_computed,
            }
        ).data
        return self.audited_response(data)


class TimerSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    key = serializers.CharField(help_text="<track>.<timer name>")
    track = serializers.CharField()
    state = serializers.CharField(help_text="The state that started it (leaving it cancels it)")
    event = serializers.CharField(help_text="The event it raises when it fires")
    due_at = serializers.DateTimeField()
    status = serializers.ChoiceField(
        choices=["pending", "suspended"], help_text="suspended: the pathway is paused"
    )
    attempts = serializers.IntegerField(help_text="Failed attempts to fire it so far")


# What an enrolment waits for, not paged: `{"enrolment": <public id>, <items_key>: [...]}`,
# audited with how many it lists. A subclass names its `items_key`, the `item_serializer` of
# each, its `operation_id` and how it finds the `items`; its OutputSerializer is made from them.
# (No docstring: the schema describes a view without its own docstring by its nearest base's.)
class _EnrolmentScheduleApi(AuditedApi):
    operation = Operation.ENROLMENT_SCHEDULE_VIEW
    items_key = ""
    item_serializer: type[serializers.Serializer]
    operation_id = ""
    OutputSerializer: type[serializers.Serializer]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.OutputSerializer = view_serializer(
            cls,
            "OutputSerializer",
            serializers.Serializer,
            {"enrolment": serializers.UUIDField(), cls.items_key: cls.item_serializer(many=True)},
        )
        extend_schema_view(get=read_schema(cls.operation_id, "enrolments", cls.OutputSerializer))(
            cls
        )

    def items(self, enrolment: Enrolment) -> list[Any]:
        raise NotImplementedError

    def get(self, request: StaffRequest, public_id: str) -> Response:
        enrolment = self.scoped_enrolment(public_id)
        items = self.items(enrolment)
        data = self.OutputSerializer({"enrolment": enrolment.public_id, self.items_key: items}).data
        self.audit(detail={"listed": len(items)})
        return Response(data)


class EnrolmentTimersApi(_EnrolmentScheduleApi):
    audit_action = Action.ENROLMENT_TIMERS
    items_key = "timers"
    item_serializer = TimerSerializer
    operation_id = "enrolments_timers"

    def items(self, enrolment: Enrolment) -> list[Any]:
        return list(enrolment_timers_pending(enrolment=enrolment))


class _NextDueSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["timer", "checkin", "task"])
    at = serializers.DateTimeField(
        allow_null=True, help_text="When it is due (an open check-in: when it closes)"
    )
    id = serializers.IntegerField(help_text="The timer's, check-in's or task's id")
    title = serializers.CharField(help_text="The timer's event, the instrument, the task title")
    status = serializers.CharField()
    track = serializers.CharField(allow_blank=True)
    detail = serializers.DictField(child=serializers.JSONField())


class EnrolmentNextDueApi(_EnrolmentScheduleApi):
    audit_action = Action.ENROLMENT_NEXT_DUE
    items_key = "items"
    item_serializer = _NextDueSerializer
    operation_id = "enrolments_next_due"

    def items(self, enrolment: Enrolment) -> list[Any]:
        return enrolment_next_due(enrolment=enrolment)
