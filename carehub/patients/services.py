import re
from datetime import date, time

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

from carehub.accounts.models import STAFF_ROLES, Role, User
from carehub.clinics.models import Clinic
from carehub.core import clock
from carehub.core.exceptions import InvalidInput
from carehub.patients.models import CareTeamMembership, Channel, Language, Patient


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
    fallback_channel: Channel | str = Channel.EMAIL,
    send_window_start: time = time(9, 0),
    send_window_end: time = time(20, 0),
    language: Language | str = Language.ENGLISH,
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
        fallback_channel=Channel(fallback_channel) if fallback_channel else "",
        send_window_start=send_window_start,
        send_window_end=send_window_end,
        language=Language(language),
    )
    patient.full_clean()
    patient.save()
    return patient


@transaction.atomic
def care_team_add(*, patient: Patient, staff: User, is_primary: bool = False) -> CareTeamMembership:
    if staff.clinic_id != patient.clinic_id:
        raise InvalidInput("Staff can join the care team of their own clinic's patients only.")
    if staff.role not in STAFF_ROLES:
        raise InvalidInput("Only members of staff can join a care team.")
    membership, _ = CareTeamMembership.objects.get_or_create(
        patient=patient,
        staff=staff,
        ended_at=None,
        defaults={"is_primary": is_primary, "started_at": clock.now()},
    )
    return membership


PATIENT_EDITABLE_FIELDS = (
    "given_name", "family_name", "date_of_birth", "time_zone", "email", "phone",
    "preferred_channel", "fallback_channel", "send_window_start", "send_window_end", "language",
)  # fmt: skip


@transaction.atomic
def patient_update(*, patient: Patient, **changes: object) -> Patient:
    """Change a patient's details; the clinic and MRN stay as they were registered."""
    unknown = set(changes) - set(PATIENT_EDITABLE_FIELDS)
    if unknown:
        raise InvalidInput(f"Cannot change {', '.join(sorted(unknown))} here.")
    for field, value in changes.items():
        setattr(patient, field, value)
    patient.full_clean()
    patient.save(update_fields=[*changes, "updated_at"])
    return patient


E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


@transaction.atomic
def patient_contact_update(*, patient: Patient, phone: str, email: str) -> list[str]:
    """Correct a patient's phone number and e-mail address (e.g. a number the SMS provider
    reports as not in service). Returns the fields that changed; refuses, naming the field, a
    number that is not E.164, an address that is not one, or a correction that changes
    nothing. An empty value removes that contact."""
    phone, email = phone.strip().replace(" ", ""), email.strip()
    errors: dict[str, str] = {}
    if phone and not E164.match(phone):
        errors["phone"] = "Enter the number in international form, e.g. +447700900123."
    if email:
        try:
            validate_email(email)
        except ValidationError:
            errors["email"] = "Enter a valid e-mail address."
    if errors:
        raise InvalidInput("Please correct the contact details.", extra={"fields": errors})
    locked = Patient.objects.select_for_update().get(pk=patient.pk)
    changes = {
        name: value
        for name, value in (("phone", phone), ("email", email))
        if getattr(locked, name) != value
    }
    if not changes:
        raise InvalidInput(
            "Nothing was changed: enter the corrected number or address.",
            extra={"fields": {"phone": "This is the number on record."}},
        )
    patient_update(patient=locked, **changes)
    for name, value in changes.items():
        setattr(patient, name, value)
    return sorted(changes)


@transaction.atomic
def care_team_end(*, membership: CareTeamMembership) -> CareTeamMembership:
    if membership.ended_at is None:
        membership.ended_at = clock.now()
        membership.save(update_fields=["ended_at", "updated_at"])
    return membership


@transaction.atomic
def patient_account_create(*, patient: Patient, username: str, password: str | None) -> User:
    """Give a patient their own login (the portal and the API, scoped to themselves).

    `password=None` creates the account without a usable password (set later, e.g. through a
    password-reset link). The password must pass the site's password validators."""
    patient = Patient.objects.select_for_update().get(pk=patient.pk)
    if patient.user_id is not None:
        raise InvalidInput("This patient already has an account.", extra={"field": "username"})
    user = User(
        clinic_id=patient.clinic_id,
        username=username,
        role=Role.PATIENT,
        first_name=patient.given_name,
        last_name=patient.family_name,
        email=patient.email,
        is_staff=False,
    )
    if password is None:
        user.set_unusable_password()
    else:
        try:
            validate_password(password, user)
        except ValidationError as exc:
            raise InvalidInput(" ".join(exc.messages), extra={"field": "password"}) from exc
        user.set_password(password)
    try:
        user.full_clean()
    except ValidationError as exc:
        raise InvalidInput(
            " ".join(exc.messages), extra={"field": next(iter(exc.message_dict), "username")}
        ) from exc
    user.save()
    patient.user = user
    patient.save(update_fields=["user", "updated_at"])
    return user
