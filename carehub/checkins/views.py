"""The patient's check-in page, reached from the link in a message (no account needed).

GET shows the questions and never consumes the link; POST submits once. A second submission,
an expired link or a closed check-in answers 410 with a plain page; an unknown token 404.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from carehub.checkins.instruments import form_for, parse_form
from carehub.checkins.models import CheckinStatus
from carehub.checkins.services import checkin_for_token, checkin_submit, link_is_live
from carehub.core import clock
from carehub.core.exceptions import Conflict, InvalidInput

NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def _page(
    request: HttpRequest, template: str, context: dict[str, Any], status: int = 200
) -> HttpResponse:
    response = render(request, f"checkins/{template}", context, status=status)
    for header, value in NO_STORE.items():
        response[header] = value
    return response


@never_cache
@require_http_methods(["GET", "POST"])
def checkin_link_view(request: HttpRequest, token: str) -> HttpResponse:
    checkin = checkin_for_token(token)
    if checkin is None:
        return _page(request, "unknown.html", {}, status=404)
    if checkin.status == CheckinStatus.ANSWERED:
        return _page(request, "gone.html", {"answered": True}, status=410)
    if not link_is_live(checkin, clock.now()):
        return _page(request, "gone.html", {"answered": False}, status=410)

    form = form_for(checkin.instrument)
    errors: dict[str, str] = {}
    values: dict[str, str] = {}
    if request.method == "POST":
        values = {key: request.POST.get(key, "") for key in form.item_keys()}
        answers, errors = parse_form(form, request.POST)
        if not errors:
            try:
                result = checkin_submit(checkin_id=checkin.pk, answers=answers)
            except Conflict:
                return _page(request, "gone.html", {"answered": True}, status=410)
            except InvalidInput as exc:
                fields = exc.extra.get("fields")
                errors = dict(fields) if isinstance(fields, dict) else {"": exc.message}
            else:
                return _page(
                    request,
                    "thanks.html",
                    {"crisis": result.patient_messages, "title": form.title},
                )
    return _page(
        request,
        "form.html",
        {"form": form, "errors": errors, "values": values, "checkin": checkin},
        status=400 if errors else 200,
    )
