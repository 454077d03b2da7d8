"""OpenAPI documentation helpers: the problem+json shapes and the error responses."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
)
from rest_framework import serializers

from carehub.api.exception_handler import PROBLEM_CONTENT_TYPE
from carehub.api.idempotency import (
    IDEMPOTENCY_PARAMETER,
    REPLAYED_HEADER,
    WRITE_METHODS,
    IdempotentWrites,
)
from carehub.api.pagination import paginated


class AutoSchema(SpectacularAutoSchema):
    """drf-spectacular's AutoSchema, naming nested serializers after their API class:
    `PatientListApi.OutputSerializer` becomes the component `PatientListOutput`.

    Every write of a view with `IdempotentWrites` is documented with the `Idempotency-Key`
    header it requires, its 400 (no key) and 409 (key reused or in progress) answers, and the
    200 a replay of a first 201 or 202 answers, with the `Idempotent-Replayed` header."""

    def get_serializer_name(self, serializer: serializers.Serializer, direction: Any) -> str:
        outer, _, inner = type(serializer).__qualname__.rpartition(".")
        if outer.endswith("Api"):
            return outer.removesuffix("Api") + inner
        return super().get_serializer_name(serializer, direction)

    def idempotent_write(self) -> bool:
        return isinstance(self.view, IdempotentWrites) and self.method.upper() in WRITE_METHODS

    def get_override_parameters(
        self,
    ) -> list[OpenApiParameter | serializers.Serializer[Any] | type[serializers.Serializer[Any]]]:
        parameters = list(super().get_override_parameters())
        if self.idempotent_write():
            parameters.insert(0, IDEMPOTENCY_PARAMETER)
        return parameters

    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        operation = super().get_operation(*args, **kwargs)
        if operation is None or not self.idempotent_write():
            return operation
        responses = operation["responses"]
        for status in ("400", "409"):
            if status not in responses:
                responses[status] = self._get_response_for_code(
                    OpenApiResponse(ProblemSerializer, description=_DESCRIPTIONS[int(status)]),
                    status,
                    media_types=[PROBLEM_CONTENT_TYPE],
                )
        first = "201" if "201" in responses else "202" if "202" in responses else None
        if first is not None and "200" not in responses:
            responses["200"] = {
                **copy.deepcopy(responses[first]),
                "description": "The first answer, given again to the same request",
            }
        if "200" in responses:
            responses["200"].setdefault("headers", {})[REPLAYED_HEADER] = {
                "schema": {"type": "string", "enum": ["true"]},
                "description": "Present when this is the first answer given again",
            }
        operation["responses"] = dict(sorted(responses.items()))
        return operation


PAGE_PARAMETERS = [
    OpenApiParameter("cursor", str, description="Opaque cursor from `next` / `previous`"),
    OpenApiParameter(
        "page_size",
        {"type": "integer", "minimum": 1, "maximum": 100},
        description="1 to 100 (default 50)",
    ),
]


class ProblemSerializer(serializers.Serializer):
    """RFC 9457 problem details."""

    type = serializers.CharField(help_text="urn:carehub:problem:<code>")
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    instance = serializers.CharField(allow_null=True)
    code = serializers.CharField(help_text="Stable machine-readable code")
    errors = serializers.DictField(  # type: ignore[assignment]  # a field named like a DRF attribute
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
    first_use = serializers.JSONField(
        required=False,
        help_text="The request that first used this Idempotency-Key: operation, target, at (409)",
    )


_DESCRIPTIONS = {
    400: "Invalid input (`errors` names the fields), or no valid `Idempotency-Key` on a write",
    401: "Not authenticated",
    403: "The role does not allow this",
    404: "Not found or outside the user's scope",
    409: "Conflict with the current state (`current`); on a write, also an `Idempotency-Key` "
    "already used for another request (`idempotency_key_reused`, `first_use`) or whose first "
    "request is still running (`idempotency_key_in_progress`)",
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


def read_schema(operation_id: str, tag: str, serializer: Any) -> Any:
    """The schema of a read of one thing within the user's scope: `serializer` (200), or a
    problem (401, 403, 404)."""
    return extend_schema(
        operation_id=operation_id, tags=[tag], responses={200: serializer, **problems(403, 404)}
    )


def page_schema(
    operation_id: str,
    tag: str,
    serializer_class: type[serializers.Serializer],
    page_name: str,
    *,
    filters: Sequence[OpenApiParameter] = (),
    errors: Sequence[int] = (400, 403),
) -> Any:
    """The schema of a GET of a page: its `filters` and the page parameters, a page of
    `serializer_class` named `page_name` (200), or a problem (401 and `errors`)."""
    return extend_schema(
        operation_id=operation_id,
        tags=[tag],
        parameters=[*filters, *PAGE_PARAMETERS],
        responses={200: paginated(serializer_class, page_name), **problems(*errors)},
    )


def view_serializer(
    view: type, name: str, base: type[serializers.Serializer], fields: dict[str, Any]
) -> type[serializers.Serializer]:
    """A serializer class made for the API class `view` from `base` and `fields`, named as if
    declared in it (`<view>.<name>`: its schema component is named after the view)."""
    namespace = {"__module__": view.__module__, "__qualname__": f"{view.__qualname__}.{name}"}
    return type(name, (base,), {**namespace, **fields})


def example(name: str, value: dict[str, Any]) -> OpenApiExample:
    """A request body example (shown in the docs; the contract tests send it first)."""
    return OpenApiExample(name, value=value, request_only=True)
