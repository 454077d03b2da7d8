"""carehub's URLs and error handlers plus views that fail outside DRF's handling, under /api/
and outside it: what an unforeseen bug looks like to a client (tests/api/test_request_limits.py).
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.urls import handler400, handler403, handler404, handler500, urlpatterns

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]


class UnexpectedError(RuntimeError):
    pass


class FailingApi(APIView):
    permission_classes: list[type] = []

    def get(self, request: Request) -> Response:
        raise UnexpectedError("secret internals: password=hunter2")


def failing_page(request: HttpRequest) -> HttpResponse:
    raise UnexpectedError("secret internals: password=hunter2")


def forbidden_plain_view(request: HttpRequest) -> HttpResponse:
    raise PermissionDenied("secret internals: password=hunter2")


urlpatterns = [
    path("api/v1/test-failure", FailingApi.as_view()),
    path("api/v1/test-forbidden", forbidden_plain_view),
    path("test-forbidden", forbidden_plain_view),
    path("test-failure", failing_page),
    *urlpatterns,
]
