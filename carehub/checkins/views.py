"""The patient's check-in page, reached from the link in a message (no account needed).

GET shows the questions and never consumes the link; POST submits once. A second submission,
an expired link or a closed check-in answers 410 with a plain page; an unknown token 404.
Pages are in the patient's language (`Patient.language`), not the browser's; an unknown link
names no patient, so its page follows the browser's preferred language.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import translation
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from carehub.checkins.answering import checkin_answer
from carehub.checkins.services import checkin_for_token
from carehub.clinics.clock import clinic_time

# `strict-origin`: the link's path (its token) is never sent as a Referer, not even to our own
# origin, while a form POST still carries an `Origin` header; with `no-referrer` browsers send
# `Origin: null` on the POST and Django's CSRF check refuses the answers.
NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "strict-origin"}


def _page(
    request: HttpRequest, template: str, context: dict[str, Any], status: int = 200
) -> HttpResponse:
    response = render(request, f"checkins/{template}", context, status=status)
    for header, value in NO_STORE.items():
        response[header] = value
    response["Content-Language"] = translation.get_language()
    return response


@never_cache
@require_http_methods(["GET", "POST"])
def checkin_link_view(request: HttpRequest, token: str) -> HttpResponse:
    checkin = checkin_for_token(token)
    if checkin is None:
        with translation.override(translation.get_language_from_request(request)):
            return _page(request, "unknown.html", {}, status=404)
    # The check-in's clinic's now: a sandbox clinic's link lives on its test clock (ADR 0024).
    with translation.override(checkin.patient.language), clinic_time(checkin.patient.clinic):
        outcome = checkin_answer(request, checkin, via="link")
        response = _page(request, f"{outcome.page}.html", outcome.context, status=outcome.status)
    for header, value in outcome.headers.items():
        response[header] = value
    return response
