"""`manage.py flush` as the owner: the application's role may not TRUNCATE (ADR 0014)."""

from __future__ import annotations

from typing import Any

from django.core.management.commands.flush import Command as DjangoFlushCommand

from carehub.core.db_roles import as_owner


class Command(DjangoFlushCommand):
    def handle(self, **options: Any) -> None:
        with as_owner(options["database"]):
            super().handle(**options)
