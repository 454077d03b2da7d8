"""Errors as `application/problem+json` (RFC 9457).

Every error answer has `type`, `title`, `status`, `detail`, `instance` and a stable `code`.
Validation errors add `errors: {field: [messages]}`; a conflict adds the `current` state of
the object; a clinical criterion that does not hold adds its `explanation`.

| Raised | Status | code |
|---|---|---|
| `carehub.core.exceptions.InvalidInput` | 400 | `invalid_input` (the field under `errors`) |
| DRF `ValidationError` / `ParseError` | 400 | `invalid_input` / `parse_error` |
| A body too large / too deep (`parsers.py`) | 400 | `too_large` / `too_deep` |
| DRF `NotAuthenticated`, `AuthenticationFailed` | 401 | `not_authenticated` etc. |
| `NotPermitted` and the role matrix; DRF `PermissionDenied` | 403 | `not_permitted` |
| `NotFound`, DRF `NotFound`, `Http404` | 404 | `not_found` |
| `Conflict` | 409 | `conflict` (+ `current`) |
| `CriteriaNotMet` | 422 | `criteria_not_met` (+ `explanation`) |
| `Gone` (a check-in already answered or closed) | 410 | `gone` |
| other DRF `APIException`s | their status | their default code |
| No URL matched / an unexpected error (`errors.py`) | 404 / 500 | `not_found` / `server_error` |

No problem echoes more than an excerpt of the input: `detail`, `instance`, every message and
every field name under `errors` are cut to `EXCERPT_LENGTH` characters (ending in "…").
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response

from carehub.core.exceptions import (
    ApplicationError,
    Conflict,
    CriteriaNotMet,
    InvalidInput,
    NotFound,
    NotPermitted,
)

PROBLEM_CONTENT_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:carehub:problem:"
NON_FIELD = "non_field_errors"

_APPLICATION_STATUS: list[tuple[type[ApplicationError], int]] = [
    (NotFound, 404),
    (NotPermitted, 403),
    (Conflict, 409),
    (InvalidInput, 400),
    (CriteriaNotMet, 422),
]
# Keys of `ApplicationError.extra` that are not copied into the problem as they are.
_CONSUMED_EXTRA = {"field", "fields"}
_RESERVED = {"type", "title", "status", "detail", "instance", "code", "errors"}
# The longest text a problem carries in `detail`, `instance` and `errors`, ellipsis included.
EXCERPT_LENGTH = 200
ELLIPSIS = "…"


def excerpt(text: str, limit: int = EXCERPT_LENGTH) -> str:
    """`text` as it is when short, else its first characters and an ellipsis (`limit` in
    all): an error message may quote the input, but never more than this of it."""
    return text if len(text) <= limit else text[: limit - len(ELLIPSIS)] + ELLIPSIS


def _excerpts(errors: dict[str, list[str]]) -> dict[str, list[str]]:
    """Field names and messages as excerpts (names cut alike are merged)."""
    result: dict[str, list[str]] = {}
    for name, messages in errors.items():
        result.setdefault(excerpt(name), []).extend(excerpt(m) for m in messages)
    return result


class Gone(exceptions.APIException):
    """The object existed but can no longer be acted on (410), e.g. an answered check-in."""

    status_code = 410
    default_detail = "This is no longer available."
    default_code = "gone"


def problem(
    *,
    status: int,
    code: str,
    detail: str,
    instance: str | None = None,
    title: str | None = None,
    **members: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"{TYPE_PREFIX}{code}",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": excerpt(detail),
        "instance": None if instance is None else excerpt(instance),
        "code": code,
    }
    body.update({k: v for k, v in members.items() if k not in _RESERVED})
    return body


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as `{"field": [...], "tracks.0.state": [...]}`."""
    if isinstance(detail, dict):
        result: dict[str, list[str]] = {}
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            result.update(_flatten(value, name))
        return result
    if isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            return {prefix or NON_FIELD: [str(item) for item in detail]}
        result = {}
        for index, item in enumerate(detail):
            result.update(_flatten(item, f"{prefix}.{index}" if prefix else str(index)))
        return result
    return {prefix or NON_FIELD: [str(detail)]}


def _application_problem(exc: ApplicationError, instance: str | None) -> dict[str, Any]:
    status = next((s for cls, s in _APPLICATION_STATUS if isinstance(exc, cls)), 400)
    members: dict[str, Any] = {k: v for k, v in exc.extra.items() if k not in _CONSUMED_EXTRA}
    if isinstance(exc, InvalidInput):
        fields = exc.extra.get("fields")
        if isinstance(fields, dict) and fields:
            # Services that check several inputs name each one: {"relief_pct": ["..."]}.
            members["errors"] = _excerpts(
                {
                    str(name): [str(m) for m in messages]
                    if isinstance(messages, list)
                    else [str(messages)]
                    for name, messages in fields.items()
                }
            )
        else:
            members["errors"] = _excerpts({str(exc.extra.get("field") or NON_FIELD): [exc.message]})
    body = problem(status=status, code=exc.code, detail=exc.message, instance=instance, **members)
    if "errors" in members:
        body["errors"] = members["errors"]
    return body


def _drf_problem(exc: exceptions.APIException, instance: str | None) -> dict[str, Any]:
    status = exc.status_code
    if isinstance(exc, exceptions.ValidationError):
        return {
            **problem(
                status=status,
                code="invalid_input",
                detail="The request is not valid; see `errors`.",
                instance=instance,
            ),
            "errors": _excerpts(_flatten(exc.detail)),
        }
    detail = exc.detail
    code = exc.default_code
    if isinstance(detail, exceptions.ErrorDetail):
        code = detail.code or code
    if isinstance(exc, exceptions.PermissionDenied):
        code = NotPermitted.code  # one code for every "your role may not" answer
    text = str(detail) if not isinstance(detail, dict | list) else str(exc.default_detail)
    return problem(status=status, code=str(code), detail=text, instance=instance)


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's EXCEPTION_HANDLER: application and DRF errors as problem+json; anything else
    is left to Django (a 500, logged)."""
    request = context.get("request")
    instance = request.get_full_path() if request is not None else None
    headers: dict[str, str] = {}

    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    if isinstance(exc, ApplicationError):
        body = _application_problem(exc, instance)
    elif isinstance(exc, exceptions.APIException):
        body = _drf_problem(exc, instance)
        auth_header = getattr(exc, "auth_header", None)
        if auth_header:
            headers["WWW-Authenticate"] = auth_header
        wait = getattr(exc, "wait", None)
        if wait:
            headers["Retry-After"] = str(int(wait))
    else:
        return None

    return Response(body, status=body["status"], headers=headers, content_type=PROBLEM_CONTENT_TYPE)
