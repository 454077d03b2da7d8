"""Answering a check-in, shared by the link page (no account) and the patient portal: parse
the form, submit through `checkin_submit` (so scoring, red flags and pathway facts are the same
whichever way the patient answers) and say which page to show next.

Nothing is written when an answer is missing or malformed; a second submission, or a check-in
that closed meanwhile, is "gone" (410).

Enter in a field submits a form through its first submit button, which is the form's hidden
*continue* button (`_questions.html`): a form sent that way with answers still missing is not a
submission: the page comes back with the answers kept, no question marked as an error, and the
questions still to answer listed. Only *Send my answers* marks unanswered questions.

When the answers cannot be saved (the database is down or read-only: 503 with Retry-After;
anything else: 500, logged), the form comes back with the answers filled in and says that the
link still works: nothing is lost, the check-in stays open and pressing Send again submits them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Literal

from django.http import HttpRequest
from django.utils import translation
from django.utils.translation import gettext as _

from carehub.audit.models import Action
from carehub.audit.services import audit_record
from carehub.checkins.instruments import (
    Form,
    form_for,
    instrument_name,
    parse_form,
    patient_messages_translated,
)
from carehub.checkins.models import Checkin, CheckinStatus
from carehub.checkins.services import checkin_submit, link_is_live
from carehub.core import clock
from carehub.core.exceptions import Conflict, InvalidInput
from carehub.core.retry import is_transient_database_error

logger = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 30

Page = Literal["form", "thanks", "gone"]
# The submit button Enter presses (`name="step"`): go on answering, do not send a partial form.
CONTINUE = "continue"


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


def _patient_message(message: str) -> str:
    """A refusal of the scoring service, for the patient: its English text as it is, in another
    language the translated kind of problem (the service speaks English to every door)."""
    if (translation.get_language() or "en").split("-")[0] == "en":
        return message
    if message.startswith("Please answer this question"):
        return _("Please answer this question.")
    return _("Please check this answer.")


def checkin_answer(request: HttpRequest, checkin: Checkin, *, via: str) -> Outcome:
    """GET: the form. POST: submit once. `via` ("link" or "portal") goes in the audit trail.
    Call it with the patient's language active (the pages and errors are translated)."""
    name = instrument_name(checkin.instrument)
    common = {"clinic": checkin.patient.clinic, "name": name, "checkin": checkin}
    if checkin.status == CheckinStatus.ANSWERED:
        return Outcome("gone", 410, {**common, "answered": True})
    if not link_is_live(checkin, clock.now()):
        return Outcome("gone", 410, {**common, "answered": False})

    form = form_for(checkin.instrument)
    errors: dict[str, str] = {}
    values: dict[str, str] = {}
    still_to_answer: list[dict[str, Any]] = []
    failed = 0  # the answers could not be saved: 503 (database unavailable) or 500
    if request.method == "POST":
        values = {key: request.POST.get(key, "") for key in form.item_keys()}
        answers, errors = parse_form(form, request.POST)
        if errors and request.POST.get("step") == CONTINUE:
            # Enter pressed before the last answer: nothing is sent and nothing is an error.
            still_to_answer = [
                {"key": item.key, "number": number}
                for number, item in enumerate(form.items, start=1)
                if item.required and not values[item.key].strip()
            ]
            errors = {}
        elif not errors:
            try:
                result = checkin_submit(checkin_id=checkin.pk, answers=answers)
            except Conflict:
                return Outcome("gone", 410, {**common, "answered": True})
            except InvalidInput as exc:
                fields = exc.extra.get("fields")
                errors = (
                    {key: _patient_message(str(text)) for key, text in fields.items()}
                    if isinstance(fields, dict)
                    else {"": _patient_message(exc.message)}
                )
            except Exception as exc:  # not saved: the form again, answers kept
                failed = 503 if is_transient_database_error(exc) else 500
                logger.error(
                    "check-in %s: answers not saved (%s), form shown again",
                    checkin.pk,
                    type(exc).__name__,
                    exc_info=exc,
                )
            else:
                audit_record(
                    request=request,
                    action=Action.CHECKIN_SUBMIT,
                    patient=checkin.patient,
                    obj=checkin,
                    detail={
                        "via": via,
                        "instrument": checkin.instrument,
                        "red_flags": [f["code"] for f in result.red_flags],
                    },
                )
                return Outcome(
                    "thanks",
                    200,
                    {
                        **common,
                        "title": form.title,
                        "crisis": patient_messages_translated(
                            checkin.instrument,
                            checkin.instrument_version,
                            result.patient_messages,
                        ),
                    },
                )
    return Outcome(
        "form",
        failed or (400 if errors else 200),
        {
            **common,
            "save_failed": bool(failed),
            "form": form,
            "still_to_answer": still_to_answer,
            "errors": errors,
            "error_summary": _numbered_errors(form, errors),
            "values": values,
            "total": len(form.items),
        },
        {"Retry-After": str(RETRY_AFTER_SECONDS)} if failed == 503 else {},
    )
