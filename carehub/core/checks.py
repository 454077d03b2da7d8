"""`carehub.E020`: production refuses an application database role that could bypass the
append-only tables (ADR 0014).

A database check (it connects as the application): `manage.py check --deploy --database
default` (docker compose runs it after migrating). `migrate` itself, connected as the owner,
skips it and grants the application's rights afterwards. On when DATABASE_REFUSE_PRIVILEGED_ROLE
is true (the production default).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register
from django.db import DatabaseError, connections

from carehub.core.db_roles import APPEND_ONLY_TABLES_SQL, APPEND_ONLY_TRIGGER_FUNCTION

HINT = (
    "Run the application as a role that owns nothing (DATABASE_URL) and migrate as the owner "
    "(DATABASE_OWNER_URL): `manage.py migrate` creates the application's role and grants its "
    "rights. See README, Operating carehub, Database roles."
)

# The role's own attributes, then what it may do to the tables of the current schema.
PRIVILEGES_SQL = """
SELECT r.rolsuper, r.rolbypassrls, r.rolreplication,
       array(SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
               AND pg_has_role(r.rolname, c.relowner, 'USAGE') ORDER BY 1),
       array(SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
               AND (has_table_privilege(r.rolname, c.oid, 'TRUNCATE')
                    OR has_table_privilege(r.rolname, c.oid, 'TRIGGER')) ORDER BY 1),
       has_schema_privilege(r.rolname, current_schema(), 'CREATE')
FROM pg_roles r WHERE r.rolname = %s
"""


@register(Tags.database, Tags.security, "carehub")
def check_application_role(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[CheckMessage]:
    if not databases or not getattr(settings, "DATABASE_REFUSE_PRIVILEGED_ROLE", False):
        return []
    errors: list[CheckMessage] = []
    for alias in databases:
        connection = connections[alias]
        if connection.vendor != "postgresql":
            continue
        role = settings.DATABASES[alias].get("USER") or ""
        if connection.settings_dict.get("USER") != role:
            continue  # connected as the owner (migrate): it grants the rights right afterwards
        try:
            with connection.cursor() as cursor:
                if not role:
                    cursor.execute("SELECT session_user")
                    role = cursor.fetchone()[0]
                errors += _role_problems(cursor, alias, role)
        except DatabaseError as exc:
            errors.append(
                Error(f"cannot check database role of {alias!r}: {exc}", id="carehub.E020")
            )
    return errors


def _role_problems(cursor: Any, alias: str, role: str) -> list[CheckMessage]:
    cursor.execute(PRIVILEGES_SQL, [role])
    row = cursor.fetchone()
    if row is None:
        return []  # cannot be: we are logged in as it
    superuser, bypassrls, replication, owned, truncate_or_trigger, create = row
    cursor.execute(APPEND_ONLY_TABLES_SQL, [APPEND_ONLY_TRIGGER_FUNCTION])
    append_only = [name for (name,) in cursor.fetchall()]
    changeable = []
    for table in append_only:
        cursor.execute(
            "SELECT has_table_privilege(%s, %s, 'UPDATE') OR has_table_privilege(%s, %s, 'DELETE')",
            [role, table, role, table],
        )
        if cursor.fetchone()[0]:
            changeable.append(table)
    found = []
    if superuser:
        found.append("is a superuser (it can switch the append-only triggers off)")
    if bypassrls or replication:
        found.append("has BYPASSRLS or REPLICATION")
    if owned:
        found.append(f"owns {len(owned)} table(s) (e.g. {owned[0]}): it can ALTER and TRUNCATE")
    if truncate_or_trigger:
        found.append(f"may TRUNCATE or create triggers on {', '.join(truncate_or_trigger[:3])}")
    if create:
        found.append("may create objects in the schema")
    if changeable:
        found.append(f"may UPDATE or DELETE append-only {', '.join(changeable)}")
    return [
        Error(
            f"the application's database role {role!r} ({alias}) {problem}",
            hint=HINT,
            id="carehub.E020",
        )
        for problem in found
    ]
