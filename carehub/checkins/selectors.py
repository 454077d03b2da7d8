"""Reads of check-ins within a user's scope (carehub.care_access): outside it, NotFound."""

from __future__ import annotations

from django.db.models import QuerySet

from carehub.accounts.models import User
from carehub.checkins.access import checkins_visible_to
from carehub.checkins.models import Checkin
from carehub.core.selectors import filtered_by_given, one_or_not_found
from carehub.patients.models import Patient


def checkin_list_for_patient(
    *, patient: Patient, status: str | None = None, instrument: str | None = None
) -> QuerySet[Checkin]:
    """The patient's check-ins with their series and enrolment (ordering is the caller's)."""
    checkins = Checkin.objects.filter(patient=patient).select_related("series", "enrolment")
    return filtered_by_given(checkins, status=status, instrument=instrument)


def checkin_get_for_user(*, user: User, checkin_id: int) -> Checkin:
    visible = checkins_visible_to(user).select_related("patient", "series", "enrolment")
    return one_or_not_found(visible, "check-in", pk=checkin_id)
