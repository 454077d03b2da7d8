"""Cursor pagination: stable pages while rows are added, no COUNT query.

`?page_size=` (1 to 100, default 50) and the opaque `?cursor=` of `next` / `previous`. Anything
else is a 400 naming the parameter: a page size that is not a whole number from 1 to 100, and
a cursor that is not one this list issued. Cursors are signed (with `SECRET_KEY`, salted with
the list's ordering), so a made-up or altered position never reaches a query.
"""

from __future__ import annotations

import re
from base64 import b64decode, b64encode
from collections.abc import Sequence
from typing import Any
from urllib import parse

from django.core import signing
from django.db.models import QuerySet
from drf_spectacular.utils import inline_serializer
from rest_framework import pagination, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView

from carehub.core.exceptions import InvalidInput

_PAGE_SIZE = re.compile(r"[0-9]{1,3}")
_ALTCHARS = b"-_"  # URL-safe base64: nothing to escape in a query string


class CursorPagination(pagination.CursorPagination):
    page_size = 50
    max_page_size = 100
    page_size_query_param = "page_size"
    ordering = "-id"

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not _PAGE_SIZE.fullmatch(raw) or not 1 <= int(raw) <= self.max_page_size:
            raise InvalidInput(
                f"page_size is a whole number from 1 to {self.max_page_size}.",
                extra={"field": self.page_size_query_param},
            )
        return int(raw)

    def _signer(self) -> signing.Signer:
        ordering = self.ordering if isinstance(self.ordering, str) else ",".join(self.ordering)
        return signing.Signer(salt=f"carehub.api.cursor:{ordering}")

    def encode_cursor(self, cursor: pagination.Cursor) -> str:
        tokens: dict[str, str] = {}
        if cursor.offset != 0:
            tokens["o"] = str(cursor.offset)
        if cursor.reverse:
            tokens["r"] = "1"
        if cursor.position is not None:
            tokens["p"] = str(cursor.position)
        signed = self._signer().sign(parse.urlencode(tokens, doseq=True))
        encoded = b64encode(signed.encode("ascii"), altchars=_ALTCHARS).decode("ascii")
        assert self.base_url is not None  # set by paginate_queryset
        return replace_query_param(self.base_url, self.cursor_query_param, encoded)

    def decode_cursor(self, request: Request) -> pagination.Cursor | None:
        """A cursor that is not one this list issued is invalid input (400)."""
        encoded = request.query_params.get(self.cursor_query_param)
        if encoded is None:
            return None
        try:
            signed = b64decode(encoded.encode("ascii"), altchars=_ALTCHARS, validate=True)
            tokens = parse.parse_qs(
                self._signer().unsign(signed.decode("ascii")), keep_blank_values=True
            )
            offset = pagination._positive_int(tokens.get("o", ["0"])[0], cutoff=self.offset_cutoff)
            reverse = bool(int(tokens.get("r", ["0"])[0]))
            position = tokens.get("p", [None])[0]
        except (ValueError, signing.BadSignature):
            raise InvalidInput(
                "Invalid cursor: use `next` or `previous` of a page.",
                extra={"field": self.cursor_query_param},
            ) from None
        # DRF keeps the position as the text of the ordering field (its stub says int).
        return pagination.Cursor(offset=offset, reverse=reverse, position=position)  # type: ignore[arg-type]


def paginated_response(
    *,
    request: Request,
    view: APIView,
    queryset: QuerySet[Any],
    serializer_class: type[serializers.Serializer],
    ordering: str | Sequence[str] = "-id",
) -> Response:
    paginator = CursorPagination()
    paginator.ordering = ordering  # type: ignore[assignment]  # DRF takes a field or several
    page = paginator.paginate_queryset(queryset, request, view=view)
    data = serializer_class(page, many=True, context={"request": request}).data
    return paginator.get_paginated_response(data)


def paginated(serializer_class: type[serializers.Serializer], name: str) -> serializers.Serializer:
    """The documented shape of a page of `serializer_class`."""
    return inline_serializer(
        name=name,
        fields={
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": serializer_class(many=True),
        },
    )
