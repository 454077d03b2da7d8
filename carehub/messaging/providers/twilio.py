"""SMS through Twilio's Programmable Messaging, with the official SDK (`twilio`).

Settings: TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, and TWILIO_FROM_NUMBER or
TWILIO_MESSAGING_SERVICE_SID. Each message asks Twilio to report its status to
MESSAGING_CALLBACK_BASE_URL + /hooks/sms/twilio/status (`webhooks.twilio_status_view`), signed
with the account's auth token (X-Twilio-Signature, checked with the SDK's RequestValidator).

TWILIO_API_BASE_URL sends the SDK's requests to another address instead of
https://api.twilio.com (an egress proxy, or a local fake provider in tests); the SDK itself is
unchanged: only its HTTP client rewrites the host.

Twilio's Messages API takes no idempotency key: a send whose answer is lost (a read timeout after
Twilio accepted it) is retried. The status callback URL carries the message's idempotency key
(`ref`, signed like the rest of the URL), so when Twilio reports on that message before the retry
is sent, the message takes Twilio's id and is not sent again; a retry that goes out first reaches
the patient twice.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import requests
from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from carehub.messaging.channels import DeliveryError, SmsGateway
from carehub.messaging.models import ProviderStatus
from carehub.messaging.providers import refusal, retry_after_seconds, timeout, unreachable

PROVIDER = "twilio"

# Twilio's message statuses in carehub's words.
STATUSES: dict[str, str] = {
    "accepted": ProviderStatus.QUEUED,
    "scheduled": ProviderStatus.QUEUED,
    "queued": ProviderStatus.QUEUED,
    "sending": ProviderStatus.SENT,
    "sent": ProviderStatus.SENT,
    "delivered": ProviderStatus.DELIVERED,
    "read": ProviderStatus.DELIVERED,
    "partially_delivered": ProviderStatus.DELIVERED,
    "undelivered": ProviderStatus.UNDELIVERED,
    "failed": ProviderStatus.FAILED,
    "canceled": ProviderStatus.FAILED,
}


class CarehubTwilioHttpClient(TwilioHttpClient):
    """Twilio's HTTP client with carehub's timeouts, an optional base URL, and the last answer
    kept (its Retry-After header is not part of the SDK's exception)."""

    def __init__(self, *, base_url: str = "", timeouts: tuple[float, float]) -> None:
        super().__init__(pool_connections=True)
        self.timeout = timeouts  # requests takes (connect, read)
        self.base_url = base_url.rstrip("/")
        self.last_response: Response | None = None

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        if self.base_url:
            base = urlsplit(self.base_url)
            parts = urlsplit(url)
            path = base.path.rstrip("/") + parts.path
            url = urlunsplit((base.scheme, base.netloc, path, parts.query, parts.fragment))
        self.last_response = None
        self.last_response = super().request(
            method,
            url,
            params=params,
            data=data,
            headers=headers,
            auth=auth,
            timeout=timeout,
            allow_redirects=allow_redirects,
        )
        return self.last_response


@lru_cache(maxsize=4)
def _client(
    account_sid: str, auth_token: str, base_url: str, timeouts: tuple[float, float]
) -> tuple[Client, CarehubTwilioHttpClient]:
    http = CarehubTwilioHttpClient(base_url=base_url, timeouts=timeouts)
    return Client(account_sid, auth_token, http_client=http), http


def client() -> tuple[Client, CarehubTwilioHttpClient]:
    """The SDK client of the configured account (one per process: it keeps its connections)."""
    return _client(
        settings.TWILIO_ACCOUNT_SID,
        settings.TWILIO_AUTH_TOKEN,
        settings.TWILIO_API_BASE_URL,
        timeout(),
    )


def status_callback_url(idempotency_key: str = "") -> str:
    """Where Twilio reports; `ref` names the message (signed with the rest of the URL), so a
    report about a send whose answer we never read still finds its message."""
    url = settings.MESSAGING_CALLBACK_BASE_URL.rstrip("/") + reverse("hooks:twilio_status")
    return f"{url}?{urlencode({'ref': idempotency_key})}" if idempotency_key else url


class TwilioSmsGateway(SmsGateway):
    reports_status = True

    def send(self, to: str, body: str, idempotency_key: str) -> str:
        sdk, http = client()
        options: dict[str, Any] = {
            "to": to,
            "body": body,
            "status_callback": status_callback_url(idempotency_key),
        }
        if settings.TWILIO_MESSAGING_SERVICE_SID:
            options["messaging_service_sid"] = settings.TWILIO_MESSAGING_SERVICE_SID
        else:
            options["from_"] = settings.TWILIO_FROM_NUMBER
        try:
            message = sdk.messages.create(**options)
        except TwilioRestException as exc:
            answer = http.last_response
            wait = retry_after_seconds(answer.headers.get("Retry-After") if answer else None)
            raise refusal(
                "Twilio",
                int(exc.status),
                code=str(exc.code or ""),
                detail=str(exc.msg or ""),
                retry_after=wait,
            ) from None
        except requests.RequestException as exc:
            raise unreachable("Twilio", exc) from None
        except ValueError:  # a 2xx answer that is not JSON
            raise DeliveryError("Twilio's answer could not be read (not JSON)") from None
        if not message.sid:
            raise DeliveryError("Twilio's answer carries no message id (sid)")
        return str(message.sid)


def signature_valid(request: HttpRequest) -> bool:
    """Whether X-Twilio-Signature signs this request with our auth token. The URL signed is the
    one we gave Twilio (MESSAGING_CALLBACK_BASE_URL), not the one a proxy passes on."""
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature or not settings.TWILIO_AUTH_TOKEN:
        return False
    url = settings.MESSAGING_CALLBACK_BASE_URL.rstrip("/") + request.get_full_path()
    validator = RequestValidator(settings.TWILIO_AUTH_TOKEN)
    return bool(validator.validate(url, request.POST, signature))
