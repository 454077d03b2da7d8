"""Delivery-status callbacks from providers (`/hooks/`): Twilio, the generic HTTP SMS provider
and anymail's e-mail tracking webhooks.

Each is exempt from CSRF and from sessions (providers carry no cookie) and trusts only a valid
signature: a missing or wrong one is 403 before any database work, so forged callbacks cost one
HMAC. A signed callback that cannot be read is 400; one about a status carehub does not track is
200 (`ignored`), so the provider does not retry it; one naming a message id nobody has sent yet
is accepted (200, `pending`) and kept, because it may have overtaken the send's own commit. A
repeated callback adds nothing (`duplicate`). Answers are small JSON bodies (problem+json for
errors); bad input never raises.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from anymail.exceptions import AnymailWebhookValidationFailure
from anymail.utils import get_anymail_setting
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from carehub.messaging.models import ProviderStatus
from carehub.messaging.provider_reports import provider_report_receive
from carehub.messaging.providers import http as http_provider
from carehub.messaging.providers import twilio

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024


def problem(status: int, title: str, detail: str) -> JsonResponse:
    return JsonResponse(
        {"type": "about:blank", "title": title, "status": status, "detail": detail},
        status=status,
        content_type="application/problem+json",
    )


def _too_large(request: HttpRequest) -> JsonResponse | None:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return problem(400, "Bad request", "Content-Length is not a number.")
    if length > MAX_BODY_BYTES:
        return problem(413, "Too large", f"A status callback is at most {MAX_BODY_BYTES} bytes.")
    return None


def _forbidden() -> JsonResponse:
    return problem(403, "Forbidden", "The signature is missing or wrong.")


def _received(
    provider: str,
    provider_message_id: str,
    raw_status: str,
    statuses: dict[str, str],
    **details: str,
) -> JsonResponse:
    status = statuses.get(raw_status.lower())
    if status is None:
        return JsonResponse({"outcome": f"ignored: status {raw_status[:40]!r} is not tracked"})
    outcome = provider_report_receive(
        provider=provider,
        provider_message_id=provider_message_id,
        status=status,
        provider_status=raw_status,
        **details,
    )
    return JsonResponse({"outcome": outcome})


@csrf_exempt
@require_POST
def twilio_status_view(request: HttpRequest) -> HttpResponse:
    """Twilio's StatusCallback (form-encoded, signed with X-Twilio-Signature)."""
    if (refused := _too_large(request)) is not None:
        return refused
    if not twilio.signature_valid(request):
        return _forbidden()
    sid = request.POST.get("MessageSid") or request.POST.get("SmsSid") or ""
    raw = request.POST.get("MessageStatus") or request.POST.get("SmsStatus") or ""
    if not sid or not raw or len(sid) > 200:
        return problem(400, "Bad request", "MessageSid and MessageStatus are required.")
    return _received(
        twilio.PROVIDER,
        sid,
        raw,
        twilio.STATUSES,
        error_code=request.POST.get("ErrorCode", "")[:40],
        error=request.POST.get("ErrorMessage", "")[:300],
        reference=request.GET.get("ref", "")[:400],
    )


HTTP_STATUSES = {status: status for status in ProviderStatus.values}


@csrf_exempt
@require_POST
def http_status_view(request: HttpRequest) -> HttpResponse:
    """The generic HTTP provider's callback (JSON, HMAC-signed; see providers/http.py)."""
    if (refused := _too_large(request)) is not None:
        return refused
    body = request.body
    timestamp = request.headers.get(http_provider.TIMESTAMP_HEADER, "")
    signature = request.headers.get(http_provider.SIGNATURE_HEADER, "")
    if not http_provider.signature_valid(body, timestamp, signature):
        return _forbidden()
    try:
        report = json.loads(body)
    except ValueError:
        return problem(400, "Bad request", "The body is not JSON.")
    if not isinstance(report, dict):
        return problem(400, "Bad request", "The body is not a JSON object.")
    provider_id, raw = report.get("id"), report.get("status")
    if not isinstance(provider_id, str | int) or not isinstance(raw, str):
        return problem(400, "Bad request", "`id` and `status` are required.")
    provider_id = str(provider_id)
    if not provider_id or len(provider_id) > 200 or not raw:
        return problem(400, "Bad request", "`id` and `status` are required.")
    code, words = report.get("error_code") or "", report.get("error_message") or ""
    return _received(
        http_provider.PROVIDER,
        provider_id,
        raw,
        HTTP_STATUSES,
        error_code=str(code)[:40],
        error=str(words)[:300],
    )


def anymail_tracking(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """anymail's tracking webhook view, answering like ours: 403 without the webhook secret or
    with a wrong one (anymail itself answers 400, and accepts anything without a secret), 400
    for a body it cannot parse."""

    @csrf_exempt
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method == "POST" and not get_anymail_setting("webhook_secret", default=None):
            return _forbidden()
        if (refused := _too_large(request)) is not None:
            return refused
        try:
            return view(request, *args, **kwargs)
        except AnymailWebhookValidationFailure:
            return _forbidden()
        except (ValueError, KeyError, TypeError, AttributeError, IndexError):
            logger.warning("an e-mail tracking webhook could not be read", exc_info=True)
            return problem(400, "Bad request", "The webhook body could not be read.")

    return wrapped
