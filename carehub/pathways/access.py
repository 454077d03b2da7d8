"""Which enrolments and proposals a user may see: those of the patients in their scope
(carehub.patients.access; the rules: carehub.care_access)."""

from __future__ import annotations

from django.db.models import QuerySet

from carehub.accounts.models import User
from carehub.pathways.models import Enrolment, Proposal
from carehub.patients.access import patients_visible_to, scope_of


def enrolments_visible_to(user: User | None) -> QuerySet[Enrolment]:
    scope = scope_of(user)
    if scope is None:
        return Enrolment.objects.none()
    user, clinic_id = scope
    return Enrolment.objects.filter(clinic_id=clinic_id, patient__in=patients_visible_to(user))


def proposals_visible_to(user: User | None) -> QuerySet[Proposal]:
    return Proposal.objects.filter(enrolment__in=enrolments_visible_to(user))
