"""Reads of accounts."""

from __future__ import annotations

from django.db.models import QuerySet

from carehub.accounts.models import STAFF_ROLES, User


def staff_list_for_clinic(*, clinic_id: int | None, role: str | None = None) -> QuerySet[User]:
    """The clinic's active staff (no patients, no operators), optionally of one role: whom a
    care team and a task's assignee are chosen from."""
    if clinic_id is None:
        return User.objects.none()
    staff = User.objects.filter(clinic_id=clinic_id, role__in=STAFF_ROLES, is_active=True)
    if role:
        staff = staff.filter(role=role)
    return staff
