"""Reference data the observation store validates against and derives facts from.

Plain Python, no database: every value carries the `source` it comes from so that reviewers (and
the clinic's medical director) can check it. These are defaults for a research prototype, not
clinical advice; thresholds that guards compare against live in pathway definitions and clinic
settings, not here.

Instruments (their ranges, directions, items and MCIDs) are not here: the instrument library
is their one source, read through `carehub.instruments.catalogue`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# --- Procedures ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Procedure:
    """An interventional procedure whose result is the pain relief reported (0-100 %)."""

    code: str
    title: str
    source: str


RELIEF_PCT_RANGE = (0.0, 100.0)

PROCEDURES: dict[str, Procedure] = {
    p.code: p
    for p in (
        Procedure("mbb1", "First diagnostic medial branch block", "ASRA 2020 (Cohen et al.)"),
        Procedure(
            "mbb2",
            "Second (comparative) diagnostic medial branch block",
            "ASRA 2020 (Cohen et al.)",
        ),
        Procedure("rfa", "Radiofrequency ablation", "ASRA 2020; Medicare LCD L38765"),
        Procedure("esi", "Epidural steroid injection", "Medicare LCD L33906; eviCore CMM-200"),
        Procedure("nerve_block", "Other nerve block", "Payer convention (image-guided blocks)"),
        Procedure("scs_trial", "Spinal cord stimulator trial", "NANS practice parameters"),
        Procedure("it_trial", "Intrathecal drug delivery trial", "PACC 2017 (Deer et al.)"),
    )
}


# --- Medication ----------------------------------------------------------------------------------

CDC_MME_SOURCE = "CDC 2022 Clinical Practice Guideline"


@dataclass(frozen=True)
class MmeFactor:
    """Multiply the daily dose (in `unit`) by `factor` to get morphine milligram equivalents.

    MME estimates overdose risk only; it must never be used to convert one opioid to another
    (methadone's conversion is non-linear).
    """

    drug: str
    factor: float
    unit: str
    source: str = CDC_MME_SOURCE


MME_FACTORS: dict[str, MmeFactor] = {
    f.drug: f
    for f in (
        MmeFactor("codeine", 0.15, "mg"),
        # The fentanyl patch is recorded as its rate in mcg/h, which the factor applies to.
        MmeFactor("fentanyl_transdermal", 2.4, "mcg/h"),
        MmeFactor("hydrocodone", 1.0, "mg"),
        MmeFactor("hydromorphone", 5.0, "mg"),
        MmeFactor("methadone", 4.7, "mg"),
        MmeFactor("morphine", 1.0, "mg"),
        MmeFactor("oxycodone", 1.5, "mg"),
        MmeFactor("oxymorphone", 3.0, "mg"),
        MmeFactor("tapentadol", 0.4, "mg"),
        MmeFactor("tramadol", 0.2, "mg"),
    )
}

# Opioids carehub knows but has no CDC conversion factor for here (buprenorphine is excluded
# from MME by the CDC; other fentanyl forms have different factors). They count as opioids
# (`opioid.long_term`) but not in `mme.daily`; `mme_breakdown` lists them as not counted.
OPIOIDS_WITHOUT_MME_FACTOR: dict[str, str] = {
    "buprenorphine": "CDC 2022: buprenorphine is not included in MME calculations",
    "butorphanol": "No CDC 2022 conversion factor adopted in carehub",
    "dihydrocodeine": "No CDC 2022 conversion factor adopted in carehub",
    "fentanyl": "Route not stated: only transdermal fentanyl has a factor here",
    "fentanyl_buccal": "Different factor from the patch; not adopted in carehub",
    "levorphanol": "No CDC 2022 conversion factor adopted in carehub",
    "meperidine": "No CDC 2022 conversion factor adopted in carehub",
    "pentazocine": "No CDC 2022 conversion factor adopted in carehub",
}

OPIOIDS: frozenset[str] = frozenset(MME_FACTORS) | frozenset(OPIOIDS_WITHOUT_MME_FACTOR)

BENZODIAZEPINES_SOURCE = (
    "Benzodiazepines (ATC N05BA, N05CD, N03AE); co-prescription caution: CDC 2022 recommendation 11"
)
BENZODIAZEPINES: frozenset[str] = frozenset(
    {
        "alprazolam",
        "chlordiazepoxide",
        "clobazam",
        "clonazepam",
        "clorazepate",
        "diazepam",
        "estazolam",
        "flurazepam",
        "lorazepam",
        "midazolam",
        "oxazepam",
        "temazepam",
        "triazolam",
    }
)

# Units a daily dose may be recorded in. Drugs with an MME factor must use the factor's unit;
# benzodiazepines are recorded in mg.
MEDICATION_UNITS: tuple[str, ...] = ("mg", "mcg", "mcg/h", "g", "ml", "units")


def expected_unit(drug: str) -> str | None:
    """The only unit `drug` may be recorded in, when carehub computes something from its dose."""
    if drug in MME_FACTORS:
        return MME_FACTORS[drug].unit
    if drug in BENZODIAZEPINES:
        return "mg"
    return None


# --- Failed treatments -------------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    code: str
    title: str
    source: str


ADEQUATE_TRIAL_SOURCE = "IMMPACT/Farrar failure criteria; payer implant authorisation policies"

FAILED_TREATMENT_REASONS: dict[str, Choice] = {
    c.code: c
    for c in (
        Choice("insufficient_effect", "Insufficient effect (< 30 % improvement)", "IMMPACT"),
        Choice("adverse_effect", "Intolerable adverse effects", ADEQUATE_TRIAL_SOURCE),
        Choice("contraindicated", "Contraindicated or unsuitable", ADEQUATE_TRIAL_SOURCE),
        Choice("non_adherence", "Not adhered to", ADEQUATE_TRIAL_SOURCE),
    )
}

TREATMENT_CLASS_SOURCE = "NICE NG193; CDC 2022; VA/DoD stepped care model"

# A closed list, so that "distinct classes failed" is not inflated by spelling.
TREATMENT_CLASSES: dict[str, Choice] = {
    c.code: c
    for c in (
        Choice("acetaminophen", "Paracetamol / acetaminophen", TREATMENT_CLASS_SOURCE),
        Choice("nsaid", "NSAID", TREATMENT_CLASS_SOURCE),
        Choice("gabapentinoid", "Gabapentinoid (gabapentin, pregabalin)", TREATMENT_CLASS_SOURCE),
        Choice("snri", "SNRI (duloxetine, venlafaxine)", TREATMENT_CLASS_SOURCE),
        Choice("tca", "Tricyclic antidepressant", TREATMENT_CLASS_SOURCE),
        Choice("other_antidepressant", "Other antidepressant (SSRI)", TREATMENT_CLASS_SOURCE),
        Choice("opioid", "Opioid", TREATMENT_CLASS_SOURCE),
        Choice("topical", "Topical lidocaine / capsaicin", TREATMENT_CLASS_SOURCE),
        Choice("muscle_relaxant", "Muscle relaxant", TREATMENT_CLASS_SOURCE),
        Choice(
            "physical_therapy", "Physical therapy / supervised exercise", TREATMENT_CLASS_SOURCE
        ),
        Choice("psychological_therapy", "CBT / ACT for pain", TREATMENT_CLASS_SOURCE),
        Choice("acupuncture", "Acupuncture / dry needling", TREATMENT_CLASS_SOURCE),
        Choice("interventional", "Injection or nerve block", TREATMENT_CLASS_SOURCE),
        Choice("surgery", "Surgery", TREATMENT_CLASS_SOURCE),
    )
}


# --- Psychological evaluation --------------------------------------------------------------------

PSYCH_EVALUATION_SOURCE = "Pre-implant psychological evaluation (Medicare NCD 160.7; NICE TA159)"

PSYCH_EVALUATION_OUTCOMES: dict[str, Choice] = {
    c.code: c
    for c in (
        Choice("cleared", "Cleared", PSYCH_EVALUATION_SOURCE),
        Choice("cleared_with_conditions", "Cleared with conditions", PSYCH_EVALUATION_SOURCE),
        Choice(
            "deferred_pending_treatment",
            "Deferred pending treatment, then re-evaluated",
            PSYCH_EVALUATION_SOURCE,
        ),
        Choice("not_cleared", "Not cleared", PSYCH_EVALUATION_SOURCE),
    )
}


# --- Sessions ------------------------------------------------------------------------------------

SESSION_DISCIPLINES: dict[str, Choice] = {
    c.code: c
    for c in (
        Choice("pt", "Physical therapy", "NICE NG193 (supervised group exercise)"),
        Choice("cbt", "CBT or ACT for chronic pain", "VA CBT-CP manual; NICE NG193"),
    )
}


# --- Statuses ------------------------------------------------------------------------------------

StatusType = Literal["boolean", "occurrence"]


@dataclass(frozen=True)
class Status:
    """A boolean status (the latest value holds) or an occurrence (something done, dated)."""

    code: str
    type: StatusType
    title: str
    source: str


STATUSES: dict[str, Status] = {
    s.code: s
    for s in (
        Status("naloxone_offered", "boolean", "Naloxone offered", "CDC 2022 recommendation 8"),
        Status(
            "substance_use_active",
            "boolean",
            "Active untreated substance use disorder",
            "Medicare NCD 160.7 (implant candidacy); CDC 2022 recommendation 12",
        ),
        Status(
            "adverse_effects_intolerable",
            "boolean",
            "Current treatment has intolerable adverse effects",
            ADEQUATE_TRIAL_SOURCE,
        ),
        Status("pdmp_checked", "occurrence", "PDMP checked", "CDC 2022 recommendation 9"),
        Status("udt_done", "occurrence", "Urine drug test done", "CDC 2022 recommendation 10"),
        Status(
            "opioid_reassessed",
            "occurrence",
            "Opioid benefits and harms reassessed",
            "CDC 2022 recommendation 7",
        ),
    )
}

# Single-code kinds: the code stored with them.
PAIN_ONSET_CODE = "pain_onset"
PSYCH_EVALUATION_CODE = "psych_evaluation"
CONSERVATIVE_CARE_START_CODE = "conservative_care_start"
