"""Rows made once for all the tests of a module (a seeded demo clinic takes seconds), in a
transaction rolled back after the last of them. Each test runs in a savepoint inside it
(pytest-django's `db`), so what one test changes the next does not see; as inside a test, nothing
is committed, so on-commit callbacks do not run. Not for `transactional_db` tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import transaction


@contextmanager
def rolled_back_after_the_module(django_db_blocker: Any) -> Iterator[None]:
    with django_db_blocker.unblock():
        block = transaction.atomic()
        # As Django's TestCase marks its class-wide block: durable blocks (the services' own
        # transactions) nest in it, as they do in a test's.
        block._from_testcase = True  # type: ignore[attr-defined]
        with block:
            yield
            transaction.set_rollback(True)
