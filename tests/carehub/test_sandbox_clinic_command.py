"""`manage.py sandbox_clinic_create`: a new sandbox clinic with its test clock; an existing
clinic is never turned into one, and bad input changes nothing."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from carehub.clinics.models import Clinic
from carehub.clinics.services import clinic_create

pytestmark = pytest.mark.django_db


def test_creates_a_sandbox_with_its_test_clock() -> None:
    out = io.StringIO()
    call_command(
        "sandbox_clinic_create", "--name", "Integration sandbox", "--slug", "acme-sandbox",
        "--time-zone", "Europe/Paris", stdout=out,
    )  # fmt: skip
    clinic = Clinic.objects.get(slug="acme-sandbox")
    assert clinic.is_sandbox
    assert clinic.test_clock_at is not None
    assert "acme-sandbox" in out.getvalue()


def test_an_existing_clinic_or_bad_input_is_refused() -> None:
    clinic_create(name="Riverside", slug="riverside")
    with pytest.raises(CommandError, match="fixed"):
        call_command("sandbox_clinic_create", "--name", "X", "--slug", "riverside")
    with pytest.raises(CommandError):
        call_command(
            "sandbox_clinic_create", "--name", "X", "--slug", "x", "--time-zone", "Mars/Base"
        )
    assert not Clinic.objects.get(slug="riverside").is_sandbox
    assert not Clinic.objects.filter(slug="x").exists()
