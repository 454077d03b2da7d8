"""The instrument catalogue: what carehub says about each instrument, read from the library.

The YAML library (`library/`, through `registry.library()`) is the one source of an
instrument's title, range, direction, items, minimal clinically important difference (MCID) and
its source. Everything that shows or judges a score reads them here: the observation store's
validation and facts, the staff pages, charts and forms, the patient portal and the API. Only
what the library does not carry is written in this module, once: the short name staff pages use
("PHQ-9") and the patient-facing names (the check-in's name, the "My progress" heading and noun),
which are translated (ADR 0020, `carehub/locale`).

`responder` and its parts are the one responder rule: a patient improved by at least the MCID
in points or percent (either suffices; unknown when neither can be evaluated); a categorical
rating of change (PGIC) is a responder when the answer is at most the MCID's `at_most`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from django.utils.translation import gettext_lazy

from carehub.instruments.definition import InstrumentDefinition, Mcid
from carehub.instruments.loader import Library, UnknownInstrument
from carehub.instruments.registry import library
from workflows.facts import INSTRUMENTS as FACT_INSTRUMENTS

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

_EPSILON = 1e-9

# The instruments whose scores the observation store keeps and derives facts from: the pathway
# engine's vocabulary (`workflows.facts.INSTRUMENTS`), in its order.
SCORE_KEYS: tuple[str, ...] = tuple(FACT_INSTRUMENTS)

# The PHQ-9 answer that raises a red flag on its own, whatever the total (`phq9.item9`).
PHQ9_ITEM9 = "item9"


@dataclass(frozen=True)
class Names:
    """What the library does not carry: how carehub's pages name an instrument.

    `label`: the short name on staff pages ("PHQ-9"); `checkin`: the one patient-facing name of
    its check-in (the message says it, the page is headed with it); `progress` and `noun`: the
    heading and the noun of its score on the portal's "My progress" (None: not shown there).
    """

    label: str | None = None
    checkin: StrOrPromise | None = None
    progress: StrOrPromise | None = None
    noun: StrOrPromise | None = None


# Plain names for patients (no clinical detail beyond what is needed to act). "My progress"
# shows, in this order, the scores that are a number where lower or higher is better as the
# instrument says; PGIC (a rating of change) and the diaries are not trends to chart.
NAMES: dict[str, Names] = {
    "peg": Names(
        label="PEG",
        checkin=gettext_lazy("weekly pain check-in"),
        progress=gettext_lazy("Pain and how much it gets in the way"),
        noun=gettext_lazy("pain score"),
    ),
    "nrs": Names(
        label="Pain (NRS)",
        checkin=gettext_lazy("pain check-in"),
        progress=gettext_lazy("Pain"),
        noun=gettext_lazy("pain score"),
    ),
    "psfs": Names(
        label="PSFS",
        checkin=gettext_lazy("daily activities check-in"),
        progress=gettext_lazy("Daily activities that matter to you"),
        noun=gettext_lazy("activities score"),
    ),
    "phq9": Names(
        label="PHQ-9",
        checkin=gettext_lazy("mood check-in"),
        progress=gettext_lazy("Mood"),
        noun=gettext_lazy("mood score"),
    ),
    "gad7": Names(
        label="GAD-7",
        checkin=gettext_lazy("worry and stress check-in"),
        progress=gettext_lazy("Worry and stress"),
        noun=gettext_lazy("worry and stress score"),
    ),
    "odi": Names(label="ODI"),
    "pgic": Names(label="PGIC", checkin=gettext_lazy("how-are-things check-in")),
    "block_diary": Names(checkin=gettext_lazy("pain diary for today")),
    "trial_diary": Names(checkin=gettext_lazy("daily trial diary")),
    "procedure_safety": Names(checkin=gettext_lazy("safety check after your procedure")),
}


# Comparison signs in a citation (the library writes "IMMPACT ..., >= 30 % reduction ..."),
# said in words where a page shows it.
_SIGNS_IN_WORDS = {">=": "at least", "<=": "at most", "!=": "not"}


def in_words(source: str) -> str:
    """A named source as a page shows it: its comparison signs in words."""
    for sign, words in _SIGNS_IN_WORDS.items():
        source = source.replace(sign, words)
    return source


@dataclass(frozen=True)
class Entry:
    """One instrument as the catalogue reads it: the latest published definition and its names.

    The score's range, whole numbers, direction, items and MCID come from the definition.
    """

    definition: InstrumentDefinition
    names: Names

    @property
    def key(self) -> str:
        return self.definition.key

    @property
    def title(self) -> str:
        return self.definition.title

    @property
    def label(self) -> str:
        """The short name on staff pages (`label`)."""
        return label(self.key)

    @property
    def minimum(self) -> float:
        return self.definition.scoring.minimum if self.definition.scoring.minimum is not None else 0

    @property
    def maximum(self) -> float:
        return self.definition.scoring.maximum if self.definition.scoring.maximum is not None else 0

    @property
    def whole_numbers(self) -> bool:
        return self.definition.scoring.decimals == 0

    @property
    def categorical(self) -> bool:
        """A rating of change (PGIC): no change in points or percent, no trend."""
        return self.definition.direction == "categorical"

    @property
    def higher_is_better(self) -> bool:
        return self.definition.direction == "higher_is_better"

    @property
    def staff_entry_only(self) -> bool:
        """Licensed: staff enter the score from a licensed form; no items, no self-report."""
        return self.definition.administration == "staff"

    @property
    def mcid(self) -> Mcid | None:
        return self.definition.mcid

    @property
    def mcid_source(self) -> str:
        return self.definition.mcid.source if self.definition.mcid is not None else ""

    @property
    def mcid_source_shown(self) -> str:
        """The MCID's source as pages show it (comparison signs in words)."""
        return in_words(self.mcid_source)

    @property
    def item_keys(self) -> tuple[str, ...]:
        """The scored items whose answers may be stored with the score: those of a sum or a mean
        (a single item's answer is the score itself; an entered score has no items)."""
        if self.aggregate not in ("sum", "mean"):
            return ()
        return tuple(item.key for item in self.definition.scored_items)

    @property
    def item_range(self) -> tuple[float, float] | None:
        """(lowest, highest) answer of the scored items, None without items."""
        items = [i for i in self.definition.scored_items if i.key in self.item_keys]
        lows = [i.answer_minimum for i in items if i.answer_minimum is not None]
        highs = [i.answer_maximum for i in items if i.answer_maximum is not None]
        return (min(lows), max(highs)) if lows and highs else None

    @property
    def aggregate(self) -> str:
        """How the items add up: the scoring rule (`sum`, `mean`, `single`, `entered`, ...)."""
        return self.definition.scoring.rule


