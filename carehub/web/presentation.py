"""How the staff pages put a pathway into words: titles instead of keys, and sentences built
from the engine's explanation values (the guard, the values it read, each threshold's value and
source) instead of rule text.

One place for it: the caseload, the patient page (summary, escalations, timeline, diagram) and
the action messages all call these functions; templates only place the results. The raw rule
(the guard's text and the values read) stays available beside every sentence (`Clause.raw`,
`CheckText.expression`), one click away on the page.

Sentences are built from values, never from the guard's text alone: a guard
`peg.improvement_pct < threshold.trial_success_improvement_pct` read with 5.9 and 30 (IMMPACT)
becomes "PEG improved 5.9 % (7.8 → 7.3) since the baseline on 3 Sep; the rule asks for less
than 30 % (IMMPACT (Dworkin 2008)): met". A clause this module cannot put into words is shown
as its expression with the values read, so nothing is ever hidden.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils import timezone
from django.utils.dates import MONTHS_3

from carehub.core import clock
from carehub.instruments import catalogue
from carehub.observations.reference import PROCEDURES, PSYCH_EVALUATION_OUTCOMES
from workflows import PathwayDefinition
from workflows.facts import STANDARD_FACTS

# --- titles -------------------------------------------------------------------------------------


def humanise(name: str) -> str:
    """A last resort for a name the definition gives no title: words, first one capitalised."""
    return name.replace("_", " ").strip().capitalize()


def track_title(definition: PathwayDefinition | None, track: str) -> str:
    spec = definition.tracks.get(track) if definition is not None else None
    return (spec.title if spec is not None else "") or humanise(track)


def state_title(definition: PathwayDefinition | None, track: str, state: str) -> str:
    spec = definition.tracks.get(track) if definition is not None else None
    state_spec = spec.states.get(state) if spec is not None else None
    return (state_spec.title if state_spec is not None else "") or humanise(state)


def short_track_title(definition: PathwayDefinition | None, track: str) -> str:
    """The track's short name (for chips), else its title up to any parenthesis."""
    spec = definition.tracks.get(track) if definition is not None else None
    if spec is not None and spec.short_title:
        return spec.short_title
    return track_title(definition, track).split(" (")[0]


def event_title(definition: PathwayDefinition | None, event: str) -> str:
    """The event's title from the definition (then its description, then its name in words)."""
    if event == "approve":
        return "Escalation approved"
    if event == "reject":
        return "Escalation rejected"
    spec = definition.events.get(event) if definition is not None else None
    if spec is None:
        return humanise(event)
    return spec.title or spec.description or humanise(event)


def instrument_title(code: str) -> str:
    """The instrument's short name on staff pages ("PHQ-9"; `carehub.instruments.catalogue`)."""
    return catalogue.label(code)


def procedure_title(code: str) -> str:
    return PROCEDURES[code].title if code in PROCEDURES else humanise(code)


# What a fact is called on the pages (the catalogue's description is the fallback).
_FACT_LABELS = {
    "pain.months": "Months of pain",
    "failed_treatment_classes": "Treatment classes failed",
    "conservative_care.weeks": "Weeks of conservative care",
    "adverse_effects.intolerable": "Intolerable side effects",
    "pt.sessions_attended": "Physical therapy sessions attended",
    "pt.no_shows": "Physical therapy sessions missed",
    "cbt.sessions_attended": "CBT sessions attended",
    "cbt.no_shows": "CBT sessions missed",
    "psych_eval.outcome": "Psychological evaluation",
    "mme.daily": "Daily opioid dose (MME)",
    "opioid.long_term": "Long-term opioid therapy",
    "naloxone.offered": "Naloxone offered",
    "benzodiazepine.coprescribed": "Benzodiazepine co-prescribed",
    "substance_use.active": "Active substance use disorder",
    "pump.days_to_refill": "Days to the pump refill",
    "phq9.item9": "PHQ-9 item 9 answer",
    "udt.days_since": "Days since the last urine drug test",
    "pdmp.days_since_check": "Days since the prescription monitoring check",
    "opioid.days_since_reassessment": "Days since the last opioid reassessment",
}
_SCORE_ATTRIBUTE_LABELS = {
    "latest": "latest score",
    "baseline": "baseline",
    "change": "change since baseline (points)",
    "improvement_pct": "improvement since baseline",
    "responder": "improved by its minimal important change",
    "weeks_since_latest": "weeks since the last score",
    "trend": "trend",
}


