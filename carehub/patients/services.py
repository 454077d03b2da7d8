import re
from collections.abc import Callable
from datetime import date, time
from typing import Any

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

from carehub.accounts.models import STAFF_ROLES, Role, User
from carehub.clinics.models import Clinic
from carehub.core import clock
from carehub.core.exceptions import Conflict, InvalidInput
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
    """A new patient of the clinic. Invalid values are an InvalidInput naming each field
    (`fields`); an MRN the clinic already has is a Conflict (409)."""
    if Patient.objects.filter(clinic=clinic, mrn=mrn).exists():
        raise Conflict(
            f"The clinic already has a patient with MRN {mrn}.",
            extra={"field": "mrn"},
        )
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
    _full_clean(patient)
    try:
        with transaction.atomic():
            patient.save()
    except IntegrityError as exc:  # the same MRN registered meanwhile
        raise Conflict(
            f"The clinic already has a patient with MRN {mrn}.", extra={"field": "mrn"}
        ) from exc
    return patient


def _full_clean(patient: Patient) -> None:
    """The model's validation, as an InvalidInput naming each field (`fields`)."""
    try:
        patient.full_clean(validate_unique=False)
    except ValidationError as exc:
        fields = {
            ("send_window_end" if field == "__all__" else field): list(messages)
            for field, messages in exc.message_dict.items()
        }
        text = "; ".join(f"{f}: {m}" for f, ms in fields.items() for m in ms)
        raise InvalidInput(text, extra={"fields": fields}) from exc


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
    "given_name",
    "family_name",
    "date_of_birth",
    "time_zone",
    "email",
    "phone",
    "preferred_channel",
    "fallback_channel",
    "send_window_start",
    "send_window_end",
    "language",
)


@transaction.atomic
def patient_update(*, patient: Patient, **changes: object) -> Patient:
    """Change a patient's details; the clinic and MRN stay as they were registered."""
    unknown = set(changes) - set(PATIENT_EDITABLE_FIELDS)
    if unknown:
        raise InvalidInput(f"Cannot change {', '.join(sorted(unknown))} here.")
    patient = Patient.objects.select_for_update().get(pk=patient.pk)
    for field, value in changes.items():
        setattr(patient, field, value)
    _full_clean(patient)
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


DEACTIVATION_REASON_MAX_LENGTH = 300

# What keeps a patient from being deactivated: an app with work in progress for patients
# registers a check from its AppConfig.ready() (carehub.pathways: enrolments still active or
# paused). A check returns None, or why (the Conflict's message) and what it found (added to the
# Conflict's `current`).
DeactivationBlocker = Callable[[Patient], tuple[str, dict[str, Any]] | None]
_deactivation_blockers: list[DeactivationBlocker] = []


def register_deactivation_blocker(blocker: DeactivationBlocker) -> None:
    if blocker not in _deactivation_blockers:
        _deactivation_blockers.append(blocker)


@transaction.atomic
def patient_deactivate(*, patient: Patient, reason: str) -> Patient:
    """The patient is no longer cared for through carehub (moved away, care transferred, died).

    Refused (409, `current` listing them) while any pathway enrolment of the patient is active
    or paused: discharge each first, with its reason, so every track leaves by the definition's
    own transitions (check-ins stop, tasks close, the step log says why). Once inactive, the
    patient cannot be enrolled again, and no message is sent to them any more: anything still
    waiting to be sent is suppressed at its send time, with the reason in its delivery events.
    The record and its history stay. Deactivating an inactive patient is a conflict (409)."""
    text = reason.strip() if isinstance(reason, str) else ""
    if not text:
        message = "Say why the patient is deactivated."
        raise InvalidInput(message, extra={"fields": {"reason": [message]}})
    if len(text) > DEACTIVATION_REASON_MAX_LENGTH:
        message = f"At most {DEACTIVATION_REASON_MAX_LENGTH} characters."
        raise InvalidInput(message, extra={"fields": {"reason": [message]}})
    # The lock `enrolment_start` takes too: no enrolment starts while this decides.
    locked = Patient.objects.select_for_update(no_key=True).get(pk=patient.pk)
    if not locked.active:
        raise Conflict(
            "The patient is already inactive.",
            extra={"current": {"id": locked.pk, "active": False}},
        )
    for blocker in _deactivation_blockers:
        if (blocked := blocker(locked)) is not None:
            message, current = blocked
            raise Conflict(message, extra={"current": {"id": locked.pk, "active": True, **current}})
    locked.active = False
    locked.deactivated_at = clock.now()
    locked.deactivation_reason = text
    locked.save(update_fields=["active", "deactivated_at", "deactivation_reason", "updated_at"])
    for field in ("active", "deactivated_at", "deactivation_reason", "updated_at"):
        setattr(patient, field, getattr(locked, field))
    return patient


@transaction.atomic
def care_team_set(
    *, patient: Patient, members: list[tuple[User, bool]]
) -> list[CareTeamMembership]:
    """Make the patient's active care team exactly `members` (staff, is_primary): memberships
    of staff no longer named end now (kept in history), new ones start now, and a member's
    primary mark is updated in place. At most one primary member; each member of staff once;
    staff of the patient's clinic only (InvalidInput naming `members`)."""
    staff_ids = [staff.pk for staff, _ in members]
    if len(set(staff_ids)) != len(staff_ids):
        raise _members_invalid("Each member of staff is named once.")
    if sum(1 for _, primary in members if primary) > 1:
        raise _members_invalid("At most one member is the primary contact.")
    for staff, _ in members:
        if staff.clinic_id != patient.clinic_id or staff.role not in STAFF_ROLES:
            raise _members_invalid(f"User {staff.pk} is not a member of this clinic's staff.")
        if not staff.is_active:
            raise _members_invalid(f"User {staff.pk} is not an active account.")
    Patient.objects.select_for_update().filter(pk=patient.pk).first()  # one change at a time
    now = clock.now()
    current = {
        m.staff_id: m
        for m in CareTeamMembership.objects.filter(patient=patient, ended_at__isnull=True)
    }
    wanted = {staff.pk: primary for staff, primary in members}
    for staff_id, membership in current.items():
        if staff_id not in wanted:
            membership.ended_at = now
            membership.save(update_fields=["ended_at", "updated_at"])
        elif membership.is_primary != wanted[staff_id]:
            membership.is_primary = wanted[staff_id]
            membership.save(update_fields=["is_primary", "updated_at"])
    for staff, primary in members:
        if staff.pk not in current:
            CareTeamMembership.objects.create(
                patient=patient, staff=staff, is_primary=primary, started_at=now
            )
    return list(
        CareTeamMembership.objects.filter(patient=patient, ended_at__isnull=True)
        .select_related("staff")
        .order_by("-is_primary", "staff__last_name", "staff_id")
    )


def _members_invalid(message: str) -> InvalidInput:
    return InvalidInput(message, extra={"fields": {"members": [message]}})


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
