"""Writes of the web UI: the session log (a session and its measure in one transaction). A
form's one-time key is claimed through carehub.core.idempotency (see carehub.web.actions)."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction

from carehub.accounts.models import User
from carehub.core import clock
from carehub.core.exceptions import InvalidInput
from carehub.observations.models import Kind, Observation
from carehub.observations.selectors import observation_history
from carehub.observations.services import score_record, session_record
from carehub.patients.models import Patient


@transaction.atomic
def session_log(
    *,
    patient: Patient,
    discipline: str,
    attended: bool,
    observed_at: datetime,
    notes: str,
    measure: str | None,
    score: float | None,
    user: User,
) -> list[Observation]:
    """A therapy session and, optionally, a measure taken at it, together or not at all (a
    score the instrument refuses leaves no session behind). The first score of an instrument
    is the patient's baseline."""
    if observed_at > clock.now():
        raise InvalidInput("A session cannot be in the future.", extra={"field": "observed_at"})
    recorded = [
        session_record(
            patient=patient, discipline=discipline, attended=attended, observed_at=observed_at,
            notes=notes, recorded_by=user,
        )
    ]  # fmt: skip
    if measure and score is not None:
        first = not observation_history(patient=patient, kind=Kind.SCORE, code=measure).exists()
        recorded.append(
            score_record(
                patient=patient,
                instrument=measure,
                score=score,
                observed_at=observed_at,
                recorded_by=user,
                is_baseline=first,
            )
        )
    return recorded
