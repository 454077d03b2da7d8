"""Databases of the bench: created when missing, migrated, and extra aliases for P3."""

from __future__ import annotations

import psycopg
from psycopg import sql

from bench.env import with_database


def _server_dsn(database_url: str) -> str:
    return with_database(database_url, "postgres").replace("postgres://", "postgresql://", 1)


def database_exists(database_url: str, name: str) -> bool:
    with psycopg.connect(_server_dsn(database_url), autocommit=True) as conn:
        return (
            conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            is not None
        )


def ensure_database(database_url: str, name: str, *, template: str | None = None) -> bool:
    """Create database `name` (from `template` when given) unless it exists; True if created."""
    with psycopg.connect(_server_dsn(database_url), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            return False
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            statement = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        conn.execute(statement)
        return True


def drop_database(database_url: str, name: str) -> None:
    with psycopg.connect(_server_dsn(database_url), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def add_alias(alias: str, name: str) -> None:
    """Make database `name` (same server and options as `default`) usable as `alias`."""
    from django.db import connections

    settings_dict = {**connections.databases["default"], "NAME": name}
    connections.databases[alias] = settings_dict
    # Django's ConnectionHandler caches settings; a new alias is picked up on first use.
    connections.settings[alias] = settings_dict


def migrate(alias: str = "default") -> None:
    from django.core.management import call_command

    call_command("migrate", database=alias, verbosity=0, interactive=False)
