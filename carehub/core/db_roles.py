"""Two database roles: an owner that migrates, and the application's role that cannot bypass.

The owner (`DATABASE_OWNER_URL`) owns every table and runs `manage.py migrate` and `flush`. The
application (`DATABASE_URL`: web, workers, beat) logs in as a role that owns nothing, is not a
superuser, and has SELECT/INSERT/UPDATE/DELETE on the tables, except only SELECT/INSERT on the
append-only ones (every table with a `carehub_refuse_change()` trigger: the audit trail, the
pathway step log, delivery events). Without ownership it cannot TRUNCATE, ALTER TABLE ... DISABLE
TRIGGER or drop the triggers; without superuser it cannot SET session_replication_role = replica.

`ensure_app_role` creates that role (when the owner may create roles) and grants exactly those
rights after every migrate, so tables added later are covered the same way (see ADR 0014).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from psycopg import sql

logger = logging.getLogger(__name__)

# The connection settings that say who logs in where; NAME stays the connection's own (the test
# runner renames it to the test database).
CREDENTIAL_KEYS = ("USER", "PASSWORD", "HOST", "PORT", "OPTIONS")
APP_TABLE_PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE"
APPEND_ONLY_PRIVILEGES = "SELECT, INSERT"
APPEND_ONLY_TRIGGER_FUNCTION = "carehub_refuse_change"

APPEND_ONLY_TABLES_SQL = """
SELECT DISTINCT c.relname
FROM pg_trigger t
JOIN pg_class c ON c.oid = t.tgrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_proc p ON p.oid = t.tgfoid
WHERE p.proname = %s AND n.nspname = current_schema() AND NOT t.tgisinternal
ORDER BY c.relname
"""


class RoleSetupError(RuntimeError):
    """The application's role could not be created or given its rights; the message says why."""


def owner_settings() -> Mapping[str, Any] | None:
    """The owner's connection settings (from DATABASE_OWNER_URL), or None when not configured."""
    return getattr(settings, "DATABASE_OWNER", None)


def separate_roles(alias: str = DEFAULT_DB_ALIAS) -> bool:
    """True when an owner is configured and logs in as another role than the application."""
    owner = owner_settings()
    return (
        owner is not None
        and bool(owner)
        and owner.get("USER") != connections[alias].settings_dict.get("USER")
    )


@contextmanager
def as_owner(alias: str = DEFAULT_DB_ALIAS) -> Iterator[BaseDatabaseWrapper]:
    """Use connection `alias` as the owner inside the block (this thread only).

    Closes the application's connection, logs in as DATABASE_OWNER_URL's role on the same
    database, and closes that again on the way out. Without an owner configured (or when the
    connection already is the owner) the connection is used as it is.
    """
    connection = connections[alias]
    owner = owner_settings()
    if not owner or not separate_roles(alias):
        yield connection
        return
    original = connection.settings_dict
    connection.close()
    connection.settings_dict = {
        **original,
        **{key: owner.get(key, original.get(key)) for key in CREDENTIAL_KEYS},
    }
    try:
        yield connection
    finally:
        connection.close()
        # The test runner renames the database while the owner is connected: keep the new name.
        original["NAME"] = connection.settings_dict["NAME"]
        connection.settings_dict = original


def append_only_tables(cursor: Any) -> list[str]:
    cursor.execute(APPEND_ONLY_TABLES_SQL, [APPEND_ONLY_TRIGGER_FUNCTION])
    return [row[0] for row in cursor.fetchall()]


def ensure_app_role(
    app: Mapping[str, Any], owner_connection: BaseDatabaseWrapper, *, log: Any = None
) -> bool:
    """Create the application's role if missing and grant it exactly its rights, as the owner.

    `app` is the application's connection settings (USER, PASSWORD). Returns False (and does
    nothing) when the application logs in as the owner itself. Idempotent, and safe next to
    other databases of the same server doing the same at the same time: roles are shared by
    every database of a server, so an existing role is only altered when it must be.
    """
    role, password = app.get("USER"), app.get("PASSWORD")
    # One transaction: running processes never see the rights half re-granted.
    with transaction.atomic(using=owner_connection.alias), owner_connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        owner_role = cursor.fetchone()[0]
        if not role or role == owner_role:
            return False
        _ensure_login_role(cursor, role, password)
        _grant(cursor, role, owner_role)
    if log:
        log(f"Database role {role}: rights granted (only SELECT/INSERT on append-only tables)")
    return True


def _ensure_login_role(cursor: Any, role: str, password: str | None) -> None:
    cursor.execute(
        "SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, rolcanlogin"
        " FROM pg_roles WHERE rolname = %s",
        [role],
    )
    row = cursor.fetchone()
    if row is None:
        statement = sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role))
        if password:
            statement = sql.SQL("{} PASSWORD {}").format(statement, sql.Literal(password))
        try:
            with transaction.atomic(using=cursor.db.alias):  # a savepoint
                cursor.execute(statement)
        except DatabaseError as exc:
            # Created at the same moment by a migrate of another database on this server.
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
            if cursor.fetchone() is None:
                raise RoleSetupError(
                    f"cannot create database role {role!r} ({exc}); create it as a LOGIN role "
                    "with no other attributes, or give the owner CREATEROLE"
                ) from exc
        return
    superuser, createrole, createdb, replication, bypassrls, can_login = row
    if superuser or createrole or createdb or replication or bypassrls or not can_login:
        try:
            cursor.execute(
                sql.SQL(
                    "ALTER ROLE {} LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB NOREPLICATION "
                    "NOBYPASSRLS"
                ).format(sql.Identifier(role))
            )
        except DatabaseError as exc:
            raise RoleSetupError(
                f"database role {role!r} has rights it must not have (superuser, CREATEROLE, "
                f"CREATEDB, REPLICATION or BYPASSRLS) and the owner cannot take them: {exc}"
            ) from exc
    if password:  # rotating the password: change DATABASE_URL, run migrate again
        cursor.execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal(password))
        )


def _grant(cursor: Any, role: str, owner_role: str) -> None:
    app, owner = sql.Identifier(role), sql.Identifier(owner_role)
    statements = [
        "GRANT CONNECT ON DATABASE {database} TO {app}",
        "GRANT USAGE ON SCHEMA {schema} TO {app}",
        # Everything the role may have been given before, then exactly what it needs.
        "REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {app}",
        f"GRANT {APP_TABLE_PRIVILEGES} ON ALL TABLES IN SCHEMA {{schema}} TO {{app}}",
        "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {app}",
        # Tables the owner creates later (before the next migrate re-grants): the same rights.
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {{owner}} IN SCHEMA {{schema}} "
        f"GRANT {APP_TABLE_PRIVILEGES} ON TABLES TO {{app}}",
        "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {schema} "
        "GRANT USAGE, SELECT ON SEQUENCES TO {app}",
    ]
    cursor.execute("SELECT current_database(), current_schema()")
    database, schema = cursor.fetchone()
    names = {
        "app": app,
        "owner": owner,
        "database": sql.Identifier(database),
        "schema": sql.Identifier(schema),
    }
    for statement in statements:
        cursor.execute(sql.SQL(statement).format(**names))
    for table in append_only_tables(cursor):
        cursor.execute(
            sql.SQL("REVOKE UPDATE, DELETE ON {} FROM {}").format(sql.Identifier(table), app)
        )
