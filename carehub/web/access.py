"""Access and audit for the web pages: every page names its operation in the role matrix
(`carehub.care_access.OPERATIONS`) and its audit action; patient accounts are refused here.

A page outside the user's scope answers 404 (`NotFound` from a selector) and is audited as
`denied` without patient or object, as the API does.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from carehub.accounts.models import Role, User
from carehub.audit.models import Outcome
from carehub.audit.services import audit_record
from carehub.care_access import Operation, can
from carehub.clinics.display import clinic_display_zone
from carehub.core.exceptions import NotFound

View = Callable[..., HttpResponse]


def clinic_zone(user: User) -> ZoneInfo:
    return clinic_display_zone(user.clinic)


def staff_page(
    operation: Operation, audit_action: str | Callable[..., str]
) -> Callable[[View], View]:
    """Log in first; patient accounts and roles the matrix does not allow get 403; NotFound
    from the view becomes 404. Both refusals are audited under the act attempted:
    `audit_action`, or `audit_action(request, **url_kwargs)` for a view serving several acts
    (approve or reject, acknowledge or resolve)."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            action = audit_action(request, **kwargs) if callable(audit_action) else audit_action
            user = request.user
            if not user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if user.role == Role.PATIENT or not can(user, operation):
                audit_record(
                    request=request,
                    action=action,
                    outcome=Outcome.DENIED,
                    detail={"status": 403, "operation": operation.value},
                )
                return render(
                    request,
                    "web/forbidden.html",
                    {"is_patient": user.role == Role.PATIENT},
                    status=403,
                )
            try:
                # Times on staff pages (and typed into forms) are the clinic's local time.
                with timezone.override(clinic_zone(user)):
                    return view(request, *args, **kwargs)
            except NotFound as exc:
                audit_record(
                    request=request,
                    action=action,
                    outcome=Outcome.DENIED,
                    detail={"status": 404, "code": exc.code},
                )
                return render(request, "web/not_found.html", {"message": exc.message}, status=404)

        return wrapper

    return decorate
