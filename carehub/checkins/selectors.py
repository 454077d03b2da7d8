"""Reads of check-ins within a user's scope (carehub.care_access): outside it, NotFound."""

from __future__ import annotations

from django.db.models import QuerySet

from carehub.accounts.models import User
from carehub.checkins.access import checkins_visible_to
from carehub.checkins.models import Checkin
from carehub.core.exceptions import NotFound
from carehub.core.selectors import filtered_by_given
from carehub.patients.models import Patient


def checkin_list_for_patient(
    *, patient: Patient, status: str | None = None, instrument: str | None = None
) -> QuerySet[Checkin]:
    """The patient's check-ins with their series and enrolment (ordering is the caller's)."""
    checkins = Checkin.objects.filter(patient=patient).select_related("series", "enrolment")
    return filtered_by_given(checkins, status=status, instrument=instrument)


def checkin_get_for_user(*, user: User, checkin_id: int) -> Checkin:
    checkin = (
        checkins_visible_to(user)
        .select_related("patient", "series", "enrolment")
        .filter(pk=checkin_id)
        .first()
    )
    if checkin is None:
        raise NotFound("No such check-in.")
    return checkin
