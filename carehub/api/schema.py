"""OpenAPI documentation helpers: the problem+json shapes and the error responses."""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import OpenApiExample, OpenApiResponse
from rest_framework import serializers

from carehub.api.exception_handler import PROBLEM_CONTENT_TYPE


class AutoSchema(SpectacularAutoSchema):
    """drf-spectacular's AutoSchema, naming nested serializers after their API class:
    `PatientListApi.OutputSerializer` becomes the component `PatientListOutput`."""

    def get_serializer_name(self, serializer: serializers.Serializer, direction: Any) -> str:
        outer, _, inner = type(serializer).__qualname__.rpartition(".")
        if outer.endswith("Api"):
            return outer.removesuffix("Api") + inner
        return super().get_serializer_name(serializer, direction)


class ProblemSerializer(serializers.Serializer):
    """RFC 9457 problem details."""

    type = serializers.CharField(help_text="urn:carehub:problem:<code>")
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    instance = serializers.CharField(allow_null=True)
    code = serializers.CharField(help_text="Stable machine-readable code")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Validation errors per field (400)",
    )
    current = serializers.JSONField(
        required=False, help_text="The object's current state (409 conflicts)"
    )
    explanation = serializers.JSONField(
        required=False, help_text="Which criteria were evaluated and the values read (422)"
    )
    retry_after = serializers.IntegerField(
        required=False, allow_null=True, help_text="Seconds until a lockout ends (429)"
    )


_DESCRIPTIONS = {
    400: "Invalid input (`errors` names the fields)",
    401: "Not authenticated",
    403: "The role does not allow this",
    404: "Not found or outside the user's scope",
    409: "Conflict with the current state (`current`)",
    410: "No longer available (e.g. a check-in already answered or closed)",
    422: "The clinical criteria do not hold (`explanation`)",
    429: "Too many requests",
}


def problems(*statuses: int) -> dict[Any, OpenApiResponse]:
    """Error responses as problem+json; 401 is always included."""
    codes = sorted({401, *statuses})
    return {
        (code, PROBLEM_CONTENT_TYPE): OpenApiResponse(
            ProblemSerializer, description=_DESCRIPTIONS.get(code, "Error")
        )
        for code in codes
    }


def example(name: str, value: dict[str, Any]) -> OpenApiExample:
    """A request body example (shown in the docs; the contract tests send it first)."""
    return OpenApiExample(name, value=value, request_only=True)
