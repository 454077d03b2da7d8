"""Production must not "send" through the recording development backends by accident, and a
real provider must have what it needs.

The recording SMS gateway and e-mail backend deliver nothing: a production install left on them
would tell no patient anything while every message looks sent. `carehub.E010` (a system check:
`manage.py check --deploy`, runserver, migrate) refuses them unless
MESSAGING_ALLOW_RECORDING_BACKENDS says so; `refuse_unsafe_start` applies the same check when
gunicorn (WSGI/ASGI), a Celery worker or beat starts, which run no system checks themselves.

`carehub.E011` (every environment, same places): the configured SMS gateway or anymail e-mail
backend lacks its credentials or its callback secret, or cannot be loaded.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, register
from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger(__name__)

OPT_OUT = "MESSAGING_ALLOW_RECORDING_BACKENDS"


def recording_backends_in_use() -> list[str]:
    """The settings (with their values) that name a recording development backend."""
    from carehub.messaging.selectors import recording_email_backend, recording_sms_gateway

    found = []
    if recording_sms_gateway():
        found.append(f"MESSAGING_SMS_GATEWAY={settings.MESSAGING_SMS_GATEWAY}")
    if recording_email_backend():
        found.append(f"EMAIL_BACKEND={settings.EMAIL_BACKEND}")
    return found


@register("carehub")
def check_recording_backends(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if getattr(settings, OPT_OUT, True):
        return []
    return [
        Error(
            f"{value} is a recording development backend: nothing would reach anyone",
            hint="Set MESSAGING_SMS_GATEWAY to your provider's SmsGateway and "
            "DJANGO_EMAIL_BACKEND to a real e-mail backend, or, for a demonstration install "
            f"only, {OPT_OUT}=true.",
            id="carehub.E010",
        )
        for value in recording_backends_in_use()
    ]


def _missing(*names: str) -> list[str]:
    return [name for name in names if not getattr(settings, name, "")]


def _sms_problems() -> list[tuple[str, str]]:
    from django.utils.module_loading import import_string

    from carehub.messaging.channels import SMS_GATEWAYS, SmsGateway, sms_gateway_path

    value = settings.MESSAGING_SMS_GATEWAY
    path = sms_gateway_path()
    try:
        cls = import_string(path)
    except ImportError as exc:
        return [(f"MESSAGING_SMS_GATEWAY={value} cannot be loaded: {exc}", "")]
    if not (isinstance(cls, type) and issubclass(cls, SmsGateway)):
        return [(f"MESSAGING_SMS_GATEWAY={value} is not an SmsGateway", "")]
    problems = []
    if path == SMS_GATEWAYS["twilio"]:
        missing = _missing("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN")
        if not (settings.TWILIO_FROM_NUMBER or settings.TWILIO_MESSAGING_SERVICE_SID):
            missing.append("TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID")
        if missing:
            problems.append(
                (
                    f"MESSAGING_SMS_GATEWAY={value} needs {', '.join(missing)}",
                    "Set them from the Twilio console (the auth token also checks the "
                    "signatures of Twilio's status callbacks).",
                )
            )
    elif path == SMS_GATEWAYS["http"]:
        missing = _missing("SMS_HTTP_URL", "SMS_HTTP_CALLBACK_SECRET")
        if missing:
            problems.append(
                (
                    f"MESSAGING_SMS_GATEWAY={value} needs {', '.join(missing)}",
                    "SMS_HTTP_CALLBACK_SECRET is the key of the HMAC the provider signs its "
                    "status callbacks with.",
                )
            )
        try:
            json.loads(settings.SMS_HTTP_BODY_TEMPLATE)
        except ValueError as exc:
            problems.append((f"SMS_HTTP_BODY_TEMPLATE is not JSON: {exc}", ""))
    return problems


def _email_problems() -> list[tuple[str, str]]:
    backend = str(settings.EMAIL_BACKEND)
    if not backend.startswith("anymail."):
        return []
    from anymail.utils import get_anymail_setting
    from django.core.mail import get_connection

    problems = []
    try:
        get_connection(backend)
    except (ImproperlyConfigured, ImportError) as exc:
        problems.append(
            (
                f"EMAIL_BACKEND={backend} is not configured: {exc}",
                "Give anymail's settings as ANYMAIL_<NAME> variables (e.g. "
                "ANYMAIL_POSTMARK_SERVER_TOKEN).",
            )
        )
    if not get_anymail_setting("webhook_secret", default=None):
        problems.append(
            (
                f"EMAIL_BACKEND={backend} needs ANYMAIL_WEBHOOK_SECRET",
                "user:password for the basic auth of the e-mail tracking webhooks "
                "(/hooks/email/<esp>/tracking/); without it they refuse every call.",
            )
        )
    return problems


@register("carehub")
def check_provider_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    return [
        Error(msg, hint=hint or None, id="carehub.E011")
        for msg, hint in _sms_problems() + _email_problems()
    ]


def warn_if_opted_out() -> None:
    """At start-up: a production install that allowed the recording backends says so."""
    if getattr(settings, "MESSAGING_WARN_RECORDING_BACKENDS", False) and getattr(
        settings, OPT_OUT, True
    ):
        for value in recording_backends_in_use():
            logger.warning(
                "%s is a recording development backend (%s=true): nothing is delivered",
                value,
                OPT_OUT,
            )


def refuse_unsafe_start() -> None:
    """For processes that run no system checks (gunicorn, Celery): refuse to start on E010."""
    errors = check_recording_backends() + check_provider_settings()
    if errors:
        raise ImproperlyConfigured(
            "; ".join(f"{e.id}: {e.msg}. {e.hint or ''}".strip() for e in errors)
        )
