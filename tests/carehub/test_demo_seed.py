import pytest
from django.core.management import call_command

from carehub.accounts.models import Role, User
from carehub.clinics.models import Clinic
from carehub.patients.models import CareTeamMembership, Patient

pytestmark = pytest.mark.django_db


def counts() -> tuple[int, int, int, int]:
    return (
        Clinic.objects.count(),
        User.objects.count(),
        Patient.objects.count(),
        CareTeamMembership.objects.count(),
    )


def test_seed_creates_staff_of_every_discipline_and_patients_with_care_teams(capsys) -> None:  # type: ignore[no-untyped-def]
    call_command("seed_demo")
    clinic = Clinic.objects.get(slug="riverside")
    assert set(User.objects.filter(clinic=clinic).values_list("role", flat=True)) == set(
        Role.values
    )
    patients = Patient.objects.filter(clinic=clinic)
    assert patients.count() >= 8
    assert len(set(patients.values_list("time_zone", flat=True))) >= 5
    for patient in patients:
        roles = set(patient.care_team.values_list("staff__role", flat=True))
        assert {Role.COORDINATOR, Role.PHYSICIAN, Role.PHYSICAL_THERAPIST} <= roles
    out = capsys.readouterr().out
    assert "carehub-demo" in out
    assert "nurse" in out
    admin = User.objects.get(username="admin")
    assert admin.is_staff
    assert admin.check_password("carehub-demo")


def test_seed_is_idempotent() -> None:
    call_command("seed_demo")
    first = counts()
    call_command("seed_demo")
    assert counts() == first
