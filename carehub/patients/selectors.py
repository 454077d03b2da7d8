"""Reads of patients, always within what the member of staff may see (carehub.care_access)."""

from __future__ import annotations

from django.db.models import Prefetch, Q, QuerySet

from carehub.accounts.models import User
from carehub.core.selectors import one_or_not_found
from carehub.patients.access import patients_visible_to
from carehub.patients.models import CareTeamMembership, Patient


def patient_list_for_user(
    *, user: User, search: str = "", active: bool | None = None
) -> QuerySet[Patient]:
    """The user's patients; every word of `search` must match a name or the MRN; `active`:
    only active (True) or deactivated (False) patients, None both."""
    patients = patients_visible_to(user)
    if active is not None:
        patients = patients.filter(active=active)
    for word in search.split()[:5]:
        patients = patients.filter(
            Q(given_name__icontains=word) | Q(family_name__icontains=word) | Q(mrn__icontains=word)
        )
    return patients


def patient_get_for_user(*, user: User, patient_id: int) -> Patient:
    """One patient with the active care team; NotFound outside the user's scope."""
    active_team = CareTeamMembership.objects.filter(ended_at__isnull=True).select_related("staff")
    team = Prefetch("care_team", queryset=active_team, to_attr="active_care_team")
    return one_or_not_found(
        patients_visible_to(user).prefetch_related(team), "patient", pk=patient_id
    )
