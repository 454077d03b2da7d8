"""`manage.py translations check|update|compile`: the patient pages' catalogues (ADR 0020).

check: every message patients may read has a finished translation in every language, and the
compiled `.mo` matches its `.po` (exit 1 with the list otherwise). update: add new messages to
each `.po` (untranslated) and drop unused ones. compile: write the `.mo` files. Needs Babel (the
`dev` extra)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from carehub.portal import translations


class Command(BaseCommand):
    help = "Check, update or compile the translations of the patient pages and messages."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["check", "update", "compile"])

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        try:
            import babel  # noqa: F401
        except ImportError as exc:
            raise CommandError(
                "Babel is needed: pip install 'babel>=2.14' (the dev extra)."
            ) from exc
        if action == "update":
            for language, missing in translations.update_catalogs().items():
                self.stdout.write(f"{translations.po_path(language)}: {missing} to translate")
            return
        if action == "compile":
            for path in translations.compile_catalogs():
                self.stdout.write(f"wrote {path}")
            return
        found = [
            p for language in translations.languages() for p in translations.problems(language)
        ]
        for problem in found:
            self.stderr.write(problem)
        if found:
            raise CommandError(f"{len(found)} translation problem(s).")
        self.stdout.write(f"{len(translations.patient_messages())} messages, every one translated.")
