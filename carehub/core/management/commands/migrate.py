"""`manage.py migrate` as the owner, then the application's role and rights (ADR 0014).

With DATABASE_OWNER_URL set, the migrations run as that role (which owns the tables); then
`carehub.core.db_roles.ensure_app_role` creates DATABASE_URL's role if it is missing and grants
it exactly its rights, append-only tables included. Without it, Django's migrate as it is.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.commands.migrate import Command as DjangoMigrateCommand

from carehub.core.db_roles import as_owner, ensure_app_role


class Command(DjangoMigrateCommand):
    help = (
        "Apply migrations as the owner (DATABASE_OWNER_URL), then grant the application's "
        "role (DATABASE_URL) its rights."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        alias = options["database"]
        # The application's settings (as_owner swaps only the connection's, never these).
        app = settings.DATABASES[alias]
        with as_owner(alias) as connection:
            super().handle(*args, **options)
            if options.get("plan") or options.get("check_unapplied"):
                return
            log = self.stdout.write if options["verbosity"] >= 1 else None
            ensure_app_role(app, connection, log=log)
