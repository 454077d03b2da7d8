"""Production must not "send" through the recording development backends by accident.

The recording SMS gateway and e-mail backend deliver nothing: a production install left on them
would tell no patient anything while every message looks sent. `carehub.E010` (a system check:
`manage.py check --deploy`, runserver, migrate) refuses them unless
MESSAGING_ALLOW_RECORDING_BACKENDS says so; `refuse_unsafe_start` applies the same check when
gunicorn (WSGI/ASGI), a Celery worker or beat starts, which run no system checks themselves.
"""

from __future__ import annotations

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
    errors = check_recording_backends()
    if errors:
        raise ImproperlyConfigured(
            "; ".join(f"{e.id}: {e.msg}. {e.hint}" for e in errors if e.hint is not None)
        )
