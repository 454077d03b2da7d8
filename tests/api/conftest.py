"""Fixtures for the HTTP API: two clinics, staff of every role, patients with care teams and
enrolments on the example pathway, and clients authenticated as a given member of staff."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from uuid import uuid4

import pytest
from django.conf import settings as django_settings
from django.utils import timezone
from rest_framework.test import APIClient

from carehub.accounts.models import STAFF_ROLES, Role, User
from carehub.accounts.services import staff_create
from carehub.checkins.models import Checkin, CheckinStatus
from carehub.checkins.services import checkin_series_start, checkins_open_due
from carehub.clinics.models import Clinic
from carehub.clinics.services import clinic_create
from carehub.messaging.delivery import event as delivery_event
from carehub.messaging.models import Message, MessageStatus
from carehub.messaging.services import PATIENT, message_enqueue
from carehub.observations.models import Observation
from carehub.observations.services import (
    failed_treatment_record,
    pain_onset_record,
    procedure_record,
)
from carehub.pathways import registry as registry_module
from carehub.pathways.models import Enrolment, Proposal
from carehub.pathways.services import enrolment_start, pathway_dispatch
from carehub.patients.models import Patient
from carehub.patients.services import care_team_add, patient_register
from carehub.worklists.models import CareTask, Flag
from carehub.worklists.services import care_task_create, flag_raise

EXAMPLES = Path(__file__).resolve().parents[1] / "workflows" / "definitions"
EXAMPLE_KEY = "stepped-care-example"
PASSWORD = "a-long-test-password"


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
def other_clinic(db: None) -> Clinic:
    return clinic_create(name="Other Clinic", slug="other", time_zone="Europe/London")


@pytest.fixture
def staff(clinic: Clinic) -> dict[str, User]:
    return {
        role.value: staff_create(clinic=clinic, username=role.value, role=role, password=PASSWORD)
        for role in Role
        if role in STAFF_ROLES
    }


@pytest.fixture
def outsider(other_clinic: Clinic) -> User:
    """A coordinator of the other clinic (sees that whole clinic, nothing of ours)."""
    return staff_create(
        clinic=other_clinic, username="other-coordinator", role=Role.COORDINATOR, password=None
    )


def register(clinic: Clinic, mrn: str, given: str = "Test", family: str = "Patient") -> Patient:
    return patient_register(
        clinic=clinic, mrn=mrn, given_name=given, family_name=family, time_zone="Europe/London"
    )


@pytest.fixture
def patient(clinic: Clinic, staff: dict[str, User]) -> Patient:
    """On the care team: coordinator, physician, physical therapist (not psychologist nor
    pharmacist)."""
    patient = register(clinic, "T-1", "Alice", "Adams")
    for role in ("coordinator", "physician", "physical_therapist"):
        care_team_add(patient=patient, staff=staff[role])
    return patient


@pytest.fixture
def enrolment(patient: Patient, staff: dict[str, User]) -> Enrolment:
    return enrolment_start(
        patient=patient, definition_key=EXAMPLE_KEY, started_by=staff["coordinator"]
    )


@pytest.fixture
def foreign_enrolment(other_clinic: Clinic, outsider: User) -> Enrolment:
    """A patient of the other clinic, enrolled, with a pending proposal."""
    patient = register(other_clinic, "O-1", "Oscar", "Other")
    enrolment = enrolment_start(patient=patient, definition_key=EXAMPLE_KEY)
    to_conventional(enrolment, outsider)
    pathway_dispatch(enrolment_id=enrolment.pk, event="esi_requested", idempotency_key="esi")
    return enrolment


def make_eligible(patient: Patient) -> None:
    pain_onset_record(patient=patient, onset=date(2024, 1, 1))
    for treatment in ("gabapentinoid", "snri"):
        failed_treatment_record(
            patient=patient,
            treatment_class=treatment,
            reason="insufficient_effect",
            observed_at=timezone.now(),
        )


def to_conventional(enrolment: Enrolment, user: User) -> None:
    make_eligible(enrolment.patient)
    result = pathway_dispatch(
        enrolment_id=enrolment.pk, event="intake_complete", idempotency_key="intake", user=user
    )
    assert result.outcome == "transitioned"


@pytest.fixture
def proposal(enrolment: Enrolment, staff: dict[str, User]) -> Proposal:
    """A pending ESI escalation (the gate names the physician only)."""
    to_conventional(enrolment, staff["coordinator"])
    result = pathway_dispatch(
        enrolment_id=enrolment.pk,
        event="esi_requested",
        idempotency_key="esi",
        user=staff["physician"],
    )
    assert result.outcome == "proposed"
    return Proposal.objects.get(enrolment=enrolment)


@pytest.fixture
def task(enrolment: Enrolment) -> CareTask:
    """An open task on the physical therapist's worklist."""
    return care_task_create(
        enrolment=enrolment, discipline="physical_therapist", title="Assess", due_at=None
    )


