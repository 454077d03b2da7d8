"""Patient-facing texts that depend on where the clinic is, each with its source.

Red-flag patient messages name them as `{crisis_resources}` or `{emergency}`; `score()` fills them
in. These defaults are for clinics in the United States. A clinic elsewhere (or one with its own
crisis line) overrides them with the Django setting `INSTRUMENT_PATIENT_TEXTS`, e.g.
`{"crisis_resources": "...", "emergency": "..."}` (see `carehub.instruments.registry`); the
override must be reviewed by the clinic's medical director like any clinical text.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PatientText:
    text: str
    source: str


PATIENT_TEXTS: dict[str, PatientText] = {
    "crisis_resources": PatientText(
        text=(
            "If you are in danger now, call 911. To talk to someone right away, call or text 988 "
            "(988 Suicide & Crisis Lifeline) at any time, day or night."
        ),
        source=(
            "988 Suicide & Crisis Lifeline, United States (988lifeline.org, SAMHSA); "
            "911 emergency number (United States)"
        ),
    ),
    "emergency": PatientText(
        text="Call 911 or go to the nearest emergency department.",
        source="911 emergency number (United States)",
    ),
}


def default_patient_texts() -> dict[str, str]:
    return {name: entry.text for name, entry in PATIENT_TEXTS.items()}