def fact_label(name: str) -> str:
    if name in _FACT_LABELS:
        return _FACT_LABELS[name]
    head, _, attribute = name.partition(".")
    if catalogue.is_score_instrument(head) and attribute in _SCORE_ATTRIBUTE_LABELS:
        return f"{instrument_title(head)} {_SCORE_ATTRIBUTE_LABELS[attribute]}"
    if head in PROCEDURES and attribute == "relief_pct":
        return f"{procedure_title(head)}: relief"
    if head in PROCEDURES and attribute == "relief_weeks":
        return f"{procedure_title(head)}: weeks of relief"
    fact = STANDARD_FACTS.get(name)
    return fact.description[:1].upper() + fact.description[1:] if fact else humanise(name)


def show_value(value: Any, unit: str = "") -> str:
    """A value as a person reads it: numbers without noise, yes/no, choices by their title."""
    if value is None:
        return "not recorded"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        text = f"{value:.1f}".rstrip("0").rstrip(".") if abs(value) < 1000 else f"{value:.0f}"
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, str):
        if value in PSYCH_EVALUATION_OUTCOMES:
            return PSYCH_EVALUATION_OUTCOMES[value].title.lower()
        return humanise(value).lower()
    else:
        text = str(value)
    if unit == "%":
        return f"{text} %"
    return f"{text} {unit}".strip()


def short_date(at: datetime | None, now: datetime | None = None) -> str:
    """`3 Sep` this year, `3 Sep 2025` otherwise (local time)."""
    if at is None:
        return ""
    local = timezone.localtime(at) if timezone.is_aware(at) else at
    this_year = (
        timezone.localtime(now).year if now is not None else timezone.localtime(clock.now()).year
    )
    text = f"{local.day} {MONTHS_3[local.month].title()}"
    return text if local.year == this_year else f"{text} {local.year}"


# --- scores the sentences refer to ---------------------------------------------------------------


@dataclass(frozen=True)
class ScorePoint:
    value: float
    at: datetime


@dataclass
class ScoreSeries:
    """One instrument's scores, oldest first, with its baseline."""

    instrument: str
    points: list[ScorePoint] = field(default_factory=list)
    baseline: ScorePoint | None = None

    @property
    def latest(self) -> ScorePoint | None:
        return self.points[-1] if self.points else None

    @property
    def improvement_pct(self) -> float | None:
        """Improvement from baseline in percent, positive is better (the facts' definition)."""
        if self.baseline is None or self.latest is None or not self.baseline.value:
            return None
        spec = catalogue.catalogue().get(self.instrument)
        change = self.latest.value - self.baseline.value
        better = change if spec is not None and spec.higher_is_better else -change
        return round(100 * better / abs(self.baseline.value), 1)

    def trend_text(self, last: int = 6) -> str:
        """The last few values, e.g. `7.5 → 7.2 → 7.0`."""
        return " → ".join(show_value(p.value) for p in self.points[-last:])


def score_series(observations: Iterable[Any]) -> dict[str, ScoreSeries]:
    """Score observations (any order) → one series per instrument. The baseline is the latest
    score marked as baseline, else the first score (as the facts take it)."""
    series: dict[str, ScoreSeries] = {}
    for obs in sorted(observations, key=lambda o: o.observed_at):
        if obs.value_number is None:
            continue
        item = series.setdefault(obs.code, ScoreSeries(obs.code))
        point = ScorePoint(float(obs.value_number), obs.observed_at)
        item.points.append(point)
        if getattr(obs, "is_baseline", False):
            item.baseline = point
    for item in series.values():
        if item.baseline is None and item.points:
            item.baseline = item.points[0]
    return series


def score_sentence(item: ScoreSeries, now: datetime | None = None) -> str:
    """E.g. `PEG 7.3 on 1 Dec: improved 5.9 % since the baseline of 7.8 on 3 Sep`."""
    latest = item.latest
    if latest is None:
        return f"{instrument_title(item.instrument)}: no score yet"
    text = f"{instrument_title(item.instrument)} {show_value(latest.value)} on "
    text += short_date(latest.at, now)
    pct = item.improvement_pct
    if item.baseline is not None and item.baseline is not latest and pct is not None:
        verb = "improved" if pct >= 0 else "worsened"
        text += (
            f": {verb} {show_value(abs(pct), '%')} since the baseline of "
            f"{show_value(item.baseline.value)} on {short_date(item.baseline.at, now)}"
        )
    return text


