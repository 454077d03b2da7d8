"""What counts as a transient database fault (retried, its connection discarded) and what does
not (a bug or bad data: never retried), on errors the real database raises."""

from __future__ import annotations

import time

import pytest
from django.db import DatabaseError, connection, transaction

from carehub.core.retry import describe_error, is_transient, is_transient_database_error

pytestmark = pytest.mark.django_db(transaction=True)


def _raised(sql: str) -> DatabaseError:
    with pytest.raises(DatabaseError) as caught, transaction.atomic(), connection.cursor() as c:
        c.execute(sql)
    return caught.value


def test_a_read_only_refusal_is_transient_and_discards_the_connection() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SET default_transaction_read_only = on")
    try:
        error = _raised("CREATE TEMPORARY TABLE t_refused (id int)")
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET default_transaction_read_only = off")
    assert is_transient_database_error(error)
    assert is_transient(error)
    assert "ReadOnlySqlTransaction" not in describe_error(error)  # Django's class is named
    assert describe_error(error).startswith("InternalError: cannot execute")
    assert connection.close_at is not None
    assert connection.close_at <= time.monotonic()


def test_bugs_and_bad_data_are_not_transient() -> None:
    connection.ensure_connection()
    kept_until = connection.close_at  # CONN_MAX_AGE from now
    syntax = _raised("SELEC 1")
    missing = _raised("SELECT * FROM no_such_table")
    division = _raised("SELECT 1 / 0")
    for error in (syntax, missing, division):
        assert not is_transient_database_error(error), error
    assert connection.close_at == kept_until  # such a connection is kept
    assert not is_transient(ValueError("not a database error"))
