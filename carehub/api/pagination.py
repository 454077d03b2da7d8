"""Cursor pagination: stable pages while rows are added, no COUNT query.

`?page_size=` (at most 100, default 50) and the opaque `?cursor=` of `next` / `previous`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import inline_serializer
from rest_framework import pagination, serializers
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from carehub.core.exceptions import InvalidInput


class CursorPagination(pagination.CursorPagination):
    page_size = 50
    max_page_size = 100
    page_size_query_param = "page_size"
    ordering = "-id"

    def decode_cursor(self, request: Request) -> Any:
        """A cursor that is not one of ours is invalid input (400), not a missing page."""
        try:
            return super().decode_cursor(request)
        except NotFound:
            raise InvalidInput(
                "Invalid cursor: use `next` or `previous` of a page.", extra={"field": "cursor"}
            ) from None


def paginated_response(
    *,
    request: Request,
    view: APIView,
    queryset: QuerySet[Any],
    serializer_class: type[serializers.Serializer],
    ordering: str | Sequence[str] = "-id",
) -> Response:
    paginator = CursorPagination()
    paginator.ordering = ordering
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
