from datetime import UTC, datetime, timedelta

import pytest

from carehub.accounts.models import Role, User
from carehub.accounts.services import staff_create
from carehub.clinics.models import Clinic
from carehub.clinics.services import clinic_create
from carehub.patients.models import Patient
from carehub.patients.services import patient_register

# The clock is frozen here for every test in this package; "now" for facts is NOW unless a test
# says otherwise.
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def weeks_ago(weeks: float) -> datetime:
    return NOW - timedelta(weeks=weeks)


@pytest.fixture(autouse=True)
def frozen_clock(time_machine) -> None:  # type: ignore[no-untyped-def]
    time_machine.move_to(NOW, tick=False)


@pytest.fixture
def clinic(db: None) -> Clinic:
    return clinic_create(name="Riverside Pain Clinic", slug="riverside", time_zone="Europe/London")


@pytest.fixture
def patient(clinic: Clinic) -> Patient:
    return patient_register(
        clinic=clinic,
        mrn="RV-0001",
        given_name="Ada",
        family_name="Okafor",
        time_zone="Europe/London",
    )


@pytest.fixture
def other_patient(clinic: Clinic) -> Patient:
    return patient_register(
        clinic=clinic,
        mrn="RV-0002",
        given_name="Ben",
        family_name="Raman",
        time_zone="America/New_York",
    )


@pytest.fixture
def nurse(clinic: Clinic) -> User:
    return staff_create(clinic=clinic, username="nurse", role=Role.COORDINATOR, password=None)


@pytest.fixture
def physio(clinic: Clinic) -> User:
    """Logs physical-therapy sessions (the definition's senders of `pt_session_logged`)."""
    return staff_create(
        clinic=clinic, username="physio", role=Role.PHYSICAL_THERAPIST, password=None
    )


@pytest.fixture
def outsider(db: None) -> User:
    elsewhere = clinic_create(name="Hillside", slug="hillside")
    return staff_create(clinic=elsewhere, username="outsider", role=Role.PHYSICIAN, password=None)
