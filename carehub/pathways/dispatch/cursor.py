"""Prepared statements for the dispatch: the one place that reaches into Django's and psycopg's
internals (`tests/carehub/pathways/test_prepared_cursor.py` fails when either changes them).

Django keeps psycopg's prepared statements off (a transaction-mode connection pooler in front of
PostgreSQL would need to support them, as PgBouncer 1.21+ does with `max_prepared_statements`).
The dispatch's three statements run through `prepared_cursor`: PostgreSQL parses and plans each
of their shapes once per connection instead of once per dispatch. Django's own statements are
neither server-bound nor prepared.

What is relied on, and checked by the test:
- Django's `CursorWrapper` calls the psycopg cursor it holds in `.cursor` (health check, error
  wrapping, the query log and execute wrappers all apply around it);
- `django.db.backends.postgresql.base.ServerBindingCursor` is a psycopg `Cursor` (parameters
  bound on the server, which alone can be prepared) and `psycopg_any.register_tzloader` sets
  the time zone of the timestamps it reads, as Django's own cursors have;
- Django's query log reads `cursor._query.query` (psycopg sets `_query` only in its client-side
  binding cursors; `_convert_query` is where psycopg builds it).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import psycopg
from django.db import connection
from django.db.backends.postgresql.base import ServerBindingCursor
from django.db.backends.postgresql.psycopg_any import register_tzloader
from django.db.backends.utils import CursorWrapper
from psycopg.pq import Format

if TYPE_CHECKING:  # Django's stub leaves out the psycopg cursor its class derives from
    _ServerBindingCursor = psycopg.Cursor[Any]
else:
    _ServerBindingCursor = ServerBindingCursor

_TIMESTAMPTZ_OID = 1184
PREPARE_THRESHOLD = 5  # psycopg's default, set where Django leaves it None (never prepare)


class PreparingCursor(_ServerBindingCursor):
    """Parameters bound on the server, and every statement prepared (on its first execution:
    psycopg keeps the prepared statements of a connection in an LRU cache keyed by the SQL
    text, so a statement's shape is parsed and planned once per connection)."""

    def execute(
        self,
        query: Any,
        params: Any = None,
        *,
        prepare: bool | None = None,
        binary: bool | None = None,
    ) -> Any:
        return super().execute(query, params, prepare=True, binary=binary)

    def _convert_query(self, query: Any, params: Any = None) -> Any:
        # Kept where Django's query log reads the last statement (`_query`, which psycopg sets
        # only in its client-side binding cursors): the SQL as sent, with $n placeholders.
        self._query = super()._convert_query(query, params)
        return self._query


@contextmanager
def prepared_cursor() -> Iterator[CursorWrapper]:
    """Django's cursor (health check, error wrapping, query logging and execute wrappers all
    apply) around a `PreparingCursor` on the same connection and in the same transaction."""
    with connection.cursor() as wrapper:
        pg = connection.connection
        if pg.prepare_threshold is None:  # Django's default: never prepare. Only the cursors
            pg.prepare_threshold = PREPARE_THRESHOLD  # binding on the server can prepare.
        raw = PreparingCursor(pg)
        # As Django's own cursors: timestamps in the connection's time zone.
        tzloader = raw.adapters.get_loader(_TIMESTAMPTZ_OID, Format.TEXT)
        if connection.timezone != getattr(tzloader, "timezone", None):
            register_tzloader(connection.timezone, raw)
        client_cursor, wrapper.cursor = wrapper.cursor, raw
        client_cursor.close()
        try:
            yield wrapper
        finally:
            raw.close()
