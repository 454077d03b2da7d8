"""The one Celery app shared by the web process, workers and beat."""

import os
import sys
from typing import Any

from celery import Celery
from celery.signals import beat_init, worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

app = Celery("carehub")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect(weak=False)
@beat_init.connect(weak=False)
def refuse_unsafe_start(**kwargs: Any) -> None:
    """Workers and beat run no system checks: refuse the recording backends (carehub.E010)."""
    import django
    from django.core.exceptions import ImproperlyConfigured

    django.setup()
    from carehub.messaging.checks import refuse_unsafe_start as check

    try:
        check()
    except ImproperlyConfigured as exc:
        # Celery logs and ignores exceptions from signal handlers, and beat redirects the standard
        # streams to its log: write to the process's own stderr; SystemExit stops the process.
        stream = sys.__stderr__ or sys.stderr
        stream.write(f"carehub: refusing to start: {exc}\n")
        stream.flush()
        raise SystemExit(1) from exc
