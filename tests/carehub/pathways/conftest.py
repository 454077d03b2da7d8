"""Fixtures for the pathway persistence tests: a clinic, staff of each role, a patient with a
care team, and the example definition published next to the built-in ones."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from carehub.accounts.models import Role, User
from carehub.accounts.services import staff_create
from carehub.clinics.models import Clinic
from carehub.clinics.services import clinic_create
from carehub.pathways import registry as registry_module
from carehub.pathways.models import Enrolment
from carehub.pathways.services import enrolment_start
from carehub.patients.models import Patient
from carehub.patients.services import care_team_add, patient_register

EXAMPLES = Path(__file__).resolve().parents[2] / "workflows" / "definitions"
EXAMPLE_KEY = "stepped-care-example"


@pytest.fixture(autouse=True)
def published_examples(settings) -> Iterator[None]:  # type: ignore[no-untyped-def]
    settings.PATHWAY_DIRS = [*django_settings.PATHWAY_DIRS, EXAMPLES]
    registry_module.registry.cache_clear()
    yield
    registry_module.registry.cache_clear()


@pytest.fixture
def clinic(db: None) -> Clinic:
    return clinic_create(name="Test Pain Clinic", slug="test", time_zone="Europe/London")


@pytest.fixture
def staff(clinic: Clinic) -> dict[str, User]:
    return {
        role.value: staff_create(clinic=clinic, username=role.value, role=role, password=None)
        for role in Role
    }


@pytest.fixture
def patient(clinic: Clinic, staff: dict[str, User]) -> Patient:
    patient = patient_register(
        clinic=clinic,
        mrn="T-1",
        given_name="Test",
        family_name="Patient",
        time_zone="Europe/London",
    )
    for role in ("coordinator", "physician", "physical_therapist", "psychologist"):
        care_team_add(patient=patient, staff=staff[role])
    return patient


@pytest.fixture
def enrolment(patient: Patient, staff: dict[str, User]) -> Enrolment:
    return enrolment_start(
        patient=patient, definition_key=EXAMPLE_KEY, started_by=staff["coordinator"]
    )
