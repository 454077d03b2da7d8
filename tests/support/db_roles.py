"""The suite runs as the application's database role (ADR 0014): the test database is created,
migrated and dropped by the owner (DATABASE_OWNER_URL), and every test connects as DATABASE_URL's
role, which cannot TRUNCATE, ALTER or switch the append-only triggers off.

What a test needs the owner for it asks for explicitly: `analyze()` (only a table's owner may
ANALYZE before PostgreSQL 17) through a SECURITY DEFINER function the owner creates in the test
database, so the statistics include the test's own uncommitted rows.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from typing import Any

from django.db import connection

from carehub.core.db_roles import as_owner

ANALYZE_FUNCTION = """
CREATE OR REPLACE FUNCTION carehub_test_analyze(target regclass) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
BEGIN
    EXECUTE format('ANALYZE %s', target);
END;
$$;
"""


class OwnerSwitch:
    """Enter and leave `as_owner()` at separate moments (database setup, then teardown)."""

    def __init__(self) -> None:
        self._context: AbstractContextManager[Any] | None = None

    def enter(self) -> None:
        if self._context is None:
            self._context = as_owner()
            self._context.__enter__()

    def leave(self) -> None:
        if self._context is not None:
            context, self._context = self._context, None
            context.__exit__(None, None, None)


def install_owner_helpers() -> None:
    """As the owner, in the test database: the functions tests call for owner-only work."""
    with as_owner() as owner, owner.cursor() as cursor:
        cursor.execute(ANALYZE_FUNCTION)


def analyze(*tables: str) -> None:
    """ANALYZE `tables` as their owner, in the current transaction (sees its rows)."""
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute("SELECT carehub_test_analyze(%s::regclass)", [table])


def owner_database_url_for(name: str) -> str:
    """DATABASE_OWNER_URL as configured (or the local default), pointing at database `name`."""
    from tests.support.celery_worker import with_database_name

    url = os.environ.get("DATABASE_OWNER_URL") or "postgres://postgres@127.0.0.1:5432/carehub"
    return with_database_name(url, name)
