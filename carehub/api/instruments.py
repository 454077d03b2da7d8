"""The instrument library: questionnaires and scores as published (`carehub/instruments`).

No patient data, so nothing here is audited; every role may read it (a patient needs the items
to answer a check-in). Only what the library ships is shown: a licensed instrument (ODI, BPI)
carries no items, instructions or option labels there, so none appear here either.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from carehub.api.permissions import StaffApi
from carehub.api.requests import StaffRequest, validated
from carehub.api.schema import problems, read_schema
from carehub.care_access import Operation
from carehub.core.exceptions import NotFound
from carehub.instruments.definition import InstrumentDefinition
from carehub.instruments.loader import UnknownInstrument
from carehub.instruments.registry import instrument_get, instruments

LICENCES = ["free", "licensed"]


def _definition(key: str, version: int) -> InstrumentDefinition:
    try:
        return instrument_get(key, version)
    except UnknownInstrument:
        raise NotFound("No such instrument.") from None


def _days(value: Any) -> float | None:
    return value.total_seconds() / 86400 if value is not None else None


def _summary(d: InstrumentDefinition) -> dict[str, Any]:
    return {
        "key": d.key,
        "version": d.version,
        "title": d.title,
        "description": d.description,
        "licence": d.licence,
        "administration": d.administration,
        "direction": d.direction,
        "recall": d.recall.text,
    }


def _detail(d: InstrumentDefinition) -> dict[str, Any]:
    return {
        **_summary(d),
        "citation": d.citation,
        "notice": d.notice or "",
        "instructions": d.instructions or "",
        "recall_days": _days(d.recall.period),
        "min_interval_days": _days(d.min_interval),
        "items": [
            {
                "key": item.key,
                "text": item.text,
                "type": item.type,
                "scored": item.scored,
                "optional": item.optional,
                "options": [{"value": o.value, "label": o.label} for o in item.options],
                "minimum": item.minimum,
                "maximum": item.maximum,
                "whole_numbers": item.whole_numbers,
                "low_label": item.low_label or "",
                "high_label": item.high_label or "",
                "unit": item.unit or "",
                "max_length": item.max_length,
                "loinc": item.loinc or "",
            }
            for item in d.items
        ],
        "scoring": {
            "rule": d.scoring.rule,
            "minimum": d.scoring.minimum,
            "maximum": d.scoring.maximum,
            "decimals": d.scoring.decimals,
            "max_missing": d.scoring.missing.max_missing if d.scoring.missing else 0,
            "missing_source": d.scoring.missing.source if d.scoring.missing else "",
        },
        "bands": (
            {
                "source": d.bands.source,
                "levels": [
                    {"label": level.label, "at_least": level.at_least, "above": level.above}
                    for level in d.bands.levels
                ],
            }
            if d.bands
            else None
        ),
        "mcid": (
            {
                "points": d.mcid.points,
                "percent": d.mcid.percent,
                "at_most": d.mcid.at_most,
                "source": d.mcid.source,
            }
            if d.mcid
            else None
        ),
        "loinc": {"panel": d.loinc.panel or "", "total": d.loinc.total or ""},
        "red_flags": [
            {"code": rule.code, "item": rule.item, "urgency": rule.urgency} for rule in d.red_flags
        ],
    }


class InstrumentSummarySerializer(serializers.Serializer):
    key = serializers.CharField()
    version = serializers.IntegerField()
    title = serializers.CharField()
    description = serializers.CharField()
    licence = serializers.ChoiceField(choices=LICENCES)
    administration = serializers.ChoiceField(
        choices=["patient", "staff"], help_text="Who answers: the patient, or staff enter a score"
    )
    direction = serializers.ChoiceField(
        choices=["lower_is_better", "higher_is_better", "categorical"]
    )
    recall = serializers.CharField(help_text="The period the questions ask about")


class InstrumentOptionSerializer(serializers.Serializer):
    value = serializers.IntegerField()
    label = serializers.CharField()  # type: ignore[assignment]  # a field named like a DRF attribute


class InstrumentItemSerializer(serializers.Serializer):
    key = serializers.CharField()
    text = serializers.CharField()
    type = serializers.ChoiceField(choices=["scale", "choice", "yes_no", "number", "text"])
    scored = serializers.BooleanField()
    optional = serializers.BooleanField()
    options = InstrumentOptionSerializer(many=True)
    minimum = serializers.FloatField(allow_null=True)
    maximum = serializers.FloatField(allow_null=True)
    whole_numbers = serializers.BooleanField()
    low_label = serializers.CharField(allow_blank=True)
    high_label = serializers.CharField(allow_blank=True)
    unit = serializers.CharField(allow_blank=True)
    max_length = serializers.IntegerField(allow_null=True)
    loinc = serializers.CharField(allow_blank=True)


class InstrumentScoringSerializer(serializers.Serializer):
    rule = serializers.CharField()
    minimum = serializers.FloatField(allow_null=True)
    maximum = serializers.FloatField(allow_null=True)
    decimals = serializers.IntegerField()
    max_missing = serializers.IntegerField(help_text="Required items that may be unanswered")
    missing_source = serializers.CharField(allow_blank=True)


class InstrumentBandLevelSerializer(serializers.Serializer):
    label = serializers.CharField()  # type: ignore[assignment]  # a field named like a DRF attribute
    at_least = serializers.FloatField(allow_null=True)
    above = serializers.FloatField(allow_null=True)


class InstrumentBandsSerializer(serializers.Serializer):
    source = serializers.CharField()  # type: ignore[assignment]  # a field named like a DRF attribute
    levels = InstrumentBandLevelSerializer(many=True)


class InstrumentMcidSerializer(serializers.Serializer):
    points = serializers.FloatField(allow_null=True)
    percent = serializers.FloatField(allow_null=True)
    at_most = serializers.IntegerField(allow_null=True)
    source = serializers.CharField()  # type: ignore[assignment]  # a field named like a DRF attribute


class InstrumentLoincSerializer(serializers.Serializer):
    panel = serializers.CharField(allow_blank=True)
    total = serializers.CharField(allow_blank=True)


class InstrumentRedFlagSerializer(serializers.Serializer):
    code = serializers.CharField()
    item = serializers.CharField(allow_null=True, help_text="None: the total score")
    urgency = serializers.CharField()


class InstrumentListApi(StaffApi):
    operation = Operation.INSTRUMENT_VIEW

    class FilterSerializer(serializers.Serializer):
        latest = serializers.BooleanField(required=False, default=False)

    OutputSerializer = InstrumentSummarySerializer

    @extend_schema(
        operation_id="instruments_list",
        tags=["instruments"],
        parameters=[
            OpenApiParameter("latest", bool, description="Only the latest version of each")
        ],
        responses={200: InstrumentSummarySerializer(many=True), **problems(400, 403)},
    )
    def get(self, request: StaffRequest) -> Response:
        filters = validated(self.FilterSerializer, request.query_params)
        rows = [_summary(d) for d in instruments(latest_only=filters.validated_data["latest"])]
        return Response(self.OutputSerializer(rows, many=True).data)


class InstrumentDetailApi(StaffApi):
    """One published version: items with their options, scoring, bands, MCID, LOINC codes."""

    operation = Operation.INSTRUMENT_VIEW

    class OutputSerializer(InstrumentSummarySerializer):
        citation = serializers.CharField()
        notice = serializers.CharField(allow_blank=True)
        instructions = serializers.CharField(allow_blank=True)
        recall_days = serializers.FloatField(allow_null=True)
        min_interval_days = serializers.FloatField(allow_null=True)
        items = InstrumentItemSerializer(many=True)
        scoring = InstrumentScoringSerializer()
        bands = InstrumentBandsSerializer(allow_null=True)
        mcid = InstrumentMcidSerializer(allow_null=True)
        loinc = InstrumentLoincSerializer()
        red_flags = InstrumentRedFlagSerializer(many=True)

    @read_schema("instruments_retrieve", "instruments", OutputSerializer)
    def get(self, request: StaffRequest, key: str, version: int) -> Response:
        return Response(self.OutputSerializer(_detail(_definition(key, version))).data)
