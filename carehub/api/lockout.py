"""django-axes' lockout answer (`AXES_LOCKOUT_CALLABLE`): a (username, IP address) pair locked
after too many failed logins is refused with HTTP 429 and `Retry-After` (the cool-off in
seconds). Under `/api/` the body is a problem (`application/problem+json`, code `locked_out`);
elsewhere (the web UI's and the admin's login pages) it is the page `AXES_LOCKOUT_TEMPLATE`
(axes' plain message without one)."""

from __future__ import annotations

import json
from typing import Any

from axes.helpers import get_cool_off, get_lockout_message
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from carehub.api.exception_handler import PROBLEM_CONTENT_TYPE, problem

API_PREFIX = "/api/"
LOCKED_OUT = "locked_out"


def lockout_response(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict[str, Any] | None = None,
) -> HttpResponse:
    status: int = settings.AXES_HTTP_RESPONSE_CODE  # type: ignore[misc]  # set by django-axes
    cool_off = get_cool_off(request)
    retry_after = max(int(cool_off.total_seconds()), 1) if cool_off else None
    if request.path.startswith(API_PREFIX):
        body = problem(
            status=status,
            code=LOCKED_OUT,
            title="Too many failed logins",
            detail="Too many failed logins for this username, or from this address: "
            + ("try again later." if retry_after else "ask an administrator to unlock it."),
            instance=request.get_full_path(),
            retry_after=retry_after,
        )
        response = HttpResponse(json.dumps(body), status=status, content_type=PROBLEM_CONTENT_TYPE)
    elif settings.AXES_LOCKOUT_TEMPLATE:  # the web UI's and the admin's login forms
        context = {
            "failure_limit": settings.AXES_FAILURE_LIMIT,
            "cooloff_timedelta": cool_off,
        }
        response = render(request, settings.AXES_LOCKOUT_TEMPLATE, context, status=status)
    else:
        response = HttpResponse(get_lockout_message(), status=status)
    if retry_after:
        response["Retry-After"] = str(retry_after)
    return response