@dataclass(frozen=True)
class Catalogue:
    entries: dict[str, Entry]

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries.values())

    def get(self, key: str) -> Entry | None:
        return self.entries.get(key)


@cache
def _catalogue_of(source: Library) -> Catalogue:
    return Catalogue(
        {d.key: Entry(d, NAMES.get(d.key, Names())) for d in source.latest()},
    )


def catalogue() -> Catalogue:
    """Every instrument of the library (its latest version), read once per library."""
    return _catalogue_of(library())


def entry(key: str) -> Entry:
    """One instrument (`UnknownInstrument` when the library has none by that key)."""
    found = catalogue().get(key)
    if found is None:
        raise UnknownInstrument(f"no instrument '{key}'")
    return found


def score_entries() -> dict[str, Entry]:
    """The instruments the observation store keeps scores of (`SCORE_KEYS`), in that order."""
    return {key: entry(key) for key in SCORE_KEYS}


def is_score_instrument(key: str) -> bool:
    return key in SCORE_KEYS


def label(key: str) -> str:
    """The short name on staff pages ("PHQ-9"); the key in words for an instrument without one
    ("Block diary": the library's titles are too long for a table cell)."""
    names = NAMES.get(key)
    if names is not None and names.label:
        return names.label
    return key.replace("_", " ").strip().capitalize()


def checkin_name(key: str) -> StrOrPromise | None:
    """The patient-facing name of the instrument's check-in (None: no name of its own)."""
    names = NAMES.get(key)
    return names.checkin if names is not None else None


def progress_instruments() -> dict[str, Names]:
    """The instruments "My progress" shows, in its order, with their names."""
    return {key: names for key, names in NAMES.items() if names.progress is not None}


# --- the responder rule ----------------------------------------------------------------------


def gain(found: Entry, baseline: float, latest: float) -> float:
    """The change from `baseline` to `latest` in score points, positive when better."""
    return latest - baseline if found.higher_is_better else baseline - latest


def improvement_pct(found: Entry, baseline: float, latest: float) -> float | None:
    """Improvement from baseline in percent, positive when better (unrounded); None for a
    categorical rating or a baseline of 0."""
    if found.categorical or baseline == 0:
        return None
    return gain(found, baseline, latest) / baseline * 100


def meets_mcid(found: Entry, baseline: float, latest: float) -> bool | None:
    """Whether the change reaches the MCID in the better direction (points or percent, either
    suffices); None when neither can be evaluated (no MCID, or only a percentage and a
    baseline of 0)."""
    mcid = found.mcid
    if mcid is None or found.categorical:
        return None
    better = gain(found, baseline, latest)
    criteria: list[bool | None] = []
    if mcid.points is not None:
        criteria.append(better >= mcid.points - _EPSILON)
    if mcid.percent is not None:
        pct = improvement_pct(found, baseline, latest)
        criteria.append(pct >= mcid.percent - _EPSILON if pct is not None else None)
    if any(c is True for c in criteria):
        return True
    if all(c is None for c in criteria):
        return None
    return False


def responder_threshold(found: Entry, baseline: float) -> float | None:
    """The score a responder reaches from `baseline`: the MCID on the better side, in points
    when the instrument has them, else in percent of the baseline (None without an MCID in
    points or percent). What the outcome charts draw as a line."""
    mcid = found.mcid
    if mcid is None or found.categorical or not (mcid.points or mcid.percent):
        return None
    delta = mcid.points or abs(baseline) * (mcid.percent or 0) / 100
    return baseline + delta if found.higher_is_better else baseline - delta


def responder(found: Entry, baseline: float | None, latest: float | None) -> bool | None:
    """The responder rule: for a categorical rating, the latest answer is at most the MCID's
    `at_most`; otherwise `meets_mcid` from the baseline to a later score. None when it cannot be
    said (no score, no later score, no MCID)."""
    if latest is None:
        return None
    if found.categorical:
        at_most = found.mcid.at_most if found.mcid is not None else None
        return latest <= at_most if at_most is not None else None
    if baseline is None:
        return None
    return meets_mcid(found, baseline, latest)
