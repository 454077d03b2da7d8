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

_OTHER_FACTS: list[Fact] = [
    Fact("pain.months", "number", "months the patient has had this pain"),
    Fact("failed_treatment_classes", "number", "treatment classes tried and failed, with reason"),
    Fact("conservative_care.weeks", "number", "weeks of documented conservative care"),
    Fact("adverse_effects.intolerable", "boolean", "current treatment has intolerable effects"),
    Fact("pt.sessions_attended", "number", "physical therapy sessions attended"),
    Fact("pt.no_shows", "number", "physical therapy sessions missed"),
    Fact("cbt.sessions_attended", "number", "CBT/ACT sessions attended"),
    Fact("cbt.no_shows", "number", "CBT/ACT sessions missed"),
    Fact(
        "psych_eval.outcome",
        "string",
        "pre-implant psychological evaluation: cleared, cleared_with_conditions, "
        "deferred_pending_treatment or not_cleared",
    ),
    Fact("mme.daily", "number", "total daily opioid dose in morphine milligram equivalents"),
    Fact("opioid.long_term", "boolean", "on long-term opioid therapy"),
    Fact("opioid.days_since_reassessment", "number", "days since the last opioid reassessment"),
    Fact("pdmp.days_since_check", "number", "days since the prescription monitoring check"),
    Fact("udt.days_since", "number", "days since the last urine drug test"),
    Fact("naloxone.offered", "boolean", "naloxone has been offered"),
    Fact("benzodiazepine.coprescribed", "boolean", "a benzodiazepine is co-prescribed"),
    Fact("substance_use.active", "boolean", "active untreated substance use disorder"),
    Fact("pump.days_to_refill", "number", "days until the intrathecal pump must be refilled"),
    Fact("phq9.item9", "number", "latest answer to PHQ-9 item 9 (0-3)"),
]


def _standard_facts() -> dict[str, Fact]:
    facts: dict[str, Fact] = {}
    for instrument, label in INSTRUMENTS.items():
        for attribute, (kind, text) in _SCORE_ATTRIBUTES.items():
            name = f"{instrument}.{attribute}"
            facts[name] = Fact(name, kind, f"{label}: {text}")
    for procedure, label in PROCEDURES.items():
        facts[f"{procedure}.relief_pct"] = Fact(
            f"{procedure}.relief_pct", "number", f"{label}: pain relief reported, percent"
        )
        facts[f"{procedure}.relief_weeks"] = Fact(
            f"{procedure}.relief_weeks", "number", f"{label}: weeks the relief lasted"
        )
    for fact in _OTHER_FACTS:
        facts[fact.name] = fact
    return facts


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
