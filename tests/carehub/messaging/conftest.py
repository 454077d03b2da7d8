"""Fixtures for the messaging tests: a clinic in New York, staff of each role, a patient with a
phone, an e-mail address and a care team."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from celery.signals import before_task_publish

from carehub.accounts.models import Role, User
from carehub.accounts.services import staff_create
from carehub.clinics.models import Clinic
from carehub.clinics.services import clinic_create
from carehub.patients.models import Patient
from carehub.patients.services import care_team_add, patient_register
from tests.support.celery_worker import purge_queue

# A Tuesday, 15:00 in New York (EST, UTC-5): inside the default 09:00-20:00 send window.
WEEKDAY_AFTERNOON = datetime(2026, 2, 10, 20, 0, tzinfo=UTC)


@pytest.fixture
def clinic(db: None) -> Clinic:
    return clinic_create(name="Harbour Pain Clinic", slug="harbour", time_zone="America/New_York")


@pytest.fixture
def staff(clinic: Clinic) -> dict[str, User]:
    return {
        role.value: staff_create(
            clinic=clinic,
            username=role.value,
            role=role,
            password=None,
            email=f"{role.value}@harbour.example",
        )
        for role in Role
    }


@pytest.fixture
def patient(clinic: Clinic, staff: dict[str, User]) -> Patient:
    patient = patient_register(
        clinic=clinic, mrn="H-1", given_name="Ada", family_name="Lovelace",
        time_zone="America/New_York", phone="+15550100001", email="ada@example.org",
    )  # fmt: skip
    for role in ("coordinator", "physician", "physical_therapist", "psychologist"):
        care_team_add(patient=patient, staff=staff[role])
    return patient


@pytest.fixture
def published_batches() -> Iterator[list[list[int]]]:
    """The ids of every send task this process publishes while the test runs, task by task
    (the test queue is purged before and after)."""
    batches: list[list[int]] = []

    def record(sender: str | None = None, body: Any = None, **kwargs: Any) -> None:
        if sender == "carehub.messaging.send_many":
            batches.append(body[0][0])

    before_task_publish.connect(record, weak=False)
    purge_queue()
    yield batches
    before_task_publish.disconnect(record)
    purge_queue()
