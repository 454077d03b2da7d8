"""Answering a check-in, shared by the link page (no account) and the patient portal: parse
the form, submit through `checkin_submit` (so scoring, red flags and pathway facts are the same
whichever way the patient answers) and say which page to show next.

Nothing is written when an answer is missing or malformed; a second submission, or a check-in
that closed meanwhile, is "gone" (410). When the answers cannot be saved (the database is down
or read-only: 503 with Retry-After; anything else: 500, logged), the form comes back with the
answers filled in and says that the link still works: nothing is lost, the check-in stays open
and pressing Send again submits them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Literal

from django.conf import settings
from django.http import HttpRequest

from carehub.audit.models import Action
from carehub.audit.services import audit_record
from carehub.checkins.instruments import Form, form_for, parse_form
from carehub.checkins.models import Checkin, CheckinStatus
from carehub.checkins.services import checkin_submit, link_is_live
from carehub.core import clock
from carehub.core.exceptions import Conflict, InvalidInput
from carehub.core.retry import is_transient_database_error

logger = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 30

Page = Literal["form", "thanks", "gone"]


@dataclass
class Outcome:
    page: Page
    status: int
    context: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


def _numbered_errors(form: Form, errors: dict[str, str]) -> list[dict[str, Any]]:
    """The error summary, in question order: which question and what is wrong."""
    summary = []
    for number, item in enumerate(form.items, start=1):
        if item.key in errors:
            summary.append({"key": item.key, "number": number, "message": errors[item.key]})
    for key, message in errors.items():
        if key not in form.item_keys():
            summary.append({"key": "", "number": None, "message": message})
    return summary


def checkin_answer(request: HttpRequest, checkin: Checkin, *, via: str) -> Outcome:
    """GET: the form. POST: submit once. `via` ("link" or "portal") goes in the audit trail."""
    if checkin.status == CheckinStatus.ANSWERED:
        return Outcome("gone", 410, {"answered": True})
    if not link_is_live(checkin, clock.now()):
        return Outcome("gone", 410, {"answered": False})

    form = form_for(checkin.instrument)
    errors: dict[str, str] = {}
    values: dict[str, str] = {}
    failed = 0  # the answers could not be saved: 503 (database unavailable) or 500
    if request.method == "POST":
        values = {key: request.POST.get(key, "") for key in form.item_keys()}
        answers, errors = parse_form(form, request.POST)
        if not errors:
            try:
                result = checkin_submit(checkin_id=checkin.pk, answers=answers)
            except Conflict:
                return Outcome("gone", 410, {"answered": True})
            except InvalidInput as exc:
                fields = exc.extra.get("fields")
                errors = dict(fields) if isinstance(fields, dict) else {"": exc.message}
            except Exception as exc:  # not saved: the form again, answers kept
                failed = 503 if is_transient_database_error(exc) else 500
                logger.error(
                    "check-in %s: answers not saved (%s), form shown again",
                    checkin.pk, type(exc).__name__, exc_info=exc,
                )  # fmt: skip
            else:
                audit_record(
                    request=request, action=Action.CHECKIN_SUBMIT, patient=checkin.patient,
                    obj=checkin, detail={"via": via, "instrument": checkin.instrument,
                                         "red_flags": [f["code"] for f in result.red_flags]},
                )  # fmt: skip
                name = settings.CHECKIN_INSTRUMENT_NAMES.get(checkin.instrument, "check-in")
                return Outcome(
                    "thanks",
                    200,
                    {
                        "crisis": result.patient_messages, "title": form.title, "name": name,
                        "checkin": checkin,
                    },
                )  # fmt: skip
    return Outcome(
        "form",
        failed or (400 if errors else 200),
        {
            "save_failed": bool(failed),
            "form": form,
            "errors": errors,
            "error_summary": _numbered_errors(form, errors),
            "values": values,
            "checkin": checkin,
            "total": len(form.items),
        },
        {"Retry-After": str(RETRY_AFTER_SECONDS)} if failed == 503 else {},
    )
