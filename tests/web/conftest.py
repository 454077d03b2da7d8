"""Fixtures for the staff web UI: two clinics, staff of every role, patients on the built-in
intractable-pain pathway (through the same services a clinic uses), and logged-in clients."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from django.test import Client

from carehub.accounts.models import STAFF_ROLES, Role, User
from carehub.accounts.services import staff_create
from carehub.clinics.models import Clinic
from carehub.clinics.services import clinic_create
from carehub.pathways.models import Enrolment, Proposal, ProposalStatus
from carehub.patients.models import Patient
from carehub.patients.services import care_team_add, patient_account_create, patient_register
from tests.web.histories import Story, block_proposed, build, early_conventional, intake_only

PASSWORD = "a-long-test-password"
TEAM = ("coordinator", "physician", "physical_therapist")


@pytest.fixture
def clinic(db: None) -> Clinic:
    return clinic_create(name="Test Pain Clinic", slug="test", time_zone="Europe/London")


@pytest.fixture
def other_clinic(db: None) -> Clinic:
    return clinic_create(name="Other Clinic", slug="other", time_zone="Europe/London")


def make_team(clinic: Clinic, prefix: str = "", last_name: str = "Tester") -> dict[str, User]:
    """One member of staff per role (username: prefix + role), all with PASSWORD."""
    team = {}
    for role in Role:
        if role in STAFF_ROLES:
            team[role.value] = staff_create(
                clinic=clinic, username=f"{prefix}{role.value}", role=role, password=PASSWORD,
                first_name=role.label.split()[0], last_name=last_name,
            )  # fmt: skip
    return team


@pytest.fixture
def staff(clinic: Clinic) -> dict[str, User]:
    return make_team(clinic)


@pytest.fixture
def outsider(other_clinic: Clinic) -> User:
    return staff_create(
        clinic=other_clinic, username="other-coordinator", role=Role.COORDINATOR, password=None
    )


def register(clinic: Clinic, mrn: str, given: str = "Test", family: str = "Patient") -> Patient:
    return patient_register(
        clinic=clinic, mrn=mrn, given_name=given, family_name=family, time_zone="Europe/London"
    )


def on_team(patient: Patient, staff: dict[str, User], roles: tuple[str, ...] = TEAM) -> Patient:
    for role in roles:
        care_team_add(patient=patient, staff=staff[role])
    return patient


def with_history(
    patient: Patient, staff: dict[str, User], history: Callable[[Story], None], days_ago: int
) -> Enrolment:
    return build(patient, staff, history, days_ago)


@pytest.fixture
def patient(clinic: Clinic, staff: dict[str, User]) -> Patient:
    """On conventional care, care team: coordinator, physician, physical therapist."""
    patient = on_team(register(clinic, "T-1", "Alice", "Adams"), staff)
    with_history(patient, staff, early_conventional, 45)
    return patient


@pytest.fixture
def proposed(clinic: Clinic, staff: dict[str, User]) -> Proposal:
    """A patient whose first medial branch block waits for a physician's approval."""
    patient = on_team(register(clinic, "T-2", "Bea", "Brown"), staff)
    enrolment = with_history(patient, staff, block_proposed, 100)
    return Proposal.objects.get(enrolment=enrolment, status=ProposalStatus.PENDING)


@pytest.fixture
def foreign_patient(other_clinic: Clinic, outsider: User) -> Patient:
    patient = register(other_clinic, "O-1", "Oscar", "Other")
    staff = dict.fromkeys(STAFF_ROLES, outsider)
    with_history(patient, staff, intake_only, 2)
    return patient


@pytest.fixture
def patient_user(patient: Patient) -> User:
    return patient_account_create(patient=patient, username="alice", password=PASSWORD)


@pytest.fixture
def client_for() -> Callable[[User], Client]:
    def make(user: User) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return make


def form_key(html: str, action: str) -> str:
    """The one-time key rendered into the form posting to `action`."""
    start = html.index(f'action="{action}"')
    match = re.search(r'name="[^"]*form_key" value="([^"]+)"', html[start:])
    assert match, f"no form_key in the form for {action}"
    return match.group(1)
