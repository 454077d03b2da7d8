"""Writes of the web UI: the session log (a session and its measure in one transaction). A
form's one-time key is claimed through carehub.core.idempotency (see carehub.web.actions)."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction

from carehub.accounts.models import User
from carehub.observations.models import Observation, Source
from carehub.observations.scores import score_observation_record
from carehub.observations.services import session_record
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
    score the instrument refuses leaves no session behind). The measure is scored and recorded
    like any score (`score_observation_record`: range, band, red flags, the baseline rule)."""
    recorded = [
        session_record(
            patient=patient,
            discipline=discipline,
            attended=attended,
            observed_at=observed_at,
            notes=notes,
            recorded_by=user,
        )
    ]
    if measure and score is not None:
        scored = score_observation_record(
            patient=patient,
            instrument=measure,
            score=score,
            observed_at=observed_at,
            recorded_by=user,
            source=Source.STAFF,
        )
        assert scored.observation is not None  # outside a check-in: recorded or refused
        recorded.append(scored.observation)
    return recorded
