"""Which observations a user may see: those of the patients in their scope, and of their own only
the scores for a patient (carehub.patients.access; the rules: carehub.care_access)."""

from __future__ import annotations

from django.db.models import QuerySet

from carehub.accounts.models import Role, User
from carehub.observations.models import Kind, Observation
from carehub.patients.access import patients_visible_to, scope_of


def observations_visible_to(user: User | None) -> QuerySet[Observation]:
    """A patient sees their own scores only; staff every observation of their patients."""
    scope = scope_of(user)
    if scope is None:
        return Observation.objects.none()
    user, _clinic = scope
    observations = Observation.objects.filter(patient__in=patients_visible_to(user))
    if user.role == Role.PATIENT:
        observations = observations.filter(kind=Kind.SCORE)
    return observations
