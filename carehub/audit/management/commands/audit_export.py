"""`manage.py audit_export --clinic SLUG --since YYYY-MM-DD [--until YYYY-MM-DD] > file.csv`:
a clinic's audit events as CSV. Days are the clinic's local days, `--until` included."""

from __future__ import annotations

from argparse import ArgumentParser
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.core.management.base import BaseCommand, CommandError

from carehub.audit.export import export_queryset, write_csv
from carehub.audit.models import AuditEvent
from carehub.clinics.models import Clinic


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as error:
        raise CommandError(f"Not a date (YYYY-MM-DD): {value!r}") from error


class Command(BaseCommand):
    help = "Write a clinic's audit events as CSV to standard output."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--clinic", required=True, help="clinic slug")
        parser.add_argument("--since", required=True, help="first day, YYYY-MM-DD")
        parser.add_argument("--until", default=None, help="last day (included), YYYY-MM-DD")

    def handle(self, *args: Any, **options: Any) -> None:
        clinic = Clinic.objects.filter(slug=options["clinic"]).first()
        if clinic is None:
            raise CommandError(f"No clinic with slug {options['clinic']!r}.")
        zone = ZoneInfo(clinic.time_zone)
        since = _day(options["since"])
        events = AuditEvent.objects.filter(
            clinic=clinic, at__gte=datetime.combine(since, time.min, tzinfo=zone)
        )
        if options["until"]:
            until = _day(options["until"])
            if until < since:
                raise CommandError("--until is before --since.")
            end = datetime.combine(until + timedelta(days=1), time.min, tzinfo=zone)
            events = events.filter(at__lt=end)
        count = write_csv(export_queryset(events).iterator(chunk_size=2000), self.stdout)
        self.stderr.write(f"{count} audit events of {clinic.slug}.")
