"""Progress notes overdue: a task for the therapist, once per session."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from carehub.accounts.models import Role
from carehub.accounts.services import staff_create
from carehub.clinics.services import clinic_create
from carehub.observations.services import session_record
from carehub.pathways.services import enrolment_start
from carehub.patients.models import Patient
from carehub.patients.services import patient_register
from carehub.worklists.models import CareTask
from carehub.worklists.services import session_notes_overdue_tasks

pytestmark = pytest.mark.django_db


@pytest.fixture
def patient() -> Patient:
    clinic = clinic_create(name="Notes Clinic", slug="notes")
    patient = patient_register(
        clinic=clinic, mrn="N-1", given_name="Nia", family_name="Notes", time_zone="Europe/London"
    )
    enrolment_start(patient=patient, definition_key="intractable-pain")
    return patient


def test_a_session_without_a_note_becomes_a_task_once(patient: Patient, settings) -> None:  # type: ignore[no-untyped-def]
    settings.SESSION_NOTES_DUE_HOURS = 48
    therapist = staff_create(
        clinic=patient.clinic, username="pt", role=Role.PHYSICAL_THERAPIST, password=None
    )
    now = timezone.now()
    session_record(
        patient=patient,
        discipline="pt",
        attended=True,
        observed_at=now - timedelta(days=3),
        recorded_by=therapist,
    )
    session_record(
        patient=patient,
        discipline="pt",
        attended=True,
        observed_at=now - timedelta(days=4),
        notes="Graded walking, 20 min",
    )
    session_record(
        patient=patient, discipline="cbt", attended=False, observed_at=now - timedelta(days=5)
    )
    session_record(
        patient=patient, discipline="cbt", attended=True, observed_at=now - timedelta(hours=20)
    )

    assert session_notes_overdue_tasks(now=now) == 1
    assert session_notes_overdue_tasks(now=now) == 0
    [task] = CareTask.objects.filter(title__startswith="Progress note overdue")
    assert task.discipline == "physical_therapist"
    assert task.patient == patient

    # Two days later the CBT session's note is overdue too.
    assert session_notes_overdue_tasks(now=now + timedelta(days=2)) == 1
    assert CareTask.objects.filter(discipline="psychologist").count() == 1
