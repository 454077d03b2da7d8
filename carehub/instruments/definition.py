"""Instrument definitions: the data an instrument is written in (pure Python, no Django).

An instrument is a YAML file in `carehub/instruments/library/` named `KEY.vVERSION.yaml`, parsed
into the frozen pydantic models below. A published version is immutable: a change (wording,
scoring, a band, a red flag) is a new version. The models check the *shape* (types, required
keys, no unknown keys); `definition_problems` checks the meaning (items referenced exist, ranges
agree with the items, bands ascend, licensed instruments carry no wording, ...), and the loader
(`loader.py`) reports every problem with its path and line.

Vocabulary:

- `licence`: `free` (wording may be embedded) or `licensed` (staff enter the score computed on
  the licensed form; the definition holds no items, instructions or option labels).
- `recall`: the period the questions ask about (`text`, shown to staff) and, when it is a fixed
  window, its length (`period`); `min_interval` is how often the instrument may be scheduled at
  most, never shorter than the recall period.
- `scoring.rule`: `mean`, `sum`, `single` (the one scored item), `percent` (ODI-like: the
  answered items' points over the points they could have scored, x 100), `entered` (a score
  entered by staff, answers `{"score": value}`), `block_relief` (diagnostic block diary: peak %
  relief from the pre-block rating) or `none` (a checklist without a total).
- `red_flags`: an answer (`item`) or the total (no `item`) meeting a condition (`at_least`,
  `equals`, or `missing: true`) raises a flag with an urgency, a message for staff and, when
  the patient should see something at once, a message for the patient. A patient message may
  name clinic-specific texts as `{crisis_resources}` / `{emergency}` (see `texts.py`).
"""

from __future__ import annotations

import itertools
import string
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, model_validator

from carehub.instruments.texts import PATIENT_TEXTS
from workflows.definition import Duration, format_duration
from workflows.errors import Problem

Licence = Literal["free", "licensed"]
Direction = Literal["lower_is_better", "higher_is_better", "categorical"]
Administration = Literal["patient", "staff"]
ScoringRule = Literal["mean", "sum", "single", "percent", "entered", "block_relief", "none"]
ItemType = Literal["scale", "choice", "yes_no", "number", "text"]
Urgency = Literal["immediate", "same_day", "next_business_day"]

URGENCY_ORDER: dict[str, int] = {"immediate": 0, "same_day": 1, "next_business_day": 2}

KEY_PATTERN = r"^[a-z][a-z0-9_]*$"
LOINC_PATTERN = r"^[0-9]{1,7}-[0-9]$"
# The answer key of an `entered` score; no item may use it.
ENTERED_SCORE_KEY = "score"
TEXT_MAX_LENGTH = 500

