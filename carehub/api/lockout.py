"""django-axes' lockout answer (`AXES_LOCKOUT_CALLABLE`): a (username, IP address) pair locked
after too many failed logins is refused with HTTP 429 and `Retry-After` (the cool-off in
seconds). Under `/api/` the body is a problem (`application/problem+json`, code `locked_out`);
elsewhere (the admin's login page) it is axes' plain message, as before."""

from __future__ import annotations

import json
from typing import Any

from axes.helpers import get_cool_off, get_lockout_message
from django.conf import settings
from django.http import HttpRequest, HttpResponse

from carehub.api.exception_handler import PROBLEM_CONTENT_TYPE, problem

API_PREFIX = "/api/"
LOCKED_OUT = "locked_out"


def lockout_response(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict[str, Any] | None = None,
) -> HttpResponse:
    status: int = settings.AXES_HTTP_RESPONSE_CODE
    cool_off = get_cool_off(request)
    retry_after = max(int(cool_off.total_seconds()), 1) if cool_off else None
    if request.path.startswith(API_PREFIX):
        body = problem(
            status=status,
            code=LOCKED_OUT,
            title="Too many failed logins",
            detail="Too many failed logins for this username from this address: "
            + ("try again later." if retry_after else "ask an administrator to unlock it."),
            instance=request.get_full_path(),
            retry_after=retry_after,
        )
        response = HttpResponse(json.dumps(body), status=status, content_type=PROBLEM_CONTENT_TYPE)
    else:
        response = HttpResponse(get_lockout_message(), status=status)
    if retry_after:
        response["Retry-After"] = str(retry_after)
    return response