# --- explanations --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Clause:
    """One condition of a rule in words, whether it held, and the rule text it came from."""

    text: str
    verdict: bool | None  # None: unknown (something not recorded)
    raw: str

    @property
    def verdict_text(self) -> str:
        return {True: "met", False: "not met", None: "unknown: not recorded yet"}[self.verdict]

    @property
    def verdict_class(self) -> str:
        return {True: "ok", False: "bad", None: "warn"}[self.verdict]


@dataclass(frozen=True)
class CheckText:
    """A guard evaluated, in words."""

    headline: str  # "Conventional care → Interventional review"
    verdict: bool | None
    clauses: list[Clause]
    expression: str  # the raw rule, shown one click away
    readings: list[tuple[str, str, str]]  # (name, value, source) as read

    @property
    def verdict_text(self) -> str:
        return {True: "the rule held", False: "the rule did not hold", None: "unknown"}[
            self.verdict
        ]

    @property
    def verdict_class(self) -> str:
        return {True: "ok", False: "bad", None: "warn"}[self.verdict]


_OPERATORS: dict[type, tuple[str, Callable[[Any, Any], bool]]] = {
    ast.GtE: ("at least", operator.ge),
    ast.Gt: ("more than", operator.gt),
    ast.LtE: ("at most", operator.le),
    ast.Lt: ("less than", operator.lt),
    ast.Eq: ("", operator.eq),
    ast.NotEq: ("anything but", operator.ne),
    ast.In: ("one of", lambda a, b: a in b),
    ast.NotIn: ("none of", lambda a, b: a not in b),
}
_MISSING = object()


