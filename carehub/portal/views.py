"""The patient portal (`/me/`): for an account with the `patient` role, their own record only.

Members of staff are refused (403); another patient's check-in is "not found" (404), like
anything outside a user's scope. Every page that shows patient data writes an audit row.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone, translation
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from carehub.audit.models import Action, Outcome
from carehub.audit.services import audit_record
from carehub.checkins.answering import checkin_answer
from carehub.core import clock
from carehub.core.exceptions import NotFound
from carehub.patients.models import Patient
from carehub.portal.selectors import (
    checkin_for_patient,
    checkin_title,
    open_checkins,
    patient_for_user,
    progress_for,
    recent_checkins,
    upcoming_checkins,
    what_next_for,
)

PatientView = Callable[..., HttpResponse]
NO_STORE = {"Cache-Control": "no-store, private", "Referrer-Policy": "same-origin"}


def _page(
    request: HttpRequest, template: str | list[str], context: dict[str, Any], status: int = 200
) -> HttpResponse:
    """A portal page: `template` is the portal's (or the first of a list that exists; a name
    with a folder is another app's, rendered in the portal's layout)."""
    patient = context.get("patient")
    if isinstance(patient, Patient):
        context = {"clinic": patient.clinic, **context}
    names = [template] if isinstance(template, str) else template
    names = [name if "/" in name else f"portal/{name}" for name in names]
    context = {"layout": "portal/base.html", **context}
    response = render(request, names, context, status=status)
    for header, value in NO_STORE.items():
        response[header] = value
    response["Content-Language"] = translation.get_language()
    return response


def patient_page(page: str) -> Callable[[PatientView], Callable[..., HttpResponse]]:
    """Log in first (settings.LOGIN_URL); then only a patient account with its record gets in."""

    def decorate(view: PatientView) -> Callable[..., HttpResponse]:
        @never_cache
        @login_required
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            try:
                patient = patient_for_user(request.user)  # type: ignore[arg-type]
            except NotFound:
                audit_record(
                    request=request,
                    action=Action.PORTAL_VIEW,
                    outcome=Outcome.DENIED,
                    detail={"page": page},
                )
                return _page(request, "refused.html", {}, status=403)
            # Dates and times in the patient's own time zone, words in their language.
            with (
                timezone.override(ZoneInfo(patient.time_zone)),
                translation.override(patient.language),
            ):
                return view(request, patient, *args, **kwargs)

        return wrapper

    return decorate


def _audit(request: HttpRequest, patient: Patient, page: str, **detail: Any) -> None:
    audit_record(
        request=request, action=Action.PORTAL_VIEW, patient=patient, detail={"page": page, **detail}
    )


@require_GET
@patient_page("home")
def home_view(request: HttpRequest, patient: Patient) -> HttpResponse:
    now = clock.now()
    due = open_checkins(patient=patient, now=now)
    places = what_next_for(patient=patient)
    progress = progress_for(patient=patient, now=now)
    _audit(request, patient, "home")
    return _page(
        request,
        "home.html",
        {
            "patient": patient,
            "due": [(c, checkin_title(c.instrument)) for c in due],
            "upcoming": [
                (c, checkin_title(c.instrument))
                for c in upcoming_checkins(patient=patient, now=now)
            ],
            "recent": [(c, checkin_title(c.instrument)) for c in recent_checkins(patient=patient)],
            "main_step": places[0].steps[0] if places and places[0].steps else None,
            "headline": progress[0] if progress else None,
            "nav": "home",
        },
    )


@require_GET
@patient_page("progress")
def progress_view(request: HttpRequest, patient: Patient) -> HttpResponse:
    progress = progress_for(patient=patient, now=clock.now())
    _audit(request, patient, "progress")
    return _page(
        request, "progress.html", {"patient": patient, "progress": progress, "nav": "progress"}
    )


@require_GET
@patient_page("what_next")
def what_next_view(request: HttpRequest, patient: Patient) -> HttpResponse:
    places = what_next_for(patient=patient)
    _audit(request, patient, "what_next")
    return _page(request, "what_next.html", {"patient": patient, "places": places, "nav": "next"})


@require_http_methods(["GET", "POST"])
@patient_page("checkin")
def checkin_view(request: HttpRequest, patient: Patient, checkin_id: int) -> HttpResponse:
    try:
        checkin = checkin_for_patient(patient=patient, checkin_id=checkin_id)
    except NotFound:
        audit_record(
            request=request,
            action=Action.PORTAL_VIEW,
            outcome=Outcome.DENIED,
            detail={"page": "checkin"},
        )
        return _page(request, "not_found.html", {"patient": patient}, status=404)
    if request.method == "GET":
        _audit(request, patient, "checkin", checkin=checkin.pk)
    outcome = checkin_answer(request, checkin, via="portal")
    context = {
        **outcome.context,
        "patient": patient,
        "nav": "home",
        "checkin_title": checkin_title(checkin.instrument),
    }
    # The portal's own page where it has one (thanks, closed), else the link's page (the form).
    templates = [f"checkin_{outcome.page}.html", f"checkins/{outcome.page}.html"]
    response = _page(request, templates, context, status=outcome.status)
    for header, value in outcome.headers.items():
        response[header] = value
    return response


@never_cache
@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    """Log the patient out (POST only: a link cannot log anyone out) and say so, in the language
    of the record they were looking at."""
    language = None
    if request.user.is_authenticated:
        try:
            language = patient_for_user(request.user).language
        except NotFound:
            language = None
    logout(request)
    with translation.override(language or translation.get_language_from_request(request)):
        return _page(request, "logged_out.html", {})
