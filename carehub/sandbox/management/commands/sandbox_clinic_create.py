"""`manage.py sandbox_clinic_create --name NAME --slug SLUG [--time-zone ZONE]`: a new sandbox
clinic (ADR 0024) for an integrator or a trainer, its test clock starting now. Sandbox or
production is fixed at creation: an existing clinic is never turned into a sandbox."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from carehub.clinics.models import Clinic
from carehub.clinics.services import clinic_create
from carehub.core.exceptions import ApplicationError


class Command(BaseCommand):
    help = "Create a sandbox clinic with a test clock (never a production clinic turned into one)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--name", required=True, help="the clinic's name")
        parser.add_argument("--slug", required=True, help="a new, unused slug")
        parser.add_argument("--time-zone", default="UTC", help="IANA time zone (default UTC)")

    def handle(self, *args: Any, **options: Any) -> None:
        if Clinic.objects.filter(slug=options["slug"]).exists():
            raise CommandError(
                f"A clinic {options['slug']!r} exists already; sandbox or production is fixed "
                "when a clinic is created: choose a new slug."
            )
        try:
            clinic = clinic_create(
                name=options["name"],
                slug=options["slug"],
                time_zone=options["time_zone"],
                sandbox=True,
            )
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from error
        except ApplicationError as error:
            raise CommandError(error.message) from error
        self.stdout.write(
            f"Sandbox clinic {clinic.slug} (id {clinic.pk}) created; its test clock is at "
            f"{clinic.test_clock_at:%Y-%m-%d %H:%M:%S %Z}. Add its clinic admin in the admin."
        )
