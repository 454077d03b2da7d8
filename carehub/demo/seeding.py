"""Steps the demo's seeds share: the Riverside demo clinic (`services`), its sandbox clinic
(`sandbox`) and the scripted patient stories (`stories`)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from carehub.accounts.models import Role, User
from carehub.accounts.services import staff_create
from carehub.clinics.models import Clinic
from carehub.observations.services import (
    conservative_care_start_record,
    failed_treatment_record,
    pain_onset_record,
    score_record,
    status_record,
)
from carehub.patients.models import Patient


def demo_staff_ensure(
    *,
    clinic: Clinic,
    people: Iterable[tuple[str, Role, str, str]],
    password: str,
    email_domain: str,
    admin_is_superuser: bool = False,
) -> tuple[dict[Role, User], list[str]]:
    """The staff accounts (username, role, first and last name), created where missing: the
    users by role, and what was created. With `admin_is_superuser` the clinic admin is a
    Django superuser (and may use the admin site)."""
    staff: dict[Role, User] = {}
    created: list[str] = []
    for username, role, first, last in people:
        user = User.objects.filter(username=username).first()
        if user is None:
            user = staff_create(
                clinic=clinic,
                username=username,
                role=role,
                password=password,
                first_name=first,
                last_name=last,
                email=f"{username}@{email_domain}",
                is_staff=admin_is_superuser and role is Role.CLINIC_ADMIN,
            )
            if admin_is_superuser and role is Role.CLINIC_ADMIN:
                user.is_superuser = True
                user.save(update_fields=["is_superuser"])
            created.append(f"staff {username}")
        staff[role] = user
    return staff, created


def demo_intake_history_record(
    patient: Patient,
    by: User,
    psychologist: User,
    now: datetime,
    /,
    *,
    pain_years: int,
    failed: Iterable[str],
    peg: float,
    phq9: int,
    gad7: int,
) -> None:
    """A patient's history at intake, recorded by `by` at `now`: pain onset, six months of
    conservative care, the treatments that failed, baseline PEG, PHQ-9 and GAD-7, and (by the
    psychologist) no active substance use."""
    onset = now.date() - timedelta(days=365 * pain_years)
    pain_onset_record(patient=patient, onset=onset, recorded_by=by)
    conservative_care_start_record(
        patient=patient, started=now.date() - timedelta(days=180), recorded_by=by
    )
    for treatment in failed:
        failed_treatment_record(
            patient=patient,
            treatment_class=treatment,
            reason="insufficient_effect",
            observed_at=now,
            recorded_by=by,
            duration_weeks=8,
        )
    for instrument, value in (("peg", peg), ("phq9", phq9), ("gad7", gad7)):
        score_record(
            patient=patient,
            instrument=instrument,
            score=value,
            observed_at=now,
            is_baseline=True,
            recorded_by=by,
            source="patient",
        )
    status_record(
        patient=patient,
        code="substance_use_active",
        value=False,
        observed_at=now,
        recorded_by=psychologist,
    )
