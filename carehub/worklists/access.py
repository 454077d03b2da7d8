"""Which care tasks and flags a user may see: those of the patients in their scope
(carehub.patients.access; the rules: carehub.care_access)."""

from __future__ import annotations

from django.db.models import QuerySet

from carehub.accounts.models import User
from carehub.patients.access import patients_visible_to, scope_of
from carehub.worklists.models import CareTask, Flag


def tasks_visible_to(user: User | None) -> QuerySet[CareTask]:
    scope = scope_of(user)
    if scope is None:
        return CareTask.objects.none()
    user, clinic_id = scope
    return CareTask.objects.filter(clinic_id=clinic_id, patient__in=patients_visible_to(user))


def flags_visible_to(user: User | None) -> QuerySet[Flag]:
    scope = scope_of(user)
    if scope is None:
        return Flag.objects.none()
    user, clinic_id = scope
    return Flag.objects.filter(clinic_id=clinic_id, patient__in=patients_visible_to(user))
