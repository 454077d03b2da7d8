"""The one place the dispatch reaches into Django's and psycopg's internals
(`carehub.pathways.dispatch.cursor.prepared_cursor`): each assumption it makes, checked, so an
upgrade of Django or psycopg that changes one fails here, by name, before a dispatch does."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime

import psycopg
import pytest
from django.db import connection
from django.db.backends.postgresql import base, psycopg_any
from django.db.backends.utils import CursorWrapper
from django.test.utils import CaptureQueriesContext

from carehub.pathways.dispatch.cursor import PreparingCursor, prepared_cursor


def test_djangos_server_binding_cursor_is_a_psycopg_cursor_that_builds_its_query() -> None:
    assert issubclass(base.ServerBindingCursor, psycopg.Cursor)
    assert not issubclass(base.ServerBindingCursor, psycopg.ClientCursor)
    assert callable(getattr(psycopg.Cursor, "_convert_query", None))
    assert list(inspect.signature(psycopg_any.register_tzloader).parameters) == ["tz", "context"]


def test_djangos_query_log_reads_the_cursors_underscore_query() -> None:
    source = inspect.getsource(connection.ops.last_executed_query)
    assert "cursor._query" in source


@pytest.mark.django_db
def test_djangos_cursor_wrapper_calls_the_psycopg_cursor_it_holds() -> None:
    with connection.cursor() as wrapper:
        assert isinstance(wrapper, CursorWrapper)
        assert isinstance(wrapper.cursor, psycopg.Cursor)


@pytest.mark.django_db
def test_a_statement_is_prepared_logged_and_reads_timestamps_as_django_does() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::timestamptz", [datetime(2026, 3, 2, 9, tzinfo=UTC)])
        [(expected,)] = cursor.fetchall()
    with CaptureQueriesContext(connection) as ctx, prepared_cursor() as cursor:
        assert isinstance(cursor.cursor, PreparingCursor)
        cursor.execute(
            "SELECT %s::timestamptz /* prepared cursor test */",
            [datetime(2026, 3, 2, 9, tzinfo=UTC)],
        )
        [(read,)] = cursor.fetchall()
    assert read == expected
    assert read.tzinfo == expected.tzinfo  # the connection's time zone, as Django's cursors
    # the query log shows the statement as sent, with its server-side placeholder
    assert ctx.captured_queries[-1]["sql"] == "SELECT $1::timestamptz /* prepared cursor test */"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s",
            ["%prepared cursor test%"],
        )
        assert cursor.fetchone() == (1,)
