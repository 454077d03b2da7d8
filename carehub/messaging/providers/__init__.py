"""Real delivery providers behind the channels' interfaces: SMS through Twilio (its SDK) or a
generic HTTP provider, e-mail through django-anymail (any ESP it supports).

Every answer of a provider is sorted into one of three outcomes:

- accepted: the provider's message id is returned and stored on the message;
- transient failure (`DeliveryError`): 429 (its Retry-After honoured), 408, 5xx, timeouts,
  refused connections, an answer we cannot read, our credentials refused: the message is retried
  with backoff by the delivery machinery, dead after MESSAGING_MAX_ATTEMPTS;
- permanent failure (`PermanentDeliveryError`): any other refusal (an invalid or unsubscribed
  number, a rejected address): dead at once, with the provider's reason code.

Reasons keep the provider's code and words but never a phone number, an e-mail address or a
check-in link (they end up in the delivery log and in log lines).
"""

from __future__ import annotations

import re
from datetime import UTC
from email.utils import parsedate_to_datetime

from django.conf import settings

from carehub.core import clock
from carehub.core.logging import redact
from carehub.messaging.channels import DeliveryError, PermanentDeliveryError

PHONE_NUMBER = re.compile(r"\+?\d[\d ().-]{5,}\d")
EMAIL_ADDRESS = re.compile(r"[^\s@<>\"',;:]+@[^\s@<>\"',;:]+")


def scrub(text: str, limit: int = 300) -> str:
    """`text` without phone numbers, e-mail addresses or link tokens, at most `limit` long."""
    text = EMAIL_ADDRESS.sub("[address]", redact(str(text)))
    return PHONE_NUMBER.sub("[number]", text).strip()[:limit]


def timeout() -> tuple[float, float]:
    """(connect, read) timeouts of every call to a provider, in seconds."""
    return (
        float(settings.MESSAGING_PROVIDER_CONNECT_TIMEOUT_SECONDS),
        float(settings.MESSAGING_PROVIDER_READ_TIMEOUT_SECONDS),
    )


def retry_after_seconds(value: str | None) -> float | None:
    """An HTTP Retry-After (seconds, or an HTTP date) as seconds from now; None if absent or
    unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - clock.now()).total_seconds(), 0.0)


TRANSIENT_STATUSES = frozenset({408, 425, 429})
CREDENTIAL_STATUSES = frozenset({401, 403})


def refusal(
    provider: str,
    status: int,
    *,
    code: str = "",
    detail: str = "",
    retry_after: float | None = None,
) -> DeliveryError:
    """The error for an HTTP answer that is not an acceptance."""
    what = f"{provider} answered HTTP {status}"
    if code:
        what += f" (error {code})"
    if detail:
        what += f": {scrub(detail)}"
    if status in TRANSIENT_STATUSES or status >= 500:
        if retry_after is not None:
            what += f"; it asks to wait {retry_after:.0f} s"
        return DeliveryError(what, retry_after=retry_after, code=code)
    if status in CREDENTIAL_STATUSES:
        return DeliveryError(f"{what}: it refused our credentials (check the settings)", code=code)
    return PermanentDeliveryError(what, code=code)


def unreachable(provider: str, exc: BaseException) -> DeliveryError:
    """A timeout or a connection error: the send may or may not have reached the provider."""
    return DeliveryError(f"{provider} did not answer: {type(exc).__name__}: {scrub(str(exc))}")
