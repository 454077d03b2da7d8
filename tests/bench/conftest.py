"""Tests that need the bench settings (django-celery-beat installed) run only under them; the
normal suite runs them through a subprocess with those settings (see test_bench.py). Every test
here connects as the owner, as the bench does."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.conf import settings

from carehub.core.db_roles import as_owner


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    bench = "django_celery_beat" in settings.INSTALLED_APPS
    marker = "skip_if_bench_settings" if bench else "bench_settings"
    kept = [item for item in items if item.get_closest_marker(marker) is None]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in kept])
        items[:] = kept


@pytest.fixture
def _bench_as_owner(django_db_blocker) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """The bench generates its data as the tables' owner (TRUNCATE, replication mode for bulk
    loads, sequences: ADR 0014), as `make bench` does: so do these tests, explicitly."""
    with django_db_blocker.unblock(), as_owner():
        yield


@pytest.fixture
def _django_db_helper(_bench_as_owner: None, _django_db_helper: None) -> None:
    """pytest-django's database access for each test, opened on the owner's connection."""
