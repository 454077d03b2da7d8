"""The application's database role cannot bypass the append-only tables (ADR 0014).

The suite itself connects as that role (tests/support/db_roles.py): these tests show that every
known way around the append-only triggers is refused to it, that the owner's migrate repairs
rights given by hand, and that production's check refuses a privileged application role.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.test import override_settings
from django.utils import timezone

from carehub.audit.models import AuditEvent
from carehub.core.checks import _role_problems, check_application_role
from carehub.core.db_roles import append_only_tables, as_owner, ensure_app_role
from tests.support.celery_worker import database_url_for
from tests.support.db_roles import owner_database_url_for

ROOT = Path(__file__).resolve().parents[3]
APPEND_ONLY = ["audit_auditevent", "messaging_deliveryevent", "pathways_pathwaystep"]
BYPASSES = [
    "TRUNCATE {table}",
    "TRUNCATE {table} CASCADE",
    "ALTER TABLE {table} DISABLE TRIGGER USER",
    "ALTER TABLE {table} DISABLE TRIGGER ALL",
    "DROP TRIGGER {table}_append_only ON {table}",
    "UPDATE {table} SET id = id",
    "DELETE FROM {table}",
    "DROP TABLE {table}",
]


def refused(statement: str) -> str:
    """Run `statement` as the suite's role in a savepoint; return PostgreSQL's refusal."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement)
    except DatabaseError as exc:
        return str(exc)
    pytest.fail(f"{statement!r} was allowed to the application's role")


def test_the_suite_runs_as_an_unprivileged_role_that_is_not_the_owner(db: None) -> None:
    assert settings.DATABASE_OWNER, "the suite needs DATABASE_OWNER_URL (or the local default)"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_user, rolsuper, rolcreaterole, rolcreatedb, rolreplication"
            " FROM pg_roles WHERE rolname = current_user"
        )
        user, *attributes = cursor.fetchone()
        cursor.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()"
            " AND tableowner = current_user"
        )
        owned = cursor.fetchone()[0]
    assert user == settings.DATABASES["default"]["USER"] != settings.DATABASE_OWNER["USER"]
    assert attributes == [False, False, False, False]
    assert owned == 0


def test_the_append_only_tables_are_found_by_their_trigger(db: None) -> None:
    with connection.cursor() as cursor:
        assert set(APPEND_ONLY) <= set(append_only_tables(cursor))


@pytest.mark.parametrize("table", APPEND_ONLY)
@pytest.mark.parametrize("bypass", BYPASSES)
def test_each_bypass_of_an_append_only_table_is_refused(db: None, table: str, bypass: str) -> None:
    message = refused(bypass.format(table=table))
    assert "permission denied" in message or "must be owner" in message, message


def test_replication_mode_which_skips_triggers_is_refused(db: None) -> None:
    message = refused("SET session_replication_role = replica")
    assert "permission denied to set parameter" in message, message


def test_the_application_still_reads_and_appends(db: None) -> None:
    with connection.cursor() as cursor:
        for table in APPEND_ONLY:
            cursor.execute(
                "SELECT has_table_privilege(%s, 'SELECT'), has_table_privilege(%s, 'INSERT')",
                [table, table],
            )
            assert cursor.fetchone() == (True, True), table
        # An ordinary table: everything but the owner's rights.
        cursor.execute(
            "SELECT has_table_privilege('clinics_clinic', 'UPDATE'),"
            " has_table_privilege('clinics_clinic', 'DELETE'),"
            " has_table_privilege('clinics_clinic', 'TRUNCATE')"
        )
        assert cursor.fetchone() == (True, True, False)


def test_behind_the_rights_the_trigger_refuses_even_the_owner(transactional_db: None) -> None:
    row = AuditEvent.objects.create(action="patient.view", at=timezone.now())  # INSERT: allowed
    with as_owner() as owner, owner.cursor() as cursor:
        for statement in (
            "UPDATE audit_auditevent SET action = 'x'",
            "DELETE FROM audit_auditevent",
        ):
            with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
                cursor.execute(statement)
        # ...and on every append-only table the trigger is there and enabled.
        cursor.execute(
            "SELECT c.relname FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid"
            " JOIN pg_class c ON c.oid = t.tgrelid"
            " WHERE p.proname = 'carehub_refuse_change' AND t.tgenabled = 'O'"
        )
        assert {name for (name,) in cursor.fetchall()} >= set(APPEND_ONLY)
    assert AuditEvent.objects.get(pk=row.pk).action == "patient.view"


@pytest.fixture
def rights_given_by_hand(transactional_db: None) -> Iterator[str]:
    """The owner gives the application's role more than it should have; migrate's grant step
    (ensure_app_role) puts it right again afterwards in any case."""
    role = settings.DATABASES["default"]["USER"]
    with as_owner() as owner, owner.cursor() as cursor:
        cursor.execute(f'GRANT UPDATE, DELETE, TRUNCATE ON audit_auditevent TO "{role}"')
    try:
        yield role
    finally:
        with as_owner() as owner:
            ensure_app_role(settings.DATABASES["default"], owner)


@override_settings(DATABASE_REFUSE_PRIVILEGED_ROLE=True)
def test_the_check_refuses_rights_given_by_hand_and_migrate_takes_them_back(
    rights_given_by_hand: str,
) -> None:
    errors = check_application_role(databases=["default"])
    assert {error.id for error in errors} == {"carehub.E020"}
    text = " ".join(error.msg for error in errors)
    assert "TRUNCATE" in text
    assert "UPDATE or DELETE append-only audit_auditevent" in text

    with as_owner() as owner:
        assert ensure_app_role(settings.DATABASES["default"], owner)
    assert check_application_role(databases=["default"]) == []
    assert "permission denied" in refused("TRUNCATE audit_auditevent")


@override_settings(DATABASE_REFUSE_PRIVILEGED_ROLE=True)
def test_the_check_passes_for_the_application_role(db: None) -> None:
    assert check_application_role(databases=["default"]) == []


def test_the_check_names_a_superuser_owner_for_what_it_is(db: None) -> None:
    with connection.cursor() as cursor:
        problems = _role_problems(cursor, "default", settings.DATABASE_OWNER["USER"])
    text = " ".join(problem.msg for problem in problems)
    assert "is a superuser" in text
    assert "owns" in text


def production_check(database_url: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "carehub.example",
        "MESSAGING_SMS_GATEWAY": "tests.support.gateways.ProviderSmsGateway",
        "DATABASE_URL": database_url,
    }
    env.pop("DATABASE_OWNER_URL", None)  # an application process has no owner credentials
    command = [sys.executable, "manage.py", "check", "--deploy", "--database", "default"]
    return subprocess.run(
        [*command, "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_production_check_passes_as_the_application_role(db: None) -> None:
    result = production_check(database_url_for(connection.settings_dict["NAME"]))
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_check_refuses_the_superuser_that_owns_the_tables(db: None) -> None:
    result = production_check(owner_database_url_for(connection.settings_dict["NAME"]))
    assert result.returncode != 0
    assert "carehub.E020" in result.stderr
    assert "is a superuser" in result.stderr
