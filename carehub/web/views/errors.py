"""The site's page for an address no URL matches (Django's `handler404` outside /api/, see
`config/urls.py`): the same "Not found" page as a record outside the user's scope."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def not_found_view(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    # The exception's text is not shown: it may name the URL patterns tried.
    return render(request, "web/not_found.html", status=404)
