from datetime import timedelta

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


def test_seeded_patients_stand_at_different_stages_with_histories() -> None:
    from carehub.pathways.models import Enrolment, PathwayStep, Proposal

    call_command("seed_demo")
    states = {
        e.patient.mrn: e.state_of("ladder")
        for e in Enrolment.objects.select_related("patient").filter(
            definition_key="intractable-pain"
        )
    }
    assert states == {
        "RP-1001": "intake",
        "RP-1002": "conventional",
        "RP-1003": "interventional_review",
        "RP-1004": "rfa_followup",
        "RP-1005": "psych_treatment",
        "RP-1006": "scs_trial",
        "RP-1007": "scs_followup",
        "RP-1008": "pump_active",
    }
    # RP-1003's block waits for the physician; the others' escalations were approved.
    [pending] = Proposal.objects.filter(status="pending")
    assert (pending.enrolment.patient.mrn, pending.target) == ("RP-1003", "mbb1")
    assert Proposal.objects.filter(status="approved").count() >= 8
    # Months of history: weekly scores and a long step log.
    steps = PathwayStep.objects.filter(enrolment__patient__mrn="RP-1004")
    assert steps.count() >= 10
    assert steps.order_by("at").first().at < steps.order_by("at").last().at - timedelta(days=90)
    assert Patient.objects.get(mrn="RP-1004").observations.filter(kind="score").count() >= 15
