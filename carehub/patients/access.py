"""Which patients a user may see: the scope every other app's rows hang off (carehub.care_access
states the rules and the role-by-operation matrix; each app scopes its own rows through these).

- coordinators, physicians and clinic admins see every patient of their own clinic;
- physical therapists, psychologists and pharmacists see only the patients whose active care
  team (a membership without an end) includes them;
- a patient (an account with the `patient` role) sees only their own record (`Patient.user`);
- anyone else (operators without a clinic or role, inactive accounts) sees nothing.
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q, QuerySet

from carehub.accounts.models import Role, User
from carehub.patients.models import CareTeamMembership, Patient

CLINIC_WIDE_ROLES: frozenset[str] = frozenset({Role.COORDINATOR, Role.PHYSICIAN, Role.CLINIC_ADMIN})
CARE_TEAM_ROLES: frozenset[str] = frozenset(
    {Role.PHYSICAL_THERAPIST, Role.PSYCHOLOGIST, Role.PHARMACIST}
)


def has_scope(user: User | None) -> bool:
    return scope_of(user) is not None


def scope_of(user: User | None) -> tuple[User, int] | None:
    """The user and their clinic's id, when the user may see anything of a clinic."""
    if (
        user is None
        or not (user.is_authenticated and user.is_active)
        or user.clinic_id is None
        or user.role not in CLINIC_WIDE_ROLES | CARE_TEAM_ROLES | {Role.PATIENT}
    ):
        return None
    return user, user.clinic_id


def on_care_team(user: User, patient: str) -> Exists:
    """The user is on the care team of the patient `OuterRef(patient)` names."""
    return Exists(
        CareTeamMembership.objects.filter(
            patient=OuterRef(patient), staff=user, ended_at__isnull=True
        )
    )


def patients_visible_to(user: User | None) -> QuerySet[Patient]:
    scope = scope_of(user)
    if scope is None:
        return Patient.objects.none()
    user, clinic_id = scope
    patients = Patient.objects.filter(clinic_id=clinic_id)
    if user.role == Role.PATIENT:
        return patients.filter(user=user)
    if user.role in CARE_TEAM_ROLES:
        patients = patients.filter(on_care_team(user, "pk"))
    return patients


def visible_patient_condition(user: User | None, patient: str = "patient") -> Q:
    """`patients_visible_to` as a condition on the rows of a table with a `clinic_id` column
    and a patient foreign key `patient`, without joining the patients (a read model keyed by
    patient filters its own clinic column, in its own index)."""
    scope = scope_of(user)
    if scope is None:
        return Q(pk__in=[])
    user, clinic_id = scope
    condition = Q(clinic_id=clinic_id)
    if user.role == Role.PATIENT:
        return condition & Q(**{f"{patient}__user": user})
    if user.role in CARE_TEAM_ROLES:
        condition &= on_care_team(user, patient)  # type: ignore[assignment]  # Q & Exists is a Q
    return condition
