"""The API's JSON parser (DRF's `DEFAULT_PARSER_CLASSES`): DRF's, behind two limits checked
before anything is parsed, so no body can exhaust memory or the interpreter's stack.

| Refused | Status | code |
|---|---|---|
| A body over `API_MAX_BODY_BYTES` (declared in `Content-Length`, or read) | 400 | `too_large` |
| Objects and arrays nested deeper than `API_JSON_MAX_DEPTH` | 400 | `too_deep` |
| Anything else that is not JSON (syntax, encoding, NaN, huge integers) | 400 | `parse_error` |

The size is checked against `Content-Length` before the body is read, and no more than the
limit (plus one byte) is ever read. (The parser is not a subclass of DRF's `JSONParser`, which
DRF hands the whole body read into memory first.) The depth is measured by one linear pass
over the brackets outside strings, without recursion, before `json.loads` sees the text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from itertools import accumulate
from typing import IO, Any

from django.conf import settings
from rest_framework import exceptions, parsers, renderers
from rest_framework.settings import api_settings
from rest_framework.utils import json

# A JSON string, escapes included; an unterminated one runs to the end of the text (so a match
# never fails and restarts: the pass stays linear whatever the input).
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class BodyTooLarge(exceptions.ParseError):
    default_detail = "The request body is too large."
    default_code = "too_large"


class JsonTooDeep(exceptions.ParseError):
    default_detail = "The JSON is nested too deeply."
    default_code = "too_deep"


def json_depth(text: str) -> int:
    """How deep objects and arrays nest in `text` (0 for a scalar). For valid JSON this is
    exact; for invalid JSON it is what the nesting up to the first error would be."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(0, max(accumulate(map(_STEP.__getitem__, brackets)), default=0))


def _declared_length(parser_context: Mapping[str, Any]) -> int | None:
    request = parser_context.get("request")
    if request is None:
        return None
    meta = request.META
    try:
        return int(meta.get("CONTENT_LENGTH") or meta.get("HTTP_CONTENT_LENGTH") or 0)
    except (TypeError, ValueError):
        return None


class JSONParser(parsers.BaseParser):
    """JSON with a body size limit (`API_MAX_BODY_BYTES`) and a depth limit
    (`API_JSON_MAX_DEPTH`); otherwise as DRF's `JSONParser` (strict: no NaN or Infinity)."""

    media_type = "application/json"
    renderer_class = renderers.JSONRenderer
    strict = api_settings.STRICT_JSON

    def parse(
        self,
        stream: IO[bytes],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        parser_context = parser_context or {}
        max_bytes: int = settings.API_MAX_BODY_BYTES
        max_depth: int = settings.API_JSON_MAX_DEPTH
        too_large = BodyTooLarge(f"The request body is larger than {max_bytes} bytes.")
        declared = _declared_length(parser_context)
        if declared is not None and declared > max_bytes:
            raise too_large
        raw = stream.read(max_bytes + 1)
        if len(raw) > max_bytes:
            raise too_large
        try:
            # DRF's own helper (the stub leaves it out): the request's charset, else the default.
            text = raw.decode(parsers.get_encoding(parser_context))  # type: ignore[attr-defined]
        except (LookupError, ValueError) as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None
        too_deep = JsonTooDeep(f"The JSON nests objects and arrays more than {max_depth} deep.")
        if json_depth(text) > max_depth:
            raise too_deep
        parse_constant = json.strict_constant if self.strict else None
        try:
            return json.loads(text, parse_constant=parse_constant)
        except RecursionError:  # only with a limit set above what the interpreter can nest
            raise too_deep from None
        except ValueError as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None
