"""What each therapist role works on in the built-in pathways: their track, the session they log
and the event that tells the pathway, and the measure they may record with it.

The track and event names are those of `intractable-pain` (and any definition reusing them); a
definition without the track simply shows no "my track" actions.
"""

from __future__ import annotations

from dataclasses import dataclass

from carehub.accounts.models import Role


@dataclass(frozen=True)
class TherapyRole:
    track: str
    session_discipline: str | None = None  # observations' session code: pt, cbt
    session_event: str | None = None
    measure: str | None = None  # an instrument scored with the session
    measure_label: str = ""


THERAPY_ROLES: dict[str, TherapyRole] = {
    Role.PHYSICAL_THERAPIST: TherapyRole(
        track="physical_therapy",
        session_discipline="pt",
        session_event="pt_session_logged",
        measure="psfs",
        measure_label="PSFS (mean of the activities, 0-10)",
    ),
    Role.PSYCHOLOGIST: TherapyRole(
        track="cbt", session_discipline="cbt", session_event="cbt_session_logged"
    ),
    Role.PHARMACIST: TherapyRole(track="medication_safety"),
}


def therapy_role(role: str) -> TherapyRole | None:
    return THERAPY_ROLES.get(role)
