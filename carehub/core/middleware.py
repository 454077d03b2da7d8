"""Responses are not stored by browsers or shared caches: pages and API answers carry patient
data, so every response says `Cache-Control: no-store` (Django's never-cache headers), except
static files (whitenoise sets their own caching) and the `/healthz` probe."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers

UNCACHED_EXEMPT = ("/healthz",)


def _static_prefix() -> str:
    path = urlsplit(settings.STATIC_URL or "").path
    return "/" + path.lstrip("/") if path else ""


class NoStoreMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.static_prefix = _static_prefix()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        path = request.path_info
        if path in UNCACHED_EXEMPT or (
            self.static_prefix not in ("", "/") and path.startswith(self.static_prefix)
        ):
            return response
        add_never_cache_headers(response)
        response.setdefault("Pragma", "no-cache")
        return response
