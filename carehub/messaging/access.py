"""Which messages a user may see: staff only, those about the patients in their scope and the
digests of their clinic (carehub.patients.access; the rules: carehub.care_access)."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from carehub.accounts.models import Role, User
from carehub.messaging.models import Message
from carehub.patients.access import CLINIC_WIDE_ROLES, patients_visible_to, scope_of


def messages_visible_to(user: User | None) -> QuerySet[Message]:
    """Staff only: messages about their patients (to the patient or to staff), and messages
    about no patient (daily digests) addressed to them or, for clinic-wide roles, to anyone of
    their clinic. A patient sees none here."""
    scope = scope_of(user)
    if scope is None:
        return Message.objects.none()
    user, clinic_id = scope
    if user.role == Role.PATIENT:
        return Message.objects.none()
    about_no_patient = Q(patient__isnull=True, to_staff=user)
    if user.role in CLINIC_WIDE_ROLES:
        about_no_patient = Q(patient__isnull=True)
    return Message.objects.filter(clinic_id=clinic_id).filter(
        Q(patient__in=patients_visible_to(user)) | about_no_patient
    )
