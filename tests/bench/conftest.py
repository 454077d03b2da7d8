"""Tests that need the bench settings (django-celery-beat installed) run only under them; the
normal suite runs them through a subprocess with those settings (see test_bench.py)."""

from __future__ import annotations

import pytest
from django.conf import settings


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    bench = "django_celery_beat" in settings.INSTALLED_APPS
    marker = "skip_if_bench_settings" if bench else "bench_settings"
    kept = [item for item in items if item.get_closest_marker(marker) is None]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in kept])
        items[:] = kept
