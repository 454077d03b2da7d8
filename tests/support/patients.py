"""A clinic with a care team and enrolled patients who can answer check-ins: the shared setup of
the patient-page tests (Django client and browser)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time, timedelta

from django.utils import timezone

from carehub.accounts.models import Role, User
from carehub.accounts.services import staff_create
from carehub.checkins.models import Checkin
from carehub.checkins.services import checkin_series_start, checkins_open_due
from carehub.clinics.models import Clinic
from carehub.clinics.services import clinic_create
from carehub.messaging.delivery import message_send
from carehub.messaging.models import Message
from carehub.pathways.models import Enrolment
from carehub.pathways.services import enrolment_start
from carehub.patients.models import Patient
from carehub.patients.services import care_team_add, patient_account_create, patient_register
from tests.support.gateways import link_token, patients_phone

PASSWORD = "a-long-test-passphrase-7"


@dataclass
class Clinicians:
    clinic: Clinic
    coordinator: User
    physician: User
    psychologist: User


def clinic_with_team(slug: str = "pp") -> Clinicians:
    clinic = clinic_create(name=f"Clinic {slug}", slug=slug, time_zone="Europe/London")
    users = {
        role: staff_create(
            clinic=clinic,
            username=f"{slug}-{role.value}",
            role=role,
            password=None,
            email=f"{role.value}@{slug}.example",
        )
        for role in (Role.COORDINATOR, Role.PHYSICIAN, Role.PSYCHOLOGIST)
    }
    return Clinicians(
        clinic, users[Role.COORDINATOR], users[Role.PHYSICIAN], users[Role.PSYCHOLOGIST]
    )


def enrolled_patient(team: Clinicians, mrn: str, *, username: str | None = None) -> Enrolment:
    """A patient on the intractable-pain pathway (awake all day: a 00:00-23:59 send window),
    with their own login when `username` is given."""
    patient = patient_register(
        clinic=team.clinic, mrn=mrn, given_name=f"Pat{mrn[-1]}", family_name="Ient",
        time_zone="Europe/London", phone="+447700900123", email=f"{mrn.lower()}@example.org",
        send_window_start=time(0, 0), send_window_end=time(23, 59),
    )  # fmt: skip
    for user in (team.coordinator, team.physician, team.psychologist):
        care_team_add(patient=patient, staff=user)
    if username:
        patient_account_create(patient=patient, username=username, password=PASSWORD)
    return enrolment_start(patient=patient, definition_key="intractable-pain")


def open_checkin(enrolment: Enrolment, instrument: str = "peg") -> Checkin:
    """A check-in of a new series, open now (its request message queued, not sent)."""
    every = timedelta(days=28 if instrument in ("phq9", "gad7") else 7)
    series = checkin_series_start(
        enrolment=enrolment, series=f"{instrument}-test", instrument=instrument, every=every,
        at=timezone.now() - every - timedelta(days=1),
    )  # fmt: skip
    checkin = series.checkins.get()
    Checkin.objects.filter(pk=checkin.pk).update(
        due_at=timezone.now() - timedelta(minutes=1), closes_at=timezone.now() + timedelta(days=2)
    )
    checkins_open_due()
    checkin.refresh_from_db()
    return checkin


def send_link(checkin: Checkin) -> str:
    """Send the check-in's request by SMS (recorded, with the link redacted); the link token the
    patient's phone received."""
    request = Message.objects.get(purpose="checkin_request", subject_key=f"checkin:{checkin.pk}")
    with patients_phone() as phone:
        assert message_send(message_id=request.pk) == "sent"
    return link_token(phone[request.idempotency_key])


def patient_user(enrolment: Enrolment) -> User:
    patient = Patient.objects.select_related("user").get(pk=enrolment.patient_id)
    assert patient.user is not None
    return patient.user