Key = Annotated[str, Field(pattern=KEY_PATTERN)]
LoincCode = Annotated[str, Field(pattern=LOINC_PATTERN)]
NonEmpty = Annotated[str, Field(min_length=1)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Recall(_Model):
    text: NonEmpty  # "past week", "last 2 weeks", "right now", "since treatment started"
    period: Duration | None = None  # a fixed window; None for "right now" or "since ..."


class Option(_Model):
    value: StrictInt
    label: NonEmpty


class Item(_Model):
    key: Key
    text: NonEmpty
    type: ItemType
    scored: bool = True
    # An optional item may be left blank without counting as missing (PHQ-9 difficulty item,
    # PSFS activities 4 and 5, free-text notes).
    optional: bool = False
    options: tuple[Option, ...] = ()  # choice
    minimum: float | None = None  # scale, number
    maximum: float | None = None
    whole_numbers: bool = True  # scale, number
    low_label: str | None = None  # scale anchors
    high_label: str | None = None
    unit: str | None = None  # number ("minutes", "doses")
    max_length: int | None = Field(default=None, gt=0)  # text
    loinc: LoincCode | None = None
    timepoint_minutes: int | None = Field(default=None, ge=0)  # block diary

    @property
    def numeric(self) -> bool:
        return self.type in ("scale", "choice", "number")

    @property
    def answer_minimum(self) -> float | None:
        if self.type == "choice":
            return min(o.value for o in self.options) if self.options else None
        return self.minimum

    @property
    def answer_maximum(self) -> float | None:
        if self.type == "choice":
            return max(o.value for o in self.options) if self.options else None
        return self.maximum


class MissingRule(_Model):
    """How many required scored items may be unanswered and the total still computed.

    0: no score when any required scored item is missing. Above 0: the total is prorated (a mean
    of the answered items; a sum scaled to all items; a percent over the answered items).
    """

    max_missing: int = Field(default=0, ge=0)
    source: NonEmpty
    note: str | None = None


class Scoring(_Model):
    rule: ScoringRule
    minimum: float | None = None
    maximum: float | None = None
    decimals: int = Field(default=0, ge=0, le=4)  # the total is rounded half up to this
    missing: MissingRule | None = None
    relief_threshold_pct: float | None = Field(default=None, gt=0, le=100)  # block_relief
    # Derive `relief_pct` from a baseline given to `score()` (trial diary vs pre-trial NRS).
    baseline_relief: bool = False


class BandLevel(_Model):
    """A severity band starting at `at_least` (inclusive) or `above` (exclusive)."""

    label: NonEmpty
    at_least: float | None = None
    above: float | None = None

    @model_validator(mode="after")
    def _one_bound(self) -> BandLevel:
        if (self.at_least is None) == (self.above is None):
            raise ValueError("give exactly one of 'at_least' and 'above'")
        return self

    @property
    def lower(self) -> float:
        value = self.at_least if self.at_least is not None else self.above
        assert value is not None
        return value

    def admits(self, total: float) -> bool:
        return total >= self.lower if self.at_least is not None else total > self.lower


class Bands(_Model):
    source: NonEmpty
    note: str | None = None
    levels: tuple[BandLevel, ...] = Field(min_length=1)

    def label_for(self, total: float) -> str | None:
        label = None
        for level in self.levels:
            if level.admits(total):
                label = level.label
        return label


class Mcid(_Model):
    """Minimal clinically important difference: a responder improved by at least `points` or
    `percent` (either suffices); for a categorical rating of change, answered at most `at_most`.
    """

    points: float | None = Field(default=None, gt=0)
    percent: float | None = Field(default=None, gt=0, le=100)
    at_most: int | None = None
    source: NonEmpty
    note: str | None = None


class Loinc(_Model):
    panel: LoincCode | None = None
    total: LoincCode | None = None
    note: str | None = None


class RedFlagRule(_Model):
    code: Key
    item: Key | None = None  # None: the total score
    at_least: float | None = None
    equals: StrictBool | StrictInt | None = None
    missing: bool = False
    urgency: Urgency
    staff_message: NonEmpty
    patient_message: str | None = None
    source: str | None = None


class InstrumentDefinition(_Model):
    key: Key
    version: int = Field(ge=1)
    title: NonEmpty
    description: NonEmpty  # plain language, for patients
    licence: Licence
    citation: NonEmpty
    notice: str | None = None  # the owner's notice to show with the form
    wording_source: str | None = None
    wording_note: str | None = None  # what must be checked against the published wording
    administration: Administration = "patient"
    recall: Recall
    min_interval: Duration
    direction: Direction
    instructions: str | None = None  # the published stem ("Over the last 2 weeks, ...")
    items: tuple[Item, ...] = ()
    scoring: Scoring
    bands: Bands | None = None
    mcid: Mcid | None = None
    loinc: Loinc = Loinc()
    red_flags: tuple[RedFlagRule, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.key}@{self.version}"

    def item(self, key: str) -> Item | None:
        return next((item for item in self.items if item.key == key), None)

    @property
    def scored_items(self) -> tuple[Item, ...]:
        return tuple(item for item in self.items if item.scored)

    @property
    def has_total(self) -> bool:
        return self.scoring.rule != "none"

    @property
    def relief_anchor(self) -> Item | None:
        """The rating relief is measured from (`block_relief`: the earliest time point)."""
        if self.scoring.rule != "block_relief" or not self.scored_items:
            return None
        return min(self.scored_items, key=lambda item: item.timepoint_minutes or 0)

    def may_be_blank(self, item: Item) -> bool:
        """Whether this item may be left unanswered in a complete answer set: optional items,
        and scored items when the missing-item rule allows some (up to `max_missing` of them,
        never the rating relief is measured from)."""
        if item.optional:
            return True
        missing = self.scoring.missing
        if not item.scored or missing is None or missing.max_missing == 0:
            return False
        anchor = self.relief_anchor
        return anchor is None or item.key != anchor.key

    @property
    def safety_items(self) -> tuple[str, ...]:
        """The items a red-flag rule reads (PHQ-9 item 9, a diary's warning signs): a total
        alone cannot be checked against them."""
        keys = [rule.item for rule in self.red_flags if rule.item is not None]
        return tuple(dict.fromkeys(keys))

    @property
    def wording(self) -> tuple[str, ...]:
        """Every piece of instrument wording this definition carries (items, options, stem)."""
        texts = [self.instructions] if self.instructions else []
        for item in self.items:
            texts.append(item.text)
            texts.extend(o.label for o in item.options)
            texts.extend(label for label in (item.low_label, item.high_label) if label)
        return tuple(texts)


# --- semantic validation ---------------------------------------------------------------------


def loinc_check_digit_ok(code: str) -> bool:
    """LOINC codes end in a mod-10 check digit (the Luhn scheme) that catches most typos."""
    number, _, check = code.partition("-")
    total = 0
    for position, char in enumerate(reversed(number), start=1):
        digit = int(char)
        if position % 2 == 1:
            digit *= 2
            digit = digit - 9 if digit > 9 else digit
        total += digit
    return (10 - total % 10) % 10 == int(check)


def placeholders(text: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]


def definition_problems(d: InstrumentDefinition) -> list[Problem]:
    """Every semantic problem of a definition whose shape is valid."""
    problems: list[Problem] = []
    problems += _licence_problems(d)
    problems += _item_problems(d)
    problems += _scoring_problems(d)
    problems += _band_problems(d)
    problems += _mcid_problems(d)
    problems += _loinc_problems(d)
    problems += _red_flag_problems(d)
    if d.recall.period is not None and d.min_interval < d.recall.period:
        problems.append(
            Problem(
                ("min_interval",),
                f"{format_duration(d.min_interval)} is shorter than the recall period "
                f"({format_duration(d.recall.period)}): answers would overlap",
            )
        )
    return problems


def licensed_wording_problems(d: InstrumentDefinition) -> list[Problem]:
    """A licensed instrument carries no items, instructions or option labels."""
    if d.licence != "licensed":
        return []
    problems = []
    if d.items:
        problems.append(
            Problem(("items",), "a licensed instrument has no items: staff enter the score")
        )
    if d.instructions:
        problems.append(
            Problem(("instructions",), "a licensed instrument carries none of its wording")
        )
    return problems


def _licence_problems(d: InstrumentDefinition) -> list[Problem]:
    problems = licensed_wording_problems(d)
    if d.licence == "licensed":
        if d.administration != "staff":
            problems.append(
                Problem(("administration",), "a licensed instrument is entered by staff")
            )
        if d.scoring.rule != "entered":
            problems.append(
                Problem(("scoring", "rule"), "a licensed instrument's score is 'entered'")
            )
    return problems


R = TypeVar("R")


def _keyed(
    section: str, rows: Sequence[R], key: Callable[[R], str]
) -> Iterator[tuple[tuple[str, int], R, bool]]:
    """Each row with its path (section, index) and whether a row before it has the same key."""
    seen: set[str] = set()
    for i, row in enumerate(rows):
        yield (section, i), row, key(row) in seen
        seen.add(key(row))


def _item_problems(d: InstrumentDefinition) -> list[Problem]:
    problems: list[Problem] = []
    for at, item, twice in _keyed("items", d.items, lambda item: item.key):
        if twice:
            problems.append(Problem((*at, "key"), f"item '{item.key}' is defined twice"))
        if item.key == ENTERED_SCORE_KEY:
            problems.append(Problem((*at, "key"), f"'{ENTERED_SCORE_KEY}' is reserved"))
        problems += _item_shape_problems(item, at)
    return problems


def _item_shape_problems(item: Item, at: tuple[str | int, ...]) -> list[Problem]:
    problems: list[Problem] = []
    if item.type == "choice":
        if not item.options:
            problems.append(Problem((*at, "options"), "a choice item needs options"))
        values = [o.value for o in item.options]
        if len(values) != len(set(values)):
            problems.append(Problem((*at, "options"), "option values must be unique"))
    elif item.options:
        problems.append(Problem((*at, "options"), f"a {item.type} item has no options"))
    if item.type in ("scale", "number"):
        if item.minimum is None or item.maximum is None:
            problems.append(Problem(at, f"a {item.type} item needs 'minimum' and 'maximum'"))
        elif item.minimum >= item.maximum:
            problems.append(Problem((*at, "maximum"), "must be above the minimum"))
    elif item.minimum is not None or item.maximum is not None:
        problems.append(Problem(at, f"a {item.type} item has no minimum or maximum"))
    if item.type != "scale" and (item.low_label or item.high_label):
        problems.append(Problem(at, "anchor labels belong to scale items"))
    if item.type != "text" and item.max_length is not None:
        problems.append(Problem((*at, "max_length"), "only text items have a maximum length"))
    if item.scored and not item.numeric:
        problems.append(Problem((*at, "scored"), f"a {item.type} item cannot be scored"))
    return problems


def _scoring_problems(d: InstrumentDefinition) -> list[Problem]:
    s = d.scoring
    at: tuple[str, ...] = ("scoring",)
    problems: list[Problem] = []
    scored = d.scored_items
    if s.rule == "none":
        if s.minimum is not None or s.maximum is not None:
            problems.append(Problem(at, "an instrument without a total has no score range"))
        if scored:
            problems.append(Problem(at, "rule 'none' scores no item; mark the items scored: false"))
        if d.bands or d.mcid:
            problems.append(Problem(at, "an instrument without a total has no bands or MCID"))
        return problems
    if s.minimum is None or s.maximum is None:
        problems.append(Problem(at, "give the score range: 'minimum' and 'maximum'"))
    elif s.minimum >= s.maximum:
        problems.append(Problem((*at, "maximum"), "must be above the minimum"))
    if s.rule == "entered":
        if d.items:
            problems.append(Problem(("items",), "an entered score has no items"))
        if d.administration != "staff":
            problems.append(Problem(("administration",), "an entered score is entered by staff"))
    else:
        if not scored:
            problems.append(Problem(("items",), f"rule '{s.rule}' needs scored items"))
        if s.missing is None:
            problems.append(Problem((*at, "missing"), "state the missing-item rule and its source"))
    if s.rule == "single" and len(scored) != 1:
        problems.append(Problem(at, f"rule 'single' needs exactly one scored item ({len(scored)})"))
    if s.rule == "block_relief":
        problems += _block_problems(d)
    elif s.relief_threshold_pct is not None:
        problems.append(Problem((*at, "relief_threshold_pct"), "only for rule 'block_relief'"))
    if s.baseline_relief and (s.rule not in ("single", "mean") or d.direction != "lower_is_better"):
        problems.append(
            Problem(
                (*at, "baseline_relief"),
                "relief from a baseline needs a 'single' or 'mean' lower-is-better score",
            )
        )
    if not problems and scored and s.rule in ("mean", "sum", "single"):
        problems += _range_agreement(d)
    return problems


def _block_problems(d: InstrumentDefinition) -> list[Problem]:
    at: tuple[str, ...] = ("scoring",)
    problems: list[Problem] = []
    if d.scoring.relief_threshold_pct is None:
        problems.append(Problem(at, "rule 'block_relief' needs 'relief_threshold_pct'"))
    timed = [item.timepoint_minutes for item in d.scored_items]
    times = [t for t in timed if t is not None]
    if len(times) != len(timed):
        problems.append(Problem(("items",), "every scored diary item needs 'timepoint_minutes'"))
    elif times != sorted(set(times)) or times[:1] != [0]:
        problems.append(
            Problem(("items",), "time points start at 0 (before the block) and increase")
        )
    if (d.scoring.minimum, d.scoring.maximum) != (0, 100):
        problems.append(Problem(at, "relief is a percentage: minimum 0, maximum 100"))
    return problems


def _range_agreement(d: InstrumentDefinition) -> list[Problem]:
    """The declared score range is the one the items produce."""
    scored = d.scored_items
    lows = [item.answer_minimum for item in scored]
    highs = [item.answer_maximum for item in scored]
    if any(v is None for v in (*lows, *highs)):
        return []
    low_values = [v for v in lows if v is not None]
    high_values = [v for v in highs if v is not None]
    if d.scoring.rule == "sum":
        expected = (sum(low_values), sum(high_values))
    else:
        expected = (min(low_values), max(high_values))
    declared = (d.scoring.minimum, d.scoring.maximum)
    if declared != expected:
        return [
            Problem(
                ("scoring",),
                f"the items give a {d.scoring.rule} from {expected[0]:g} to {expected[1]:g}, "
                f"not {declared[0]:g} to {declared[1]:g}",
            )
        ]
    return []


def _band_problems(d: InstrumentDefinition) -> list[Problem]:
    if d.bands is None:
        return []
    problems: list[Problem] = []
    levels = d.bands.levels
    first = levels[0]
    if first.at_least is None or first.at_least != d.scoring.minimum:
        problems.append(
            Problem(("bands", "levels", 0), "the first band starts 'at_least' the score minimum")
        )
    for i, (low, high) in enumerate(itertools.pairwise(levels), start=1):
        if (high.lower, high.above is not None) <= (low.lower, low.above is not None):
            problems.append(Problem(("bands", "levels", i), "bands must ascend"))
    maximum = d.scoring.maximum
    for i, level in enumerate(levels):
        if maximum is not None and not level.lower <= maximum:
            problems.append(Problem(("bands", "levels", i), "starts above the score maximum"))
    labels = [level.label for level in levels]
    if len(labels) != len(set(labels)):
        problems.append(Problem(("bands", "levels"), "band labels must be unique"))
    return problems


def _mcid_problems(d: InstrumentDefinition) -> list[Problem]:
    m = d.mcid
    if m is None:
        return []
    if d.direction == "categorical":
        if m.at_most is None or m.points is not None or m.percent is not None:
            return [Problem(("mcid",), "a categorical rating's responder is 'at_most' an answer")]
        return []
    if m.at_most is not None:
        return [Problem(("mcid", "at_most"), "only for a categorical rating of change")]
    if m.points is None and m.percent is None:
        return [Problem(("mcid",), "give 'points' and/or 'percent'")]
    return []


def _loinc_problems(d: InstrumentDefinition) -> list[Problem]:
    codes: list[tuple[tuple[str | int, ...], str]] = []
    if d.loinc.panel:
        codes.append((("loinc", "panel"), d.loinc.panel))
    if d.loinc.total:
        codes.append((("loinc", "total"), d.loinc.total))
    codes += [(("items", i, "loinc"), item.loinc) for i, item in enumerate(d.items) if item.loinc]
    return [
        Problem(path, f"LOINC code {code} fails its check digit")
        for path, code in codes
        if not loinc_check_digit_ok(code)
    ]


def _red_flag_problems(d: InstrumentDefinition) -> list[Problem]:
    problems: list[Problem] = []
    for at, rule, twice in _keyed("red_flags", d.red_flags, lambda rule: rule.code):
        if twice:
            problems.append(Problem((*at, "code"), f"red flag '{rule.code}' is defined twice"))
        conditions = [rule.at_least is not None, rule.equals is not None, rule.missing]
        if sum(conditions) != 1:
            problems.append(Problem(at, "give exactly one of 'at_least', 'equals', 'missing'"))
        if rule.item is None:
            if not d.has_total:
                problems.append(Problem(at, "this instrument has no total; name an 'item'"))
            if rule.missing or rule.equals is not None:
                problems.append(Problem(at, "a condition on the total uses 'at_least'"))
        else:
            item = d.item(rule.item)
            if item is None:
                problems.append(Problem((*at, "item"), f"unknown item '{rule.item}'"))
            elif rule.at_least is not None and not item.numeric:
                problems.append(Problem((*at, "at_least"), f"'{item.key}' is not a number"))
            elif rule.equals is not None and not _can_equal(item, rule.equals):
                problems.append(Problem((*at, "equals"), f"'{item.key}' cannot be {rule.equals!r}"))
        if rule.patient_message is not None:
            for name in placeholders(rule.patient_message):
                if name not in PATIENT_TEXTS:
                    known = ", ".join(sorted(PATIENT_TEXTS))
                    problems.append(
                        Problem(
                            (*at, "patient_message"),
                            f"unknown text '{{{name}}}' (known: {known})",
                        )
                    )
    return problems


def _can_equal(item: Item, value: bool | int) -> bool:
    if item.type == "yes_no":
        return isinstance(value, bool)
    if item.type == "choice":
        return not isinstance(value, bool) and value in {o.value for o in item.options}
    return False


def duration_text(value: timedelta | None) -> str:
    return format_duration(value) if value is not None else "-"
