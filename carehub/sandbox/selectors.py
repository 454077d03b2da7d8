"""What a sandbox clinic's test clock shows (ADR 0024)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from carehub.clinics.models import Clinic
from carehub.sandbox.services import MAX_ADVANCE, next_due


@dataclass(frozen=True)
class SandboxClock:
    clinic_id: int
    clinic_name: str
    is_sandbox: bool
    now: datetime | None
    advancing_to: datetime | None
    advance_requested_at: datetime | None
    last_error: str
    next_due_at: datetime | None
    max_advance_days: int


def sandbox_clock_get(*, clinic_id: int) -> SandboxClock:
    """The clinic's test clock: where it is, the advance under way, the next moment something
    falls due (None for a production clinic, which has no test clock)."""
    clinic = Clinic.objects.get(pk=clinic_id)
    upcoming = (
        next_due(clinic.pk, after=clinic.test_clock_at)
        if clinic.is_sandbox and clinic.test_clock_at is not None
        else None
    )
    return SandboxClock(
        clinic_id=clinic.pk,
        clinic_name=clinic.name,
        is_sandbox=clinic.is_sandbox,
        now=clinic.test_clock_at,
        advancing_to=clinic.advance_to,
        advance_requested_at=clinic.advance_requested_at,
        last_error=clinic.advance_error,
        next_due_at=upcoming,
        max_advance_days=MAX_ADVANCE.days,
    )
