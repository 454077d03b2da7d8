"""E-mail through django-anymail: any ESP it supports, chosen by settings (DJANGO_EMAIL_BACKEND,
e.g. `anymail.backends.postmark.EmailBackend`, and ANYMAIL_* variables for its credentials and
options). carehub sends through Django's mail API, so nothing here names an ESP.

Sending classifies anymail's errors like the SMS providers' answers (see the package). The ESP's
tracking webhooks (`/hooks/email/<esp>/tracking/`, anymail's views behind its basic auth
ANYMAIL_WEBHOOK_SECRET and the ESP's own signature where it has one) raise anymail's `tracking`
signal; `carehub.messaging.provider_reports.tracking_received` turns the delivery events among
them into status reports.
"""

from __future__ import annotations

import logging

import requests
from anymail.exceptions import (
    AnymailAPIError,
    AnymailError,
    AnymailInvalidAddress,
    AnymailRecipientsRefused,
    AnymailRequestsAPIError,
)
from django.core.mail import EmailMessage, get_connection

from carehub.messaging.channels import DeliveryError, PermanentDeliveryError
from carehub.messaging.models import ProviderStatus
from carehub.messaging.providers import refusal, retry_after_seconds, scrub, unreachable

logger = logging.getLogger(__name__)

# anymail's normalised event types that say where the message is; the rest (opened, clicked,
# complained, unsubscribed, deferred, ...) are not delivery states and are not kept.
EVENT_STATUSES: dict[str, str] = {
    "queued": ProviderStatus.QUEUED,
    "sent": ProviderStatus.SENT,
    "delivered": ProviderStatus.DELIVERED,
    "bounced": ProviderStatus.UNDELIVERED,
    "rejected": ProviderStatus.FAILED,
    "failed": ProviderStatus.FAILED,
}


def provider_name(esp_name: str) -> str:
    return f"email:{esp_name.lower().replace(' ', '_')}"


def _detail(response: requests.Response) -> tuple[str, str]:
    try:
        answer = response.json()
    except ValueError:
        return "", ""
    if not isinstance(answer, dict):
        return "", ""
    code = answer.get("ErrorCode") or answer.get("code") or ""
    words = answer.get("Message") or answer.get("message") or answer.get("error") or ""
    return str(code), str(words)


def _refused_recipient(esp: str, exc: Exception, email: EmailMessage) -> PermanentDeliveryError:
    """The recipient is invalid or rejected (suppressed after earlier bounces, ...)."""
    what = f"{esp} refused the recipient"
    statuses = getattr(getattr(email, "anymail_status", None), "status", None) or set()
    if statuses:
        what += f" ({', '.join(sorted(statuses))})"
    response = getattr(exc, "response", None)
    code = ""
    if response is not None:
        code, words = _detail(response)
        what += f": HTTP {response.status_code}"
        if code:
            what += f" (error {code})"
        if words:
            what += f": {scrub(words)}"
    return PermanentDeliveryError(what, code=code)


def send_through_anymail(email: EmailMessage) -> str | None:
    """Send one e-mail through the configured anymail backend; the ESP's message id."""
    backend = get_connection(fail_silently=False)
    esp = str(getattr(backend, "esp_name", "the e-mail provider"))
    email.connection = backend
    try:
        email.send(fail_silently=False)
    except (AnymailRecipientsRefused, AnymailInvalidAddress) as exc:
        raise _refused_recipient(esp, exc, email) from None
    except AnymailRequestsAPIError as exc:
        response = exc.response
        if response is None:  # a timeout or a refused connection
            cause = exc.__cause__ or exc.__context__
            raise unreachable(esp, cause if cause is not None else exc) from None
        if 200 <= response.status_code < 300:
            raise DeliveryError(f"{esp}'s answer could not be read") from None
        code, words = _detail(response)
        raise refusal(
            esp,
            response.status_code,
            code=code,
            detail=words,
            retry_after=retry_after_seconds(response.headers.get("Retry-After")),
        ) from None
    except (AnymailAPIError, AnymailError) as exc:
        # Never str(exc): anymail's text shows the payload (addresses, the body).
        raise DeliveryError(f"{esp} failed: {type(exc).__name__}") from None
    status = getattr(email, "anymail_status", None)
    message_id = getattr(status, "message_id", None)
    return message_id if isinstance(message_id, str) and message_id else None
