"""Running a web action once per submitted form, and turning application errors into what the
user reads next to the form."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.http import HttpRequest

from carehub.core.exceptions import (
    ApplicationError,
    Conflict,
    CriteriaNotMet,
    InvalidInput,
    NotPermitted,
)
from carehub.web.services import (
    submission_claim,
    submission_finish,
    submission_previous,
    submission_release,
)


@dataclass
class ActionResult:
    ok: bool
    message: str
    status: int = 200
    replayed: bool = False
    kind: str = ""  # conflict | criteria | invalid | forbidden
    current: dict[str, Any] | None = None
    explanation: dict[str, Any] = field(default_factory=dict)


CONFLICT_TEXT = "Someone else changed this in the meantime: here is the current state."


def error_result(exc: ApplicationError) -> ActionResult:
    if isinstance(exc, Conflict):
        current = exc.extra.get("current")
        return ActionResult(
            ok=False,
            message=f"{CONFLICT_TEXT} ({exc.message})",
            status=409,
            kind="conflict",
            current=current if isinstance(current, dict) else None,
        )
    if isinstance(exc, CriteriaNotMet):
        explanation = exc.extra.get("explanation")
        return ActionResult(
            ok=False,
            message=exc.message,
            status=422,
            kind="criteria",
            explanation=explanation if isinstance(explanation, dict) else {},
        )
    if isinstance(exc, NotPermitted):
        return ActionResult(ok=False, message=exc.message, status=403, kind="forbidden")
    if isinstance(exc, InvalidInput):
        return ActionResult(ok=False, message=exc.message, status=400, kind="invalid")
    return ActionResult(ok=False, message=exc.message, status=400, kind="invalid")


def submission_key(request: HttpRequest, form_key: str) -> str:
    return f"web:{request.user.pk}:{form_key}"


def earlier_submission(request: HttpRequest, form_key: str) -> ActionResult | None:
    """The answer to a form sent again (checked before validating it: what it acted on may
    have changed since, e.g. a procedure record replaced by its result)."""
    if not form_key:
        return None
    previous = submission_previous(key=submission_key(request, form_key))
    if previous is None:
        return None
    done = previous.result or "it is being processed"
    return ActionResult(ok=True, message=f"This form was already sent once: {done}", replayed=True)


def run_once(
    request: HttpRequest, *, form_key: str, action: str, perform: Callable[[str], str]
) -> ActionResult:
    """Run `perform(idempotency_key)` unless this form was submitted before. `perform` returns
    the message for the user; an ApplicationError it raises must mean nothing changed (the
    claim is released so the corrected form can be sent again)."""
    key = submission_key(request, form_key)
    submission = submission_claim(key=key, user=request.user, action=action)  # type: ignore[arg-type]
    if submission is None:
        return earlier_submission(request, form_key) or ActionResult(
            ok=True, message="This form was already sent once.", replayed=True
        )
    try:
        message = perform(key)
    except ApplicationError as exc:
        submission_release(submission=submission)
        return error_result(exc)
    submission_finish(submission=submission, result=message)
    return ActionResult(ok=True, message=message)
