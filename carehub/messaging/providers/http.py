"""SMS through a generic HTTP provider: one JSON POST per message, configured by settings.

- SMS_HTTP_URL: where to POST.
- SMS_HTTP_AUTH_HEADER: one header carrying the credentials, "Name: value" (e.g.
  "Authorization: Bearer ...").
- SMS_HTTP_BODY_TEMPLATE: the JSON body; in its strings, `{to}`, `{from}`, `{body}`,
  `{reference}` (the message's idempotency key) and `{callback_url}` are replaced after parsing,
  so a value never breaks the JSON.
- SMS_HTTP_FROM: the sender (`{from}`); SMS_HTTP_ID_FIELD: where the answer carries the
  provider's message id (dotted, default `id`).

Every request carries `Idempotency-Key: <the message's idempotency key>`: a provider that honours
it delivers a retried send once.

Status callbacks (`/hooks/sms/http/status`, `webhooks.http_status_view`): a JSON POST
`{"id": "<provider message id>", "status": "queued|sent|delivered|undelivered|failed",
"error_code": "...", "error_message": "..."}` with headers `X-Carehub-Timestamp` (Unix seconds)
and `X-Carehub-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>." + body, keyed with
SMS_HTTP_CALLBACK_SECRET>`; a timestamp older than SMS_HTTP_CALLBACK_MAX_AGE_SECONDS is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from functools import lru_cache
from typing import Any

import requests
from django.conf import settings
from django.urls import reverse

from carehub.core import clock
from carehub.messaging.channels import DeliveryError, SmsGateway
from carehub.messaging.providers import refusal, retry_after_seconds, timeout, unreachable

PROVIDER = "http"
SIGNATURE_HEADER = "X-Carehub-Signature"
TIMESTAMP_HEADER = "X-Carehub-Timestamp"


@lru_cache(maxsize=1)
def _session() -> requests.Session:
    return requests.Session()


def status_callback_url() -> str:
    return settings.MESSAGING_CALLBACK_BASE_URL.rstrip("/") + reverse("hooks:http_status")


def _fill(value: Any, values: dict[str, str]) -> Any:
    if isinstance(value, str):
        for name, replacement in values.items():
            value = value.replace("{" + name + "}", replacement)
        return value
    if isinstance(value, list):
        return [_fill(item, values) for item in value]
    if isinstance(value, dict):
        return {key: _fill(item, values) for key, item in value.items()}
    return value


def request_body(to: str, body: str, idempotency_key: str) -> Any:
    template = json.loads(settings.SMS_HTTP_BODY_TEMPLATE)
    values = {
        "to": to,
        "from": settings.SMS_HTTP_FROM,
        "body": body,
        "reference": idempotency_key,
        "callback_url": status_callback_url(),
    }
    return _fill(template, values)


def auth_header() -> dict[str, str]:
    name, _, value = str(settings.SMS_HTTP_AUTH_HEADER).partition(":")
    return {name.strip(): value.strip()} if name.strip() and value.strip() else {}


def _field(answer: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(answer, dict):
            return None
        answer = answer.get(part)
    return answer


def _detail(response: requests.Response) -> tuple[str, str]:
    """(code, words) of a refusal, from a JSON answer when it has them."""
    try:
        answer = response.json()
    except ValueError:
        return "", response.text[:200]
    if not isinstance(answer, dict):
        return "", ""
    code = answer.get("code") or answer.get("error_code") or ""
    words = answer.get("message") or answer.get("error") or answer.get("error_message") or ""
    return str(code), str(words)


class HttpSmsGateway(SmsGateway):
    reports_status = True

    def send(self, to: str, body: str, idempotency_key: str) -> str:
        headers = {"Idempotency-Key": idempotency_key, **auth_header()}
        try:
            response = _session().post(
                settings.SMS_HTTP_URL,
                json=request_body(to, body, idempotency_key),
                headers=headers,
                timeout=timeout(),
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise unreachable("The SMS provider", exc) from None
        if not 200 <= response.status_code < 300:
            code, words = _detail(response)
            raise refusal(
                "The SMS provider",
                response.status_code,
                code=code,
                detail=words,
                retry_after=retry_after_seconds(response.headers.get("Retry-After")),
            )
        try:
            provider_id = _field(response.json(), settings.SMS_HTTP_ID_FIELD)
        except ValueError:
            raise DeliveryError("The SMS provider's answer could not be read (not JSON)") from None
        if provider_id in (None, "") or isinstance(provider_id, (dict, list)):
            raise DeliveryError(
                f"The SMS provider's answer carries no message id ({settings.SMS_HTTP_ID_FIELD})"
            )
        return str(provider_id)


def sign(body: bytes, timestamp: str, secret: str) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def signature_valid(body: bytes, timestamp: str, signature: str) -> bool:
    secret = settings.SMS_HTTP_CALLBACK_SECRET
    if not secret or not signature or not timestamp.isdigit():
        return False
    if abs(clock.now().timestamp() - int(timestamp)) > settings.SMS_HTTP_CALLBACK_MAX_AGE_SECONDS:
        return False
    return hmac.compare_digest(sign(body, timestamp, secret), signature)
