"""What counts as a transient database fault (retried, its connection discarded) and what does
not (a bug or bad data: never retried), on errors the real database raises."""

from __future__ import annotations

import time

import pytest
from django.db import DatabaseError, connection, transaction

from carehub.clinics.models import Clinic
from carehub.clinics.services import clinic_create
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


def test_a_refused_lock_or_a_timeout_keeps_the_connection() -> None:
    """A concurrent change (a NOWAIT lock refused: the dispatch's conflict) or a statement
    timeout ends the statement, not the session: the connection is kept, as for a bug."""
    clinic = clinic_create(name="Lock Clinic", slug="lock-clinic")
    table = Clinic._meta.db_table
    connection.ensure_connection()
    kept_until = connection.close_at
    holder = connection.copy()  # a second session holding the clinic's row
    try:
        with holder.cursor() as cursor:
            cursor.execute("BEGIN")
            lock = f"SELECT 1 FROM {table} WHERE id = {clinic.pk:d} FOR UPDATE"  # noqa: S608
            cursor.execute(lock)
            refused = _raised(f"{lock} NOWAIT")
            cursor.execute("ROLLBACK")
    finally:
        holder.close()
    timed_out = _raised("SET LOCAL statement_timeout = '20ms'; SELECT pg_sleep(1)")
    assert describe_error(refused).startswith("OperationalError: could not obtain lock")
    assert describe_error(timed_out).startswith("OperationalError: canceling statement")
    assert connection.close_at == kept_until
    with connection.cursor() as cursor:  # and it still works
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)
