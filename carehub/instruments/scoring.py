"""Scoring answers to an instrument, the facts derived from scores, and trends (pure Python).

`score(instrument, answers)` validates every answer (unknown item, wrong type, out of range:
all reported together in one `AnswerError`), computes the total with the instrument's rule and
missing-item rule, its band, the red flags the answers raise and, for diaries, the derived
values. Arithmetic is exact (fractions); the total is rounded half up to the instrument's
`scoring.decimals` at the end.

Rules (the definition names one in `scoring.rule`):

- `mean` / `sum` of the scored items; with missing items allowed by `scoring.missing`, a mean
  is the mean of the answered items and a sum is prorated (sum x items / answered).
- `single`: the one scored item.
- `percent`: the answered items' points above their minimum over the points they could have
  scored, x 100 (ODI-like; an unanswered item leaves the denominator).
- `entered`: the score staff entered, as `{"score": value}`, within the score range.
- `block_relief` (diagnostic block diary): relief at a time point = (pre - post) / pre x 100,
  0 when the pain is the same or worse. The total is the peak relief over the answered post-block
  time points. `threshold_lasted_hours` is the time from the block to the last time point of the
  first uninterrupted run of ratings at or above `relief_threshold_pct`; an unanswered time
  point ends the run (relief is not assumed to have lasted through a gap), so the duration is
  what the diary shows, a lower bound; `threshold_to_last_point` says the run reached the last
  time point (relief may have lasted longer). No pre-block rating, or a pre-block rating of 0,
  gives no total.
- `none`: no total (a safety checklist).

`baseline_relief` instruments (trial diary) take the pre-trial baseline: `relief_pct` =
(baseline - total) / baseline x 100, 0 when the same or worse; `change_from_baseline` keeps the
signed difference.

Red flags are evaluated on the valid answers even when the total cannot be computed; a condition
on a *sum* is met early when the answered items alone already reach it (unanswered items can
only add), so a missing answer never hides a severe total.

Complete answer sets: `ScoreResult.incomplete` names every required item left unanswered that
the instrument's missing-item rule does not allow (`InstrumentDefinition.may_be_blank`); callers
recording answers refuse an incomplete set. `score_total` scores a total entered without its
item answers (range, decimals, band and the red flags on the total).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any, Literal, TypeGuard

from carehub.instruments.definition import (
    ENTERED_SCORE_KEY,
    TEXT_MAX_LENGTH,
    URGENCY_ORDER,
    InstrumentDefinition,
    Item,
    RedFlagRule,
    Urgency,
)
from carehub.instruments.texts import default_patient_texts

Answer = bool | int | float | str
Derived = float | bool | None
Trend = Literal["improving", "worsening", "stable"]

_EPSILON = 1e-9
_SECONDS_PER_DAY = 86400


@dataclass(frozen=True)
class RedFlag:
    code: str
    urgency: Urgency
    staff_message: str
    patient_message: str | None
    item: str | None  # None: raised by the total
    value: Answer | float | None


@dataclass(frozen=True)
class AnswerProblem:
    item: str
    message: str

    def __str__(self) -> str:
        return f"{self.item}: {self.message}"


class AnswerError(ValueError):
    """Answers that cannot be scored; `problems` names every one. `red_flags` are the flags the
    valid answers raise: a caller refusing the submission must still act on them."""

    def __init__(
        self, instrument: str, problems: Sequence[AnswerProblem], red_flags: Sequence[RedFlag] = ()
    ) -> None:
        self.instrument = instrument
        self.problems = tuple(problems)
        self.red_flags = tuple(red_flags)
        listed = "; ".join(str(p) for p in self.problems)
        super().__init__(f"{len(self.problems)} invalid answer(s) to {instrument}: {listed}")


@dataclass(frozen=True)
class ScoreResult:
    instrument: str  # "phq9@1"
    total: float | None  # None when the answers cannot be scored (see `note`)
    band: str | None
    answers: dict[str, Answer]  # the answers, normalised (whole numbers as int)
    missing: tuple[str, ...]  # required items left unanswered, scored or not
    prorated: bool
    red_flags: tuple[RedFlag, ...]  # most urgent first
    derived: dict[str, Derived] = field(default_factory=dict)
    note: str | None = None
    # Required items left unanswered that the missing-item rule does not allow.
    incomplete: tuple[AnswerProblem, ...] = ()

    @property
    def urgency(self) -> Urgency | None:
        return self.red_flags[0].urgency if self.red_flags else None


# --- score -------------------------------------------------------------------------------------


def score(
    instrument: InstrumentDefinition,
    answers: Mapping[str, Any],
    *,
    baseline: float | None = None,
    patient_texts: Mapping[str, str] | None = None,
) -> ScoreResult:
    """Score `answers` (item key → answer; None or blank text counts as unanswered)."""
    if not isinstance(answers, Mapping):
        raise AnswerError(instrument.ref, [AnswerProblem("(answers)", "must be a mapping")])
    if baseline is not None and not instrument.scoring.baseline_relief:
        raise ValueError(f"{instrument.ref} takes no baseline")
    texts = {**default_patient_texts(), **(patient_texts or {})}
    valid, problems, invalid = _validate(instrument, answers)
    if instrument.scoring.baseline_relief and baseline is not None:
        low, high = instrument.scoring.minimum, instrument.scoring.maximum
        assert low is not None
        assert high is not None
        if not low <= baseline <= high:
            problems.append(AnswerProblem("(baseline)", f"{baseline:g} is out of range"))
    if problems:
        flags = _red_flags(instrument, valid, invalid, None, texts)
        raise AnswerError(instrument.ref, problems, flags)

    missing = tuple(
        item.key for item in instrument.items if not item.optional and item.key not in valid
    )
    derived: dict[str, Derived] = {}
    prorated = False
    if instrument.scoring.rule == "block_relief":
        exact, derived, note = _block_relief(instrument, valid)
    else:
        exact, prorated, note = _total(instrument, valid)
    if instrument.scoring.baseline_relief:
        derived.update(_baseline_relief(exact, baseline))
    total = _rounded(exact, instrument.scoring.decimals) if exact is not None else None
    band = instrument.bands.label_for(total) if instrument.bands and total is not None else None
    return ScoreResult(
        instrument=instrument.ref,
        total=total,
        band=band,
        answers=valid,
        missing=missing,
        prorated=prorated,
        red_flags=_red_flags(instrument, valid, invalid, exact, texts),
        derived=derived,
        note=note,
        incomplete=_incomplete(instrument, valid),
    )


def score_total(
    instrument: InstrumentDefinition,
    total: Any,
    *,
    patient_texts: Mapping[str, str] | None = None,
) -> ScoreResult:
    """Score a total entered without its item answers (a licensed form scored by staff, a total
    from another record): within the score range and decimals, with its band and the red flags
    on the total. Rules on items (`safety_items`) cannot be evaluated from a total; a caller
    accepting totals refuses them for instruments that have such rules."""
    if instrument.scoring.rule == "entered":
        return score(instrument, {ENTERED_SCORE_KEY: total}, patient_texts=patient_texts)
    low, high = instrument.scoring.minimum, instrument.scoring.maximum
    if not instrument.has_total or low is None or high is None:
        problem = AnswerProblem(ENTERED_SCORE_KEY, "this instrument has no total: give the answers")
        raise AnswerError(instrument.ref, [problem])
    decimals = instrument.scoring.decimals
    checked, message = _check_number(total, low, high, whole=decimals == 0)
    if checked is not None and message is None and _decimals(checked) > decimals:
        message = f"{total!r} has more than {decimals} decimal(s)"
    if message is not None:
        raise AnswerError(instrument.ref, [AnswerProblem(ENTERED_SCORE_KEY, message)])
    assert checked is not None
    exact = _exact(checked)
    rounded = _rounded(exact, decimals)
    texts = {**default_patient_texts(), **(patient_texts or {})}
    flags = [
        _flag(rule, rounded, False, texts)
        for rule in instrument.red_flags
        if rule.item is None and rule.at_least is not None and exact >= rule.at_least
    ]
    flags.sort(key=lambda flag: URGENCY_ORDER[flag.urgency])
    band = instrument.bands.label_for(rounded) if instrument.bands else None
    return ScoreResult(
        instrument=instrument.ref,
        total=rounded,
        band=band,
        answers={},
        missing=(),
        prorated=False,
        red_flags=tuple(flags),
    )


def _incomplete(
    d: InstrumentDefinition, answers: Mapping[str, Answer]
) -> tuple[AnswerProblem, ...]:
    """Required items left unanswered that the missing-item rule does not allow, in item order."""
    if d.scoring.rule == "entered":
        return ()
    unanswered = [item for item in d.items if not item.optional and item.key not in answers]
    allowed = d.scoring.missing.max_missing if d.scoring.missing is not None else 0
    too_many = len([item for item in unanswered if item.scored]) > allowed
    problems = []
    for item in unanswered:
        if item.scored and not too_many and d.may_be_blank(item):
            continue
        if item.key in d.safety_items:
            why = ": it is a safety question, checked for red flags"
        elif item.scored and allowed == 0:
            why = ": there is no score with it unanswered"
        elif item.scored and too_many:
            why = f": at most {allowed} of the scored questions may be left unanswered"
        elif d.relief_anchor is not None and item.key == d.relief_anchor.key:
            why = ": relief is measured from it"
        else:
            why = ""
        problems.append(AnswerProblem(item.key, f"Please answer this question{why}."))
    return tuple(problems)


def _validate(
    d: InstrumentDefinition, answers: Mapping[str, Any]
) -> tuple[dict[str, Answer], list[AnswerProblem], set[str]]:
    valid: dict[str, Answer] = {}
    problems: list[AnswerProblem] = []
    invalid: set[str] = set()
    if d.scoring.rule == "entered":
        known = {ENTERED_SCORE_KEY}
    else:
        known = {item.key for item in d.items}
    for key in answers:
        if key not in known:
            expected = ", ".join(sorted(known)) or "none"
            problems.append(AnswerProblem(str(key), f"unknown item (items: {expected})"))
    if d.scoring.rule == "entered":
        value = answers.get(ENTERED_SCORE_KEY)
        if value is None:
            problems.append(AnswerProblem(ENTERED_SCORE_KEY, "the entered score is missing"))
        else:
            low, high = d.scoring.minimum, d.scoring.maximum
            checked, message = _check_number(value, low, high, whole=d.scoring.decimals == 0)
            if checked is not None and _decimals(checked) > d.scoring.decimals:
                message = f"{value!r} has more than {d.scoring.decimals} decimal(s)"
            if message is not None:
                problems.append(AnswerProblem(ENTERED_SCORE_KEY, message))
            else:
                assert checked is not None
                valid[ENTERED_SCORE_KEY] = checked
        return valid, problems, invalid
    for item in d.items:
        value = answers.get(item.key)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        answer, message = _check(item, value)
        if message is not None:
            problems.append(AnswerProblem(item.key, message))
            invalid.add(item.key)
        else:
            assert answer is not None
            valid[item.key] = answer
    return valid, problems, invalid


def _check(item: Item, value: Any) -> tuple[Answer | None, str | None]:
    if item.type == "yes_no":
        if not isinstance(value, bool):
            return None, f"must be yes or no (true/false), not {value!r}"
        return value, None
    if item.type == "text":
        if not isinstance(value, str):
            return None, f"must be text, not {value!r}"
        limit = item.max_length or TEXT_MAX_LENGTH
        if len(value) > limit:
            return None, f"is longer than {limit} characters"
        return value.strip(), None
    if item.type == "choice":
        allowed = [o.value for o in item.options]
        listed = ", ".join(str(v) for v in allowed)
        if not _is_number(value):
            return None, f"must be a number (one of {listed}), not {value!r}"
        if float(value) not in allowed:
            return None, f"{value!r} is not one of the answers ({listed})"
        return int(value), None
    return _check_number(value, item.minimum, item.maximum, whole=item.whole_numbers)


def _check_number(
    value: Any, low: float | None, high: float | None, *, whole: bool
) -> tuple[int | float | None, str | None]:
    if not _is_number(value):
        return None, f"must be a number, not {value!r}"
    if not math.isfinite(value):
        return None, f"must be a finite number, not {value!r}"
    if whole and not float(value).is_integer():
        return None, f"must be a whole number, not {value!r}"
    if (low is not None and value < low) or (high is not None and value > high):
        return None, f"{value!r} is out of range ({low:g} to {high:g})"
    return (int(value) if whole else value), None


def _decimals(value: int | float) -> int:
    exponent = Decimal(repr(value)).as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _exact(value: Answer | float) -> Fraction:
    if isinstance(value, float):
        return Fraction(repr(value))  # the decimal written, not its binary approximation
    assert isinstance(value, int)
    return Fraction(value)


def _rounded(value: Fraction, decimals: int) -> float:
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return float(exact.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)) + 0.0


def _total(
    d: InstrumentDefinition, answers: Mapping[str, Answer]
) -> tuple[Fraction | None, bool, str | None]:
    rule = d.scoring.rule
    if rule == "none":
        return None, False, None
    if rule == "entered":
        return _exact(answers[ENTERED_SCORE_KEY]), False, None
    scored = d.scored_items
    answered = [item for item in scored if item.key in answers]
    missing = [item.key for item in scored if not item.optional and item.key not in answers]
    assert d.scoring.missing is not None
    allowed = d.scoring.missing.max_missing
    if len(missing) > allowed or not answered:
        names = ", ".join(missing) or "all"
        limit = "no score with any item missing" if allowed == 0 else f"at most {allowed}"
        return None, False, f"scored item(s) missing: {names} ({limit})"
    values = [_exact(answers[item.key]) for item in answered]
    prorated = bool(missing)
    if rule in ("mean", "single"):
        return sum(values, Fraction(0)) / len(values), prorated, None
    if rule == "sum":
        expected = len([i for i in scored if not i.optional]) + len(
            [i for i in answered if i.optional]
        )
        return sum(values, Fraction(0)) * expected / len(values), prorated, None
    # percent
    span = sum((_exact(_bound(i, "max")) - _exact(_bound(i, "min")) for i in answered), Fraction(0))
    points = sum(
        (value - _exact(_bound(item, "min")) for item, value in zip(answered, values, strict=True)),
        Fraction(0),
    )
    return points / span * 100, prorated, None


def _bound(item: Item, which: str) -> float:
    value = item.answer_minimum if which == "min" else item.answer_maximum
    assert value is not None
    return value


def _sum_lower_bound(d: InstrumentDefinition, answers: Mapping[str, Answer]) -> Fraction | None:
    """The least a sum can be given the answered items (unanswered ones at their minimum)."""
    if d.scoring.rule != "sum":
        return None
    total = Fraction(0)
    for item in d.scored_items:
        total += _exact(answers[item.key]) if item.key in answers else _exact(_bound(item, "min"))
    return total


# --- diaries -----------------------------------------------------------------------------------


def _relief(before: Fraction, after: Fraction) -> Fraction:
    return max(Fraction(0), (before - after) / before * 100)


def _block_relief(
    d: InstrumentDefinition, answers: Mapping[str, Answer]
) -> tuple[Fraction | None, dict[str, Derived], str | None]:
    threshold = d.scoring.relief_threshold_pct
    assert threshold is not None
    items = sorted(d.scored_items, key=lambda item: item.timepoint_minutes or 0)
    pre_item, post_items = items[0], items[1:]
    derived: dict[str, Derived] = {
        "relief_threshold_pct": threshold,
        "peak_relief_pct": None,
        "peak_relief_at_hours": None,
        "threshold_reached_hours": None,
        "threshold_lasted_hours": None,
        "threshold_to_last_point": None,
    }
    for item in post_items:
        derived[f"relief_pct_{item.key}"] = None
    if pre_item.key not in answers:
        return None, derived, f"the pre-block rating ({pre_item.key}) is missing"
    pre = _exact(answers[pre_item.key])
    if pre == 0:
        return None, derived, "no pain before the block: relief cannot be computed"
    points: list[tuple[int, Fraction | None]] = []
    for item in post_items:
        minutes = item.timepoint_minutes or 0
        relief = _relief(pre, _exact(answers[item.key])) if item.key in answers else None
        points.append((minutes, relief))
        if relief is not None:
            derived[f"relief_pct_{item.key}"] = _rounded(relief, d.scoring.decimals)
    answered = [(m, r) for m, r in points if r is not None]
    if not answered:
        return None, derived, "no rating after the block"
    peak = max(r for _, r in answered)
    derived["peak_relief_pct"] = _rounded(peak, d.scoring.decimals)
    derived["peak_relief_at_hours"] = _hours(next(m for m, r in answered if r == peak))

    onset: int | None = None
    last: int | None = None
    for minutes, relief in points:
        reached = relief is not None and relief >= threshold
        if onset is None:
            if reached:
                onset = last = minutes
        elif reached:
            last = minutes
        else:
            break
    derived["threshold_reached_hours"] = _hours(onset) if onset is not None else None
    derived["threshold_lasted_hours"] = _hours(last) if last is not None else 0.0
    derived["threshold_to_last_point"] = last is not None and last == points[-1][0]
    return peak, derived, None


def _hours(minutes: int) -> float:
    return round(minutes / 60, 2)


def _baseline_relief(total: Fraction | None, baseline: float | None) -> dict[str, Derived]:
    if total is None or baseline is None:
        return {"relief_pct": None, "change_from_baseline": None}
    start = _exact(baseline)
    change = _rounded(total - start, 2)
    relief = _rounded(_relief(start, total), 1) if start != 0 else None
    return {"relief_pct": relief, "change_from_baseline": change}


# --- red flags -----------------------------------------------------------------------------------


def _red_flags(
    d: InstrumentDefinition,
    answers: Mapping[str, Answer],
    invalid: set[str],
    total: Fraction | None,
    texts: Mapping[str, str],
) -> tuple[RedFlag, ...]:
    flags: list[RedFlag] = []
    for rule in d.red_flags:
        raised = _raised(d, rule, answers, invalid, total)
        if raised is None:
            continue
        value, partial = raised
        flags.append(_flag(rule, value, partial, texts))
    flags.sort(key=lambda flag: URGENCY_ORDER[flag.urgency])
    return tuple(flags)


def _flag(
    rule: RedFlagRule, value: Answer | float | None, partial: bool, texts: Mapping[str, str]
) -> RedFlag:
    staff = rule.staff_message
    if partial:
        staff += " (reached by the items answered; the total could not be computed)"
    patient = rule.patient_message.format_map(texts) if rule.patient_message else None
    return RedFlag(rule.code, rule.urgency, staff, patient, rule.item, value)


def _raised(
    d: InstrumentDefinition,
    rule: RedFlagRule,
    answers: Mapping[str, Answer],
    invalid: set[str],
    total: Fraction | None,
) -> tuple[Answer | float | None, bool] | None:
    """(the value that raised it, whether it is a partial sum) or None when not raised."""
    if rule.item is not None:
        value = answers.get(rule.item)
        if rule.missing:
            return (None, False) if value is None and rule.item not in invalid else None
        if value is None:
            return None
        if rule.at_least is not None:
            return (value, False) if _is_number(value) and value >= rule.at_least else None
        same = type(value) is type(rule.equals) and value == rule.equals
        return (value, False) if same else None
    assert rule.at_least is not None
    if total is not None:
        return (_rounded(total, d.scoring.decimals), False) if total >= rule.at_least else None
    bound = _sum_lower_bound(d, answers)
    if bound is not None and bound >= rule.at_least:
        return _rounded(bound, d.scoring.decimals), True
    return None


# --- derived facts and trends ------------------------------------------------------------------


TREND_WINDOW = 6
TREND_MIN_POINTS = 4


def trend(
    instrument: InstrumentDefinition,
    scores: Sequence[tuple[datetime, float]],
    *,
    window: int = TREND_WINDOW,
    min_points: int = TREND_MIN_POINTS,
) -> Trend | None:
    """The direction of the latest scores, or None when it cannot be said.

    Rule: take the last `window` (6) scores by time; with fewer than `min_points` (4), or all at
    the same instant, there is no trend. Fit a least-squares line through them (score against
    days) and take its change over the window (slope x days from the first to the last score).
    It is a trend when that change reaches the MCID: `points` when the instrument has one,
    otherwise `percent` of the fitted value at the window's start. At least the MCID in the
    better direction is "improving", in the worse direction "worsening", anything smaller
    "stable". Categorical instruments and instruments without an MCID have no trend.
    """
    mcid = instrument.mcid
    if instrument.direction == "categorical" or mcid is None:
        return None
    if any(at.tzinfo is None for at, _ in scores):
        raise ValueError("trend needs time-zone aware datetimes")
    recent = sorted(scores, key=lambda pair: pair[0])[-window:]
    if len(recent) < min_points:
        return None
    start = recent[0][0]
    xs = [(at - start).total_seconds() / _SECONDS_PER_DAY for at, _ in recent]
    ys = [float(value) for _, value in recent]
    span = xs[-1] - xs[0]
    if span <= 0:
        return None
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mean_x) ** 2 for x in xs)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sxx
    fitted_change = slope * span
    if mcid.points is not None:
        threshold = mcid.points
    else:
        assert mcid.percent is not None
        fitted_start = mean_y + slope * (xs[0] - mean_x)
        threshold = mcid.percent / 100 * abs(fitted_start)
        if threshold <= 0:
            return None
    gain = fitted_change if instrument.direction == "higher_is_better" else -fitted_change
    if gain >= threshold - _EPSILON:
        return "improving"
    if gain <= -threshold + _EPSILON:
        return "worsening"
    return "stable"
