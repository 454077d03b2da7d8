"""Running a web action once per submitted form, and turning application errors into what the
user reads next to the form.

Every action form carries a one-time key (`form_key`, a hidden field). The key is claimed
through the core's idempotency mechanism (carehub.core.idempotency, ADR 0013), as the API's
`Idempotency-Key` is, with the fingerprint of the submission: the action, its target (the
object acted on) and the form's data. The same form sent twice (a double click, a reload that
re-posts) acts once and answers the first message again; a different submission with a key
already used (a form tampered with, or a stale copy edited and sent again) is refused and
changes nothing. A refusal by the services (an `ApplicationError`: nothing changed) releases
the key, so the corrected form may be sent again.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.db import models
from django.http import HttpRequest

from carehub.core.exceptions import (
    ApplicationError,
    Conflict,
    CriteriaNotMet,
    InvalidInput,
    NotPermitted,
)
from carehub.core.idempotency import (
    Attempt,
    IdempotencyKeyInProgress,
    IdempotencyKeyReused,
    idempotency_begin,
    idempotency_fail,
    idempotency_finish,
    idempotency_peek,
    idempotency_step,
)
from carehub.core.models import IdempotencyRecord
from carehub.web.forms import KEY_PATTERN, new_key

KEY_FIELD = "form_key"
logger = logging.getLogger(__name__)


@dataclass
class ActionResult:
    ok: bool
    message: str
    status: int = 200
    replayed: bool = False
    kind: str = ""  # conflict | criteria | invalid | forbidden | reused
    current: dict[str, Any] | None = None
    explanation: dict[str, Any] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)  # invalid: field name -> its message


@dataclass
class Once:
    """What an action's `perform` gets: `key`, the idempotency key to pass to the pathway's
    dispatch (whose own log then answers a replayed event), and `step` for a write in several
    steps (record, then tell the pathway), so that sending the form again after a failure does
    not repeat a step that committed."""

    key: str
    attempt: Attempt

    def step(self, name: str, run: Callable[[], object]) -> None:
        idempotency_step(attempt=self.attempt, name=name, run=run)


CONFLICT_TEXT = "Someone else changed this in the meantime: here is the current state."
ALREADY_SENT = "This form was already sent once"
REUSED_TEXT = (
    "This form was already sent once with other values; nothing was changed. "
    "Reload the page to start again."
)


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
        named = exc.extra.get("fields")
        fields = (
            {
                str(name): " ".join(text) if isinstance(text, list) else str(text)
                for name, text in named.items()
            }
            if isinstance(named, dict)
            else {}
        )
        return ActionResult(
            ok=False, message=exc.message, status=400, kind="invalid", fields=fields
        )
    return ActionResult(ok=False, message=exc.message, status=400, kind="invalid")


def submission_key(request: HttpRequest, form_key: str) -> str:
    """The idempotency key an action passes on to the pathway's dispatch."""
    return f"web:{request.user.pk}:{form_key}"


def form_data(form: forms.Form) -> dict[str, Any]:
    """What a submitted form says, for its fingerprint: every field but the key, as the field
    reads it (`to_python`, where cleaning starts: text stripped, numbers and moments parsed),
    without the checks against what the form offers now, so that the same form sent again is
    recognised after what it named changed (a procedure record replaced by its result)."""
    data: dict[str, Any] = {}
    for name, form_field in form.fields.items():
        if name == KEY_FIELD:
            continue
        raw = form[name].data
        try:
            data[name] = form_field.to_python(raw)
        except forms.ValidationError:
            data[name] = raw
    return data


def _target(obj: models.Model) -> str:
    return f"{obj._meta.label_lower}:{obj.pk}"


def _sent_key(form: forms.Form) -> str:
    key = form[KEY_FIELD].data
    return key if isinstance(key, str) and re.fullmatch(KEY_PATTERN, key) else ""


def _replayed(record: IdempotencyRecord) -> ActionResult:
    done = record.message or "it was done."
    return ActionResult(ok=True, message=f"{ALREADY_SENT}: {done}", replayed=True)


def _refused(exc: IdempotencyKeyReused | IdempotencyKeyInProgress) -> ActionResult:
    if isinstance(exc, IdempotencyKeyInProgress):
        return ActionResult(
            ok=True, message=f"{ALREADY_SENT} and is still being processed.", replayed=True
        )
    return ActionResult(ok=False, message=REUSED_TEXT, status=409, kind="reused")


def renew_key(form: forms.Form) -> None:
    """Give a refused form a new key, so that the re-rendered form is a new submission."""
    data = form.data.copy()  # type: ignore[attr-defined]  # a bound form's QueryDict
    data[form.add_prefix(KEY_FIELD)] = new_key()
    form.data = data


def _request_of(
    request: HttpRequest, form: forms.Form, key: str, action: str, target: models.Model
) -> dict[str, Any]:
    """What a form's key is claimed with: the user, the key and the request's fingerprint
    (the action, its object and the form's values)."""
    return {
        "actor_id": request.user.pk,
        "key": key,
        "operation": action,
        "target": _target(target),
        "body": form_data(form),
    }


def earlier_submission(
    request: HttpRequest, form: forms.Form, *, action: str, target: models.Model
) -> ActionResult | None:
    """The answer to a form sent again, found before validating it (what it acted on may have
    changed since): the first message, a refusal when the key was used for another submission,
    or None when the form has not been acted on."""
    key = _sent_key(form)
    if not key:
        return None
    try:
        attempt = idempotency_peek(**_request_of(request, form, key, action, target))
    except (IdempotencyKeyReused, IdempotencyKeyInProgress) as exc:
        return _refused(exc)
    return _replayed(attempt.record) if attempt is not None else None


def run_once(
    request: HttpRequest,
    *,
    form: forms.Form,
    action: str,
    target: models.Model,
    perform: Callable[[Once], str],
) -> ActionResult:
    """Run `perform(once)` for a valid form unless this form was acted on before. `perform`
    returns the message for the user; an ApplicationError it raises must mean nothing changed
    (the key is released so the corrected form can be sent again)."""
    form_key = form.cleaned_data[KEY_FIELD]
    try:
        attempt = idempotency_begin(**_request_of(request, form, form_key, action, target))
    except (IdempotencyKeyReused, IdempotencyKeyInProgress) as exc:
        return _refused(exc)
    if attempt.replay:
        return _replayed(attempt.record)
    try:
        message = perform(Once(key=submission_key(request, form_key), attempt=attempt))
    except ApplicationError as exc:
        result = error_result(exc)
        idempotency_fail(attempt=attempt, status=result.status)
        return result
    except Exception:
        try:
            idempotency_fail(attempt=attempt, status=500)
        except Exception:  # the database may be what failed: the original error matters
            logger.exception("The form key of a failed action was not updated")
        raise
    idempotency_finish(attempt=attempt, status=200, message=message)
    return ActionResult(ok=True, message=message)