@dataclass
class _Reader:
    """Turns the parts of a guard into words and values, from the check's readings."""

    definition: PathwayDefinition | None
    check: Mapping[str, Any]
    scores: Mapping[str, ScoreSeries]
    now: datetime | None
    readings: dict[str, tuple[Any, str | None]] = field(init=False)

    def __post_init__(self) -> None:
        self.readings = {
            r["name"]: (r.get("value"), r.get("source")) for r in self.check.get("readings") or ()
        }

    # a value and how it is said
    def operand(self, node: ast.AST) -> tuple[Any, str, str]:
        """(value or _MISSING, words for the subject, unit) of one side of a comparison."""
        name = _dotted(node)
        if isinstance(node, ast.Constant):
            return node.value, show_value(node.value), ""
        if isinstance(node, ast.List | ast.Tuple):
            values = [e.value for e in node.elts if isinstance(e, ast.Constant)]
            return values, ", ".join(show_value(v) for v in values), ""
        if isinstance(node, ast.Name) and node.id in ("true", "false", "True", "False"):
            value = node.id.lower() == "true"
            return value, show_value(value), ""
        if name is not None and name.startswith("threshold."):
            return self.threshold(name)
        if name is not None:
            value, _ = self.readings.get(name, (None, None))
            return (_MISSING if value is None else value), self.fact_words(name, value), ""
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            return self.call(node)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            value, words, unit = self.operand(node.operand)
            return (_MISSING if value is _MISSING else -value), f"-{words}", unit
        return _MISSING, ast.unparse(node), ""

    def threshold(self, name: str) -> tuple[Any, str, str]:
        key = name.partition(".")[2]
        value, source = self.readings.get(name, (None, None))
        spec = self.definition.thresholds.get(key) if self.definition is not None else None
        unit = spec.unit if spec is not None else ""
        if value is None and spec is not None:
            value = spec.default
        words = show_value(value, unit)
        source = _flat(source or (spec.source if spec is not None else ""))
        return (
            (_MISSING if value is None else value),
            f"{words} ({source})" if source else words,
            unit,
        )

    def fact_words(self, name: str, value: Any) -> str:
        head, _, attribute = name.partition(".")
        if value is None:
            return f"{fact_label(name)}: not recorded yet"
        if catalogue.is_score_instrument(head) and attribute == "improvement_pct":
            verb = "improved" if value >= 0 else "worsened"
            text = f"{instrument_title(head)} {verb} {show_value(abs(value), '%')}"
            series = self.scores.get(head)
            if series is not None and series.baseline is not None and series.latest is not None:
                text += (
                    f" ({show_value(series.baseline.value)} → {show_value(series.latest.value)})"
                    f" since the baseline on {short_date(series.baseline.at, self.now)}"
                )
            return text
        if catalogue.is_score_instrument(head) and attribute == "latest":
            return f"Latest {instrument_title(head)} score {show_value(value)}"
        if catalogue.is_score_instrument(head) and attribute == "change":
            return f"{instrument_title(head)} changed by {value:+g} points since the baseline"
        if head in PROCEDURES and attribute == "relief_pct":
            return f"{procedure_title(head)}: {show_value(value, '%')} relief"
        if head in PROCEDURES and attribute == "relief_weeks":
            return f"{procedure_title(head)}: relief lasted {show_value(value)} weeks"
        return f"{fact_label(name)}: {show_value(value)}"

    def call(self, node: ast.Call) -> tuple[Any, str, str]:
        fname = node.func.id  # type: ignore[attr-defined]
        args = [a.value for a in node.args if isinstance(a, ast.Constant)]
        track = str(args[0]) if args else str(self.check.get("track", ""))
        if fname in ("weeks_in_state", "days_in_state"):
            value, _ = self.readings.get(f"{fname}({track})", (None, None))
            unit = "weeks" if fname == "weeks_in_state" else "days"
            where = (
                state_title(self.definition, track, self.check.get("source", ""))
                if track == self.check.get("track")
                else track_title(self.definition, track)
            )
            words = f"{show_value(value)} {unit} in {where}"
            return (_MISSING if value is None else value), words, unit
        if fname == "count" and args and node.keywords:
            keyword = node.keywords[0]
            window = ast.unparse(keyword.value)
            value, _ = self.readings.get(
                f"count({args[0]!s}, last {window} {keyword.arg})", (0, None)
            )
            what = procedure_title(str(args[0]))
            words = f"{what}: {show_value(value)} in the last {window} {keyword.arg}"
            return value, words, ""
        if fname == "days_since" and args:
            value, _ = self.readings.get(f"days_since({args[0]!s})", (None, None))
            what = procedure_title(str(args[0])).lower()
            if value is None:
                return _MISSING, f"No {what} yet", "days"
            return value, f"{show_value(value)} days since the last {what}", "days"
        if fname == "known" and node.args:
            name = _dotted(node.args[0]) or ""
            value, _ = self.readings.get(name, (None, None))
            return value is not None, f"{fact_label(name)} recorded", ""
        return _MISSING, ast.unparse(node), ""

    # conditions
    def clauses(self, node: ast.AST) -> list[Clause]:
        if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
            return [c for value in node.values for c in self.clauses(value)]
        return [self.clause(node)]

    def clause(self, node: ast.AST) -> Clause:
        raw = ast.unparse(node)
        text, verdict = self.words(node)
        return Clause(text=text, verdict=verdict, raw=raw)

    def words(self, node: ast.AST) -> tuple[str, bool | None]:
        if isinstance(node, ast.BoolOp):
            parts = [self.words(v) for v in node.values]
            verdicts = [v for _, v in parts]
            if isinstance(node.op, ast.Or):
                verdict = True if True in verdicts else (None if None in verdicts else False)
                return "either " + ", or ".join(t for t, _ in parts), verdict
            verdict = False if False in verdicts else (None if None in verdicts else True)
            return "; ".join(t for t, _ in parts), verdict
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            inner, verdict = self.words(node.operand)
            return f"not ({inner})", (None if verdict is None else not verdict)
        if isinstance(node, ast.Compare) and len(node.ops) == 1:
            return self.compare(node.left, node.ops[0], node.comparators[0])
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id == "in_state" and node.args:
                args = [a.value for a in node.args if isinstance(a, ast.Constant)]
                track = str(args[0])
                state, _ = self.readings.get(f"state of {track}", (None, None))
                wanted = ", ".join(state_title(self.definition, track, str(s)) for s in args[1:])
                now_in = state_title(self.definition, track, str(state)) if state else "unknown"
                return (
                    f"{track_title(self.definition, track)} is at {now_in}; the rule asks for "
                    f"{wanted}",
                    None if state is None else state in args[1:],
                )
            value, words, _ = self.call(node)
            if node.func.id == "known":
                return words + (": yes" if value else ": not yet"), bool(value)
            return words, None if value is _MISSING else bool(value)
        name = _dotted(node)
        if name is not None:
            value, _ = self.readings.get(name, (None, None))
            return self.fact_words(name, value), (None if value is None else bool(value))
        return ast.unparse(node), None

    def compare(self, left: ast.expr, op: ast.cmpop, right: ast.expr) -> tuple[str, bool | None]:
        if type(op) not in _OPERATORS:
            return ast.unparse(ast.Compare(left, [op], [right])), None
        words, test = _OPERATORS[type(op)]
        left_value, left_words, _ = self.operand(left)
        right_value, right_words, _ = self.operand(right)
        if isinstance(op, ast.Eq) and isinstance(right, ast.Constant | ast.Name):
            wanted = right_words
        else:
            wanted = f"{words} {right_words}".strip()
        verdict: bool | None
        if left_value is _MISSING or right_value is _MISSING:
            verdict = None
        else:
            try:
                verdict = bool(test(left_value, right_value))
            except TypeError:
                verdict = None
        return f"{left_words}; the rule asks for {wanted}", verdict


