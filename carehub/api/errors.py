"""Django's error views (`handler400`, `handler403`, `handler404`, `handler500` in
`config/urls.py`) for what never reaches DRF's exception handler: a path no URL matches, and
an error DRF does not handle (a bug: Django logs it with its traceback as always). Under /api/
they answer a problem (`application/problem+json`, as every other API error) without any
detail of the failure; elsewhere the site's HTML view given.

With `DJANGO_DEBUG` on, Django answers its debug pages without calling these views;
`ApiProblemMiddleware` turns such an answer under /api/ into the same problem, so an API client
never gets an HTML page or a traceback, in the demo either.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from carehub.api.exception_handler import PROBLEM_CONTENT_TYPE, problem

API_PREFIX = "/api/"

# status: (code, detail)
_PROBLEMS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "The request could not be understood."),
    403: ("not_permitted", "You may not do this."),
    404: ("not_found", "There is nothing at this address."),
    500: (
        "server_error",
        "Something went wrong on our side and it has been logged. If it happens again, "
        "report it with the X-Request-ID of the response.",
    ),
}

ErrorView = Callable[..., HttpResponse]


def problem_response(request: HttpRequest, status: int) -> HttpResponse:
    code, detail = _PROBLEMS[status]
    body = problem(status=status, code=code, detail=detail, instance=request.get_full_path())
    return HttpResponse(json.dumps(body), status=status, content_type=PROBLEM_CONTENT_TYPE)


def problem_under_api(status: int, html_view: ErrorView) -> ErrorView:
    """Django's error view for `status`: a problem under /api/, `html_view` elsewhere."""
    if status not in _PROBLEMS:
        raise ValueError(f"No problem is defined for HTTP {status}.")

    def error_view(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
        if request.path.startswith(API_PREFIX):
            return problem_response(request, status)
        if status == 500:
            return html_view(request)
        return html_view(request, exception)

    error_view.__name__ = error_view.__qualname__ = f"error_{status}"
    return error_view


class ApiProblemMiddleware:
    """Under /api/, an error answer that is not already a problem (Django's debug pages for an
    unknown path or an unhandled error) is replaced by the problem for its status."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            request.path.startswith(API_PREFIX)
            and response.status_code in _PROBLEMS
            and not response.get("Content-Type", "").startswith(PROBLEM_CONTENT_TYPE)
        ):
            return problem_response(request, response.status_code)
        return response
