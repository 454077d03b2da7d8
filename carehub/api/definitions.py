"""Published pathway definitions: what a pathway is, not where any patient is on it.

No patient data, so nothing here is audited; any member of staff with a clinic role may read
them. The diagram answers Mermaid text as `text/plain` when the client asks for it (`Accept:
text/plain`), JSON `{"mermaid": ...}` otherwise.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response

from carehub.api.permissions import StaffApi
from carehub.api.requests import StaffRequest
from carehub.api.schema import problems, read_schema
from carehub.care_access import Operation
from carehub.core.exceptions import NotFound
from carehub.pathways.registry import definition_get, registry
from workflows import PathwayDefinition, UnknownPathway, mermaid


def _definition(key: str, version: int) -> PathwayDefinition:
    try:
        return definition_get(key, version)
    except UnknownPathway:
        raise NotFound("No such pathway.") from None


def _identity(definition: PathwayDefinition) -> dict[str, Any]:
    """The fields that name a definition, first in both its summary and its detail."""
    return {"key": definition.key, "version": definition.version, "title": definition.title}


def _tracks(definition: PathwayDefinition) -> list[dict[str, Any]]:
    return [
        {"track": name, "title": track.title or name} for name, track in definition.tracks.items()
    ]


# The fields `_identity` gives. (A comment, not a docstring: drf-spectacular would describe
# both components with it.)
class _PathwayIdentitySerializer(serializers.Serializer):
    key = serializers.CharField()
    version = serializers.IntegerField()
    title = serializers.CharField()


class _TrackSummarySerializer(serializers.Serializer):
    track = serializers.CharField()
    title = serializers.CharField()


class PathwayListApi(StaffApi):
    operation = Operation.PATHWAY_VIEW

    class OutputSerializer(_PathwayIdentitySerializer):
        tracks = _TrackSummarySerializer(many=True)

    @extend_schema(
        operation_id="pathways_list",
        tags=["pathways"],
        responses={200: OutputSerializer(many=True), **problems(403)},
    )
    def get(self, request: StaffRequest) -> Response:
        rows = [
            {**_identity(definition), "tracks": _tracks(definition)} for definition in registry()
        ]
        return Response(self.OutputSerializer(rows, many=True).data)


class PathwayStateSerializer(serializers.Serializer):
    state = serializers.CharField()
    title = serializers.CharField()
    stage = serializers.CharField(allow_null=True)
    final = serializers.BooleanField()
    invasive = serializers.BooleanField()


class PathwayTrackSerializer(serializers.Serializer):
    track = serializers.CharField()
    title = serializers.CharField()
    initial = serializers.CharField()
    stages = serializers.ListField(child=serializers.CharField())
    states = PathwayStateSerializer(many=True)


class PathwayEventSerializer(serializers.Serializer):
    event = serializers.CharField()
    description = serializers.CharField()


class PathwayThresholdSerializer(serializers.Serializer):
    name = serializers.CharField()
    default = serializers.JSONField(help_text="Number, boolean or text")
    unit = serializers.CharField()
    source = serializers.CharField(help_text="Where the value comes from")  # type: ignore[assignment]  # a field named like a DRF attribute
    description = serializers.CharField()


class PathwayDetailApi(StaffApi):
    operation = Operation.PATHWAY_VIEW

    class OutputSerializer(_PathwayIdentitySerializer):
        description = serializers.CharField()
        roles = serializers.ListField(child=serializers.CharField())
        tracks = PathwayTrackSerializer(many=True)
        events = PathwayEventSerializer(many=True, help_text="Events a person may send")
        thresholds = PathwayThresholdSerializer(many=True)

    @read_schema("pathways_retrieve", "pathways", OutputSerializer)
    def get(self, request: StaffRequest, key: str, version: int) -> Response:
        definition = _definition(key, version)
        internal = definition.internal_events
        body = {
            **_identity(definition),
            "description": definition.description,
            "roles": definition.roles,
            "tracks": [
                {
                    "track": name,
                    "title": track.title or name,
                    "initial": track.initial,
                    "stages": track.stages,
                    "states": [
                        {
                            "state": state_name,
                            "title": state.title or state_name,
                            "stage": state.stage,
                            "final": state.final,
                            "invasive": state.invasive,
                        }
                        for state_name, state in track.states.items()
                    ],
                }
                for name, track in definition.tracks.items()
            ],
            "events": [
                {"event": name, "description": event.description}
                for name, event in definition.events.items()
                if name not in internal
            ],
            "thresholds": [
                {
                    "name": name,
                    "default": threshold.default,
                    "unit": threshold.unit,
                    "source": threshold.source,
                    "description": threshold.description,
                }
                for name, threshold in definition.thresholds.items()
            ],
        }
        return Response(self.OutputSerializer(body).data)


class MermaidTextRenderer(BaseRenderer):
    media_type = "text/plain"
    format = "txt"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: Any = None, renderer_context: Any = None):
        if isinstance(data, str):
            return data.encode(self.charset)
        # A problem (404, 403) keeps its JSON body whatever the client accepted.
        return JSONRenderer().render(data, accepted_media_type, renderer_context)


class PathwayDiagramApi(StaffApi):
    operation = Operation.PATHWAY_VIEW
    renderer_classes = [JSONRenderer, MermaidTextRenderer]

    class OutputSerializer(serializers.Serializer):
        mermaid = serializers.CharField(help_text="Mermaid `stateDiagram-v2` text")

    @extend_schema(
        operation_id="pathways_diagram",
        tags=["pathways"],
        responses={
            (200, "application/json"): OutputSerializer,
            (200, "text/plain"): OpenApiResponse(str, description="Mermaid text"),
            **problems(403, 404),
        },
    )
    def get(self, request: StaffRequest, key: str, version: int) -> Response:
        text = mermaid(_definition(key, version))
        if isinstance(request.accepted_renderer, MermaidTextRenderer):
            return Response(text)
        return Response(self.OutputSerializer({"mermaid": text}).data)