def _flat(source: str) -> str:
    """A source shown in parentheses, without parentheses inside them:
    "IMMPACT (Dworkin 2008)" → "IMMPACT, Dworkin 2008"."""
    return source.replace(" (", ", ").replace("(", "").replace(")", "")


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name) and node.id not in ("true", "false", "True", "False"):
        return node.id
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return f"{head}.{node.attr}" if head else None
    return None


def explain_check(
    definition: PathwayDefinition | None,
    check: Mapping[str, Any] | None,
    *,
    scores: Mapping[str, ScoreSeries] | None = None,
    now: datetime | None = None,
) -> CheckText | None:
    """A stored guard check (`GuardCheck` as JSON: the proposal's evidence, a step's checks) in
    words."""
    if not check:
        return None
    track = str(check.get("track", ""))
    headline = (
        f"{state_title(definition, track, str(check.get('source', '')))} → "
        f"{state_title(definition, track, str(check.get('target', '')))}"
    )
    expression = str(check.get("expression") or "")
    result = check.get("result")
    readings = [
        (
            str(r.get("name")),
            show_value(r.get("value")),
            str(r.get("source") or ""),
        )
        for r in check.get("readings") or ()
    ]
    reader = _Reader(definition, check, scores or {}, now)
    if not expression:
        clauses = [Clause("No condition: this step is always taken.", True, "")]
    else:
        try:
            tree = ast.parse(expression, mode="eval").body
            clauses = reader.clauses(tree)
        except (SyntaxError, ValueError):
            clauses = [Clause(expression, result, expression)]
    return CheckText(
        headline=headline,
        verdict=result if isinstance(result, bool) else None,
        clauses=clauses,
        expression=expression,
        readings=readings,
    )


# --- steps and notes ----------------------------------------------------------------------------

_NO_TRANSITION = re.compile(r"^no transition on '(?P<event>[^']+)' from the current states$")
_WAITING = re.compile(r"^(?P<source>\S+) → (?P<target>\S+) is already waiting for approval$")
_REJECTED = re.compile(r"^(?P<source>\S+) → (?P<target>\S+) rejected: (?P<reason>.*)$", re.S)
_APPROVED = re.compile(r"^approved by (?P<role>\S+)$")


def note_text(definition: PathwayDefinition | None, note: str, track: str = "") -> str:
    """An engine note in words (titles instead of keys)."""
    if m := _NO_TRANSITION.match(note):
        return f"No step of the pathway waits for “{event_title(definition, m['event'])}” now."
    if m := _WAITING.match(note):
        return (
            f"{state_title(definition, track, m['source'])} → "
            f"{state_title(definition, track, m['target'])} is already waiting for approval."
        )
    if m := _REJECTED.match(note):
        return (
            f"{state_title(definition, track, m['source'])} → "
            f"{state_title(definition, track, m['target'])} rejected: {m['reason']}"
        )
    if m := _APPROVED.match(note):
        return f"Approved by the {humanise(m['role']).lower()}."
    return note


def moved_text(definition: PathwayDefinition | None, transition: Mapping[str, Any]) -> str:
    """`Escalation ladder: Conventional care → Interventional review`."""
    track = str(transition.get("track", ""))
    return (
        f"{track_title(definition, track)}: "
        f"{state_title(definition, track, str(transition.get('source', '')))} → "
        f"{state_title(definition, track, str(transition.get('target', '')))}"
    )


OUTCOME_WORDS = {
    "started": "pathway started",
    "transitioned": "moved",
    "proposed": "escalation proposed",
    "no_change": "nothing changed",
    "paused": "paused",
    "resumed": "resumed",
    "rejected": "escalation rejected",
}


@dataclass
class StepText:
    event: str
    outcome: str
    moved: list[str]
    notes: list[str]
    checks: list[CheckText]


