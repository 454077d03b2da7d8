"""Every task the scheduler (beat) sends exists in the worker: a renamed or unregistered task
would otherwise fail only in production, silently, every time it is due."""

from __future__ import annotations

from django.conf import settings

from config.celery_app import app


def test_every_scheduled_task_is_registered() -> None:
    app.loader.import_default_modules()
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "carehub.core.idempotency_keys_prune" in scheduled
    assert scheduled - set(app.tasks) == set()
