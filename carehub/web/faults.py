"""Friendly answers when carehub itself fails (ADR 0016).

- The database is unavailable or read-only (down, restarting, failing over, in maintenance):
  every door answers 503 with `Retry-After`, whatever the view was doing: problem+json
  (`service_unavailable`) under /api/, a plain page saying so for staff, and for patients (the
  check-in link `/c/...` and the portal `/me/...`) a page saying that their link still works.
  The check-in form itself does better: it comes back with the patient's answers filled in
  (`carehub.checkins.answering`).
- Any other failure on a patient page answers the patient's 500 page, never Django's debug page
  (which would show the traceback, the settings and the link token), also with DJANGO_DEBUG on.

The failure is logged with its traceback. These pages read nothing from the database.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import translation

from carehub.api.errors import API_PREFIX
from carehub.api.exception_handler import PROBLEM_CONTENT_TYPE, problem
from carehub.core.retry import is_transient_database_error

logger = logging.getLogger("carehub.faults")

RETRY_AFTER_SECONDS = 30
PATIENT_PREFIXES = ("/c/", "/me/")


def is_patient_page(request: HttpRequest) -> bool:
    return request.path.startswith(PATIENT_PREFIXES)


def fault_response(request: HttpRequest, status: int) -> HttpResponse:
    """The 503 (database unavailable) or 500 answer for this door."""
    if request.path.startswith(API_PREFIX):
        if status == 503:
            body = problem(
                status=503,
                code="service_unavailable",
                detail="The service is unavailable for a moment and nothing was recorded. "
                "Send the request again, with the same Idempotency-Key, after Retry-After "
                "seconds.",
                instance=request.get_full_path(),
            )
        else:
            body = problem(
                status=500,
                code="server_error",
                detail="Something went wrong on our side and it has been logged. If it happens "
                "again, report it with the X-Request-ID of the response.",
                instance=request.get_full_path(),
            )
        response = HttpResponse(json.dumps(body), status=status, content_type=PROBLEM_CONTENT_TYPE)
    elif is_patient_page(request):
        # The patient's record may be out of reach: the page speaks the browser's language.
        with translation.override(translation.get_language_from_request(request)):
            response = render(
                request, "checkins/unavailable.html", {"status": status}, status=status
            )
        response["Referrer-Policy"] = "strict-origin"
    else:
        response = render(request, "web/unavailable.html", {"status": status}, status=status)
    if status == 503:
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


class FaultPagesMiddleware:
    """Turns a database outage into a 503 at every door, and any failure of a patient page into
    the patient's 500 page (before Django's debug page can answer)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if is_transient_database_error(exception):
            logger.error("database unavailable: answered 503", exc_info=exception)
            return fault_response(request, 503)
        if is_patient_page(request):
            logger.error("patient page failed: answered 500", exc_info=exception)
            return fault_response(request, 500)
        return None


def server_error_view(request: HttpRequest) -> HttpResponse:
    """`handler500` outside /api/: the patient's or the staff page, never a traceback."""
    return fault_response(request, 500)