def explain_step(
    definition: PathwayDefinition | None,
    *,
    event: str,
    outcome: str,
    transitions: Sequence[Mapping[str, Any]],
    explanation: Mapping[str, Any] | None,
    scores: Mapping[str, ScoreSeries] | None = None,
    now: datetime | None = None,
) -> StepText:
    explanation = explanation or {}
    checks = [
        text
        for check in explanation.get("checks") or ()
        if (text := explain_check(definition, check, scores=scores, now=now)) is not None
    ]
    track = next((str(t.get("track")) for t in transitions), "")
    if not track and explanation.get("checks"):
        track = str(explanation["checks"][0].get("track", ""))
    return StepText(
        event=event_title(definition, event),
        outcome=OUTCOME_WORDS.get(outcome, humanise(outcome).lower()),
        moved=[
            moved_text(definition, t)
            for t in transitions
            if not t.get("internal") and t.get("source") != t.get("target")
        ],
        notes=[note_text(definition, str(n), track) for n in explanation.get("notes") or ()],
        checks=checks,
    )


def step_summary(
    definition: PathwayDefinition | None,
    *,
    outcome: str,
    transitions: Sequence[Mapping[str, Any]],
    explanation: Mapping[str, Any] | None,
) -> str:
    """Why nothing moved, in one sentence (for the message after an action)."""
    text = explain_step(
        definition, event="", outcome=outcome, transitions=transitions, explanation=explanation
    )
    failed = [
        f"{c.headline}: " + "; ".join(cl.text + f" ({cl.verdict_text})" for cl in c.clauses)
        for c in text.checks
        if c.verdict is not True
    ]
    return " ".join([*text.notes, *failed]).strip()


# --- what speaks against an escalation ------------------------------------------------------------

# Pain and function scores: one that barely moved speaks against escalating on other grounds.
_OUTCOME_INSTRUMENTS = ("peg", "nrs", "psfs", "odi")


def evidence_against(
    definition: PathwayDefinition | None,
    evidence: Mapping[str, Any] | None,
    *,
    scores: Mapping[str, ScoreSeries],
    facts_now: Mapping[str, Any] | None = None,
    urgent_flags: Sequence[str] = (),
    now: datetime | None = None,
) -> list[str]:
    """What a clinician deciding an escalation should weigh against it, in sentences: pain or
    function scores the rule did not read that improved less than the instrument's minimal
    important change (or got worse), values the rule read that have changed since it was
    proposed, facts it could not read, and unresolved urgent flags."""
    evidence = evidence or {}
    readings = {str(r.get("name")): r.get("value") for r in evidence.get("readings") or ()}
    read_heads = {name.partition(".")[0] for name in readings}
    against: list[str] = []
    for code in _OUTCOME_INSTRUMENTS:
        series = scores.get(code)
        spec = catalogue.score_entries().get(code)
        if series is None or spec is None or code in read_heads or len(series.points) < 2:
            continue
        pct = series.improvement_pct
        if pct is None or series.baseline is None or series.latest is None:
            continue
        numbers = (
            f"({show_value(series.baseline.value)} → {show_value(series.latest.value)}) since "
            f"the baseline on {short_date(series.baseline.at, now)}"
        )
        if pct < 0:
            against.append(
                f"{instrument_title(code)} got worse by {show_value(-pct, '%')} {numbers}."
            )
        elif spec.mcid is not None and spec.mcid.percent is not None and pct < spec.mcid.percent:
            against.append(
                f"{instrument_title(code)} improved only {show_value(pct, '%')} {numbers}; a "
                f"meaningful improvement is {show_value(spec.mcid.percent, '%')} "
                f"({spec.mcid_source_shown}). "
                "The rule for this escalation does not look at it."
            )
    if facts_now is not None and evidence.get("readings"):
        # The rule with today's values: a condition that held when proposed and no longer does.
        today = dict(evidence)
        today["readings"] = [
            {**r, "value": facts_now.get(r.get("name"), r.get("value"))}
            for r in evidence.get("readings") or ()
        ]
        before = explain_check(definition, evidence)
        after = explain_check(definition, today)
        if before is not None and after is not None:
            for then, now_clause in zip(before.clauses, after.clauses, strict=False):
                if then.verdict is True and now_clause.verdict is not True:
                    against.append(
                        f"No longer holds: {now_clause.text} (when proposed: {then.text})."
                    )
    for name in evidence.get("missing") or ():
        against.append(f"{fact_label(str(name))} was not recorded when this was proposed.")
    for message in urgent_flags:
        against.append(f"Unresolved urgent flag: {message}.")
    return against