@pytest.fixture
def flag(enrolment: Enrolment) -> Flag:
    return flag_raise(
        enrolment=enrolment,
        code="pain_spike",
        severity="warning",
        message="Pain up by 3 points",
        raised_at=timezone.now(),
    )


@pytest.fixture
def foreign_task(foreign_enrolment: Enrolment) -> CareTask:
    return care_task_create(
        enrolment=foreign_enrolment, discipline="coordinator", title="Call back", due_at=None
    )


@pytest.fixture
def foreign_flag(foreign_enrolment: Enrolment) -> Flag:
    return flag_raise(
        enrolment=foreign_enrolment,
        code="pain_spike",
        severity="urgent",
        message="Pain up by 5 points",
        raised_at=timezone.now(),
    )


@pytest.fixture
def client_for() -> Callable[[User | None], APIClient]:
    def make(user: User | None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return make


def new_key() -> dict[str, str]:
    """A new `Idempotency-Key` header for a write (pass as `**new_key()`)."""
    return {"HTTP_IDEMPOTENCY_KEY": uuid4().hex}


def assert_problem(response, status: int, code: str) -> dict:  # type: ignore[no-untyped-def,type-arg]
    """The response is an RFC 9457 problem with this status and code; returns its body."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"urn:carehub:problem:{code}"
    assert body["title"]
    assert body["detail"]
    assert body["instance"] == response.wsgi_request.get_full_path()
    return body


# --- check-ins, observations, messages ---------------------------------------------------------


def open_checkin(enrolment: Enrolment, instrument: str = "peg") -> Checkin:
    """A check-in of a new series, opened now by the scheduler's sweep (answers for 2 days)."""
    series = checkin_series_start(
        enrolment=enrolment,
        series=instrument,
        instrument=instrument,
        every=timedelta(weeks=2),
        at=timezone.now(),
    )
    checkin = series.checkins.get()
    now = timezone.now()
    Checkin.objects.filter(pk=checkin.pk).update(
        due_at=now - timedelta(minutes=1), closes_at=now + timedelta(days=2)
    )
    checkins_open_due(now=now)
    checkin.refresh_from_db()
    assert checkin.status == CheckinStatus.OPEN
    return checkin


def dead_message(patient: Patient, key: str, body: str = "Your PEG is ready: {link}") -> Message:
    """A message to the patient whose delivery gave up (its attempts used up); a notice, still
    needed (a check-in request without its check-in would no longer be, and is not resent)."""
    message = message_enqueue(
        patient=patient,
        recipient=PATIENT,
        purpose="pathway_notice",
        body=body,
        idempotency_key=key,
        why="weekly PEG",
    )
    Message.objects.filter(pk=message.pk).update(status=MessageStatus.DEAD, attempts=5)
    message.refresh_from_db()
    delivery_event(
        message, MessageStatus.DEAD, "Dead: Failed (attempt 5/5): gateway down", at=timezone.now()
    )
    return message


@pytest.fixture
def checkin(enrolment: Enrolment) -> Checkin:
    return open_checkin(enrolment)


@pytest.fixture
def foreign_checkin(foreign_enrolment: Enrolment) -> Checkin:
    return open_checkin(foreign_enrolment)


@pytest.fixture
def procedure(patient: Patient, staff: dict[str, User]) -> Observation:
    return procedure_record(
        patient=patient,
        procedure="mbb1",
        performed_at=timezone.now() - timedelta(days=1),
        recorded_by=staff["physician"],
    )


@pytest.fixture
def foreign_procedure(foreign_enrolment: Enrolment) -> Observation:
    return procedure_record(
        patient=foreign_enrolment.patient,
        procedure="mbb1",
        performed_at=timezone.now() - timedelta(days=1),
    )


@pytest.fixture
def message(patient: Patient) -> Message:
    return dead_message(patient, "test-dead-1")


@pytest.fixture
def foreign_message(foreign_enrolment: Enrolment) -> Message:
    return dead_message(foreign_enrolment.patient, "test-dead-foreign")
