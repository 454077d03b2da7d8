"""Which check-ins a user may see: those of the patients in their scope (carehub.patients.access;
the rules: carehub.care_access)."""

from __future__ import annotations

from django.db.models import QuerySet

from carehub.accounts.models import User
from carehub.checkins.models import Checkin
from carehub.patients.access import has_scope, patients_visible_to


def checkins_visible_to(user: User | None) -> QuerySet[Checkin]:
    if not has_scope(user):
        return Checkin.objects.none()
    return Checkin.objects.filter(patient__in=patients_visible_to(user))
