from datetime import date, time

from django.db import transaction

from carehub.accounts.models import User
from carehub.clinics.models import Clinic
from carehub.core import clock
from carehub.core.exceptions import InvalidInput
from carehub.patients.models import CareTeamMembership, Channel, Patient


@transaction.atomic
def patient_register(
    *,
    clinic: Clinic,
    mrn: str,
    given_name: str,
    family_name: str,
    time_zone: str,
    date_of_birth: date | None = None,
    email: str = "",
    phone: str = "",
    preferred_channel: Channel | str = Channel.SMS,
    send_window_start: time = time(9, 0),
    send_window_end: time = time(20, 0),
) -> Patient:
    patient = Patient(
        clinic=clinic,
        mrn=mrn,
        given_name=given_name,
        family_name=family_name,
        time_zone=time_zone,
        date_of_birth=date_of_birth,
        email=email,
        phone=phone,
        preferred_channel=Channel(preferred_channel),
        send_window_start=send_window_start,
        send_window_end=send_window_end,
    )
    patient.full_clean()
    patient.save()
    return patient


@transaction.atomic
def care_team_add(*, patient: Patient, staff: User, is_primary: bool = False) -> CareTeamMembership:
    if staff.clinic_id != patient.clinic_id:
        raise InvalidInput("Staff can join the care team of their own clinic's patients only.")
    membership, _ = CareTeamMembership.objects.get_or_create(
        patient=patient,
        staff=staff,
        ended_at=None,
        defaults={"is_primary": is_primary, "started_at": clock.now()},
    )
    return membership
