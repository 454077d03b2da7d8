"""Request ids, and the audit of patient-related pages of the Django admin.

`RequestIdMiddleware` takes the client's `X-Request-ID` when it is a sane token (1 to 64 of
A-Z a-z 0-9 - _ .), otherwise generates a UUID4; the id is `request.request_id`, is echoed in
the `X-Request-ID` response header and is stored on every audit row of the request.

It also records views and changes of patient-related objects in the admin (`ADMIN_AUDITED`):
a list page writes one `admin.view` row per patient listed, an object page one row for that
object's patient; any other method is `admin.change`. A 404 records no patient.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

from django.apps import apps
from django.contrib.admin.utils import unquote
from django.core.exceptions import ValidationError
from django.db import models
from django.http import HttpRequest, HttpResponse

from carehub.audit.models import Action, Outcome
from carehub.audit.services import audit_record
from carehub.patients.models import Patient

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9_.\-]{1,64}")

# Admin pages of these models are audited (their rows are, or hang off, a patient).
ADMIN_AUDITED = (
    "patients.patient",
    "pathways.enrolment",
    "observations.observation",
    "checkins.checkin",
    "messaging.message",
)


def request_id_for(value: str | None) -> str:
    """The client's request id when it is a sane token, else a new UUID4."""
    if value and _SANE_REQUEST_ID.fullmatch(value):
        return value
    return str(uuid.uuid4())


def _patients_of(model: type[models.Model], ids: list[Any]) -> list[Patient]:
    try:
        if model is Patient:
            patient_ids: Any = ids
        else:
            patient_ids = model._default_manager.filter(pk__in=ids).values("patient_id")
        return list(Patient.objects.filter(pk__in=patient_ids).only("id", "clinic_id"))
    except (ValueError, TypeError, ValidationError):  # an object id that is not a key
        return []


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.request_id = request_id_for(request.headers.get(REQUEST_ID_HEADER))  # type: ignore[attr-defined]
        response = self.get_response(request)
        target = getattr(request, "_audit_admin", None)
        if target is not None:
            self._record_admin(request, response, *target)
        response[REQUEST_ID_HEADER] = request.request_id  # type: ignore[attr-defined]
        return response

    def process_view(
        self, request: HttpRequest, view: Any, args: Any, kwargs: dict[str, Any]
    ) -> None:
        """Before an audited admin page runs: note the model, page and object's patients (a
        deleted object is gone once the view has run)."""
        match = request.resolver_match
        if match is None or match.namespace != "admin" or not match.url_name:
            return
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or not user.is_staff:
            return
        for label in ADMIN_AUDITED:
            prefix = label.replace(".", "_") + "_"
            if match.url_name.startswith(prefix):
                model = apps.get_model(label)
                page = match.url_name.removeprefix(prefix)
                object_id = kwargs.get("object_id")
                ids = [unquote(object_id)] if object_id else []
                if page == "changelist" and request.method == "POST":
                    ids = request.POST.getlist("_selected_action")
                request._audit_admin = (model, page, object_id, _patients_of(model, ids))  # type: ignore[attr-defined]
                return

    def _record_admin(
        self,
        request: HttpRequest,
        response: HttpResponse,
        model: type[models.Model],
        page: str,
        object_id: str | None,
        patients: list[Patient],
    ) -> None:
        status = response.status_code
        if status == 404:
            outcome, patients = Outcome.DENIED, []
        elif status == 403:
            outcome = Outcome.DENIED
        elif status >= 400:
            outcome = Outcome.ERROR
        else:
            outcome = Outcome.OK
        listed = getattr(response, "context_data", None) or {}
        if page == "changelist" and request.method == "GET" and "cl" in listed:
            patients = _patients_of(model, [row.pk for row in listed["cl"].result_list])
        detail: dict[str, Any] = {"model": model._meta.label_lower, "page": page}
        if object_id and status != 404:
            detail["object_id"] = str(object_id)[:64]
        if status >= 400:
            detail["status"] = status
        audit_record(
            request=request,
            action=Action.ADMIN_VIEW if request.method in ("GET", "HEAD") else Action.ADMIN_CHANGE,
            patients=patients,
            outcome=outcome,
            detail=detail,
        )
