"""The vocabulary of clinical facts that guards may read.

The engine does not compute facts: the caller (carehub's observation store) puts their values in
the snapshot. This catalogue is the contract between the two: a guard naming a fact that is not
here (nor declared in the definition's own `facts:`) is a load-time error, and a fact that has
no value yet is *missing*, which makes any comparison with it unknown (never true).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

FactType = Literal["number", "boolean", "string"]
FactValue = float | int | bool | str | None


@dataclass(frozen=True)
class Fact:
    name: str
    type: FactType
    description: str


# Patient-reported and staff-entered instruments whose scores guards compare.
INSTRUMENTS: dict[str, str] = {
    "peg": "PEG-3 (pain, enjoyment of life, general activity; mean 0-10, lower is better)",
    "nrs": "Numeric rating scale of pain (0-10, lower is better)",
    "phq9": "PHQ-9 depression (sum 0-27, lower is better)",
    "gad7": "GAD-7 anxiety (sum 0-21, lower is better)",
    "pgic": "Patient global impression of change (1 = very much improved ... 7 = very much worse)",
    "psfs": "Patient-specific functional scale (mean 0-10, higher is better)",
    "odi": "Oswestry disability index (0-100, lower is better; score entered by staff)",
}

_SCORE_ATTRIBUTES: dict[str, tuple[FactType, str]] = {
    "latest": ("number", "latest score"),
    "baseline": ("number", "baseline score"),
    "change": ("number", "latest minus baseline, in score points"),
    "improvement_pct": (
        "number",
        "improvement from baseline in percent (positive is better, whatever the scale's direction)",
    ),
    "responder": ("boolean", "improved by at least the instrument's MCID"),
    "weeks_since_latest": ("number", "weeks since the latest score"),
    "trend": (
        "string",
        "'improving', 'worsening' or 'stable' over the latest scores (a least-squares line "
        "against the instrument's MCID); missing with fewer than 4 scores",
    ),
}

PROCEDURES: dict[str, str] = {
    "mbb1": "first diagnostic medial branch block",
    "mbb2": "second (comparative) diagnostic medial branch block",
    "rfa": "radiofrequency ablation",
    "esi": "epidural steroid injection",
    "nerve_block": "other nerve block",
    "scs_trial": "spinal cord stimulator trial",
    "it_trial": "intrathecal drug delivery trial",
}

_RELIEF_ATTRIBUTES: dict[str, tuple[FactType, str]] = {
    "relief_pct": ("number", "pain relief reported, percent"),
    "relief_weeks": ("number", "weeks the relief lasted"),
}

# Facts of the patient as a whole, by type: name → description.
_OTHER_FACTS: dict[FactType, dict[str, str]] = {
    "number": {
        "pain.months": "months the patient has had this pain",
        "failed_treatment_classes": "treatment classes tried and failed, with reason",
        "conservative_care.weeks": "weeks of documented conservative care",
        "pt.sessions_attended": "physical therapy sessions attended",
        "pt.no_shows": "physical therapy sessions missed",
        "cbt.sessions_attended": "CBT/ACT sessions attended",
        "cbt.no_shows": "CBT/ACT sessions missed",
        "mme.daily": "total daily opioid dose in morphine milligram equivalents",
        "opioid.days_since_reassessment": "days since the last opioid reassessment",
        "pdmp.days_since_check": "days since the prescription monitoring check",
        "udt.days_since": "days since the last urine drug test",
        "pump.days_to_refill": "days until the intrathecal pump must be refilled",
        "phq9.item9": "latest answer to PHQ-9 item 9 (0-3)",
    },
    "boolean": {
        "adverse_effects.intolerable": "current treatment has intolerable effects",
        "opioid.long_term": "on long-term opioid therapy",
        "naloxone.offered": "naloxone has been offered",
        "benzodiazepine.coprescribed": "a benzodiazepine is co-prescribed",
        "substance_use.active": "active untreated substance use disorder",
    },
    "string": {
        "psych_eval.outcome": (
            "pre-implant psychological evaluation: cleared, cleared_with_conditions, "
            "deferred_pending_treatment or not_cleared"
        ),
    },
}


def _attribute_facts(
    subjects: Mapping[str, str], attributes: Mapping[str, tuple[FactType, str]]
) -> Iterator[Fact]:
    """`<subject>.<attribute>` for every pair, described as "<subject's label>: <attribute's>"."""
    for subject, label in subjects.items():
        for attribute, (kind, text) in attributes.items():
            yield Fact(f"{subject}.{attribute}", kind, f"{label}: {text}")


def _standard_facts() -> dict[str, Fact]:
    facts = [
        *_attribute_facts(INSTRUMENTS, _SCORE_ATTRIBUTES),
        *_attribute_facts(PROCEDURES, _RELIEF_ATTRIBUTES),
        *(
            Fact(name, kind, description)
            for kind, described in _OTHER_FACTS.items()
            for name, description in described.items()
        ),
    ]
    return {fact.name: fact for fact in facts}


class FactCatalogue(Mapping[str, Fact]):
    """Fact name → declaration. `STANDARD_FACTS` plus whatever a definition declares."""

    def __init__(self, facts: Mapping[str, Fact]) -> None:
        self._facts = dict(facts)

    def __getitem__(self, name: str) -> Fact:
        return self._facts[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._facts)

    def __len__(self) -> int:
        return len(self._facts)

    def extended(self, extra: Mapping[str, Fact]) -> FactCatalogue:
        return FactCatalogue({**self._facts, **extra})


STANDARD_FACTS = FactCatalogue(_standard_facts())
