"""The guard language: what parses, what is refused at load time, three-valued evaluation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from workflows.expressions import Vocabulary, compile_expression

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
VOCABULARY = Vocabulary(
    facts=frozenset(
        {"peg.latest", "peg.baseline", "peg.improvement_pct", "pt.sessions_attended",
         "psych_eval.outcome", "naloxone.offered", "mme.daily"}
    ),
    thresholds=frozenset({"mme_naloxone"}),
    tracks={"ladder": frozenset({"intake", "conventional"}), "pt": frozenset({"active", "done"})},
)  # fmt: skip


@dataclass
class Context:
    facts: dict[str, Any] = field(default_factory=dict)
    states: dict[str, str] = field(
        default_factory=lambda: {"ladder": "conventional", "pt": "active"}
    )
    entered: dict[str, datetime] = field(default_factory=dict)
    events: dict[str, list[datetime]] = field(default_factory=dict)
    now: datetime = NOW
    track: str = "ladder"

    def fact(self, name: str) -> Any:
        return self.facts.get(name)

    def threshold(self, name: str) -> tuple[Any, str]:
        return {"mme_naloxone": (50, "CDC 2022")}[name]

    def state_of(self, track: str) -> str:
        return self.states[track]

    def time_in_state(self, track: str) -> timedelta:
        return self.now - self.entered.get(track, self.now - timedelta(weeks=3))

    def occurrences(self, kind: str) -> Sequence[datetime]:
        return self.events.get(kind, [])


def evaluate(source: str, **facts: Any) -> bool | None:
    expression, problems = compile_expression(source, VOCABULARY)
    assert problems == []
    assert expression is not None
    return expression.evaluate(
        Context(facts={k.replace("__", "."): v for k, v in facts.items()})
    ).result


@pytest.mark.parametrize(
    ("source", "facts", "expected"),
    [
        ("peg.latest >= 4", {"peg__latest": 6}, True),
        ("peg.latest >= 4", {"peg__latest": 3.5}, False),
        ("peg.latest >= 4", {}, None),
        ("peg.latest >= 4 and pt.sessions_attended >= 8", {"peg__latest": 6}, None),
        ("peg.latest >= 4 and pt.sessions_attended >= 8", {"pt__sessions_attended": 2}, False),
        ("peg.latest >= 4 or pt.sessions_attended >= 8", {"pt__sessions_attended": 9}, True),
        ("peg.latest >= 4 or pt.sessions_attended >= 8", {"pt__sessions_attended": 2}, None),
        ("not naloxone.offered", {"naloxone__offered": False}, True),
        ("not naloxone.offered", {}, None),
        (
            "mme.daily >= threshold.mme_naloxone and not naloxone.offered",
            {"mme__daily": 60, "naloxone__offered": False},
            True,
        ),
        (
            "(peg.baseline - peg.latest) / peg.baseline * 100 >= 30",
            {"peg__baseline": 8, "peg__latest": 5},
            True,
        ),
        (
            "(peg.baseline - peg.latest) / peg.baseline * 100 >= 30",
            {"peg__baseline": 0, "peg__latest": 0},
            None,
        ),
        ("2 <= pt.sessions_attended < 12", {"pt__sessions_attended": 5}, True),
        ("2 <= pt.sessions_attended < 12", {"pt__sessions_attended": 12}, False),
        (
            "psych_eval.outcome in ['cleared', 'cleared_with_conditions']",
            {"psych_eval__outcome": "cleared"},
            True,
        ),
        (
            "psych_eval.outcome not in ['not_cleared']",
            {"psych_eval__outcome": "not_cleared"},
            False,
        ),
        ("known(peg.baseline)", {}, False),
        ("known(peg.baseline)", {"peg__baseline": 0}, True),
        ("max(peg.latest, 3) == 3 and abs(-2) == 2", {"peg__latest": 1}, True),
        ("in_state('ladder', 'conventional') and not in_state('pt', 'done')", {}, True),
        ("weeks_in_state() >= 3 and days_in_state('pt') >= 21", {}, True),
        ("weeks_in_state() > 3", {}, False),
        ("true and not false", {}, True),
    ],
)
def test_evaluation(source: str, facts: dict[str, Any], expected: bool | None) -> None:
    assert evaluate(source, **facts) is expected


def test_rolling_counts_and_days_since() -> None:
    expression, _ = compile_expression(
        "count('esi', days=365) < 4 and days_since('esi') >= 14", VOCABULARY
    )
    assert expression is not None
    context = Context(events={"esi": [NOW - timedelta(days=d) for d in (20, 200, 400)]})
    evaluation = expression.evaluate(context)
    assert evaluation.result is True
    readings = {r.name: r.value for r in evaluation.readings}
    assert readings == {"count(esi, last 365 days)": 2, "days_since(esi)": 20.0}
    context.events["esi"].append(NOW - timedelta(days=3))
    assert expression.evaluate(context).result is False
    never = expression.evaluate(Context())
    assert never.result is None
    assert never.missing == ("days_since(esi)",)


def test_readings_record_every_value_read_including_missing() -> None:
    expression, _ = compile_expression(
        "peg.latest >= 4 and mme.daily >= threshold.mme_naloxone", VOCABULARY
    )
    assert expression is not None
    evaluation = expression.evaluate(Context(facts={"peg.latest": 7}))
    assert [(r.name, r.value, r.source) for r in evaluation.readings] == [
        ("peg.latest", 7, None),
        ("mme.daily", None, None),
        ("threshold.mme_naloxone", 50, "CDC 2022"),
    ]
    assert evaluation.missing == ("mme.daily",)
    assert evaluation.result is None


def test_a_type_mismatch_at_run_time_is_unknown_with_an_error_not_an_exception() -> None:
    expression, _ = compile_expression("peg.latest > 'high'", VOCABULARY)
    assert expression is not None
    evaluation = expression.evaluate(Context(facts={"peg.latest": 4}))
    assert evaluation.result is None
    assert evaluation.errors


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("peg.lates >= 4", "unknown fact 'peg.lates'"),
        ("threshold.nope > 1", "unknown threshold 'threshold.nope'"),
        ("__import__('os').system('id')", "unknown function"),
        ("peg.latest.__class__ == 1", "unknown fact 'peg.latest.__class__'"),
        ("[x for x in [1]]", "ListComp is not allowed"),
        ("lambda: 1", "Lambda is not allowed"),
        ("peg.latest ** 2 > 1", "operator Pow is not allowed"),
        ("peg.latest is None", "comparison Is is not allowed"),
        ("peg.latest in pt.sessions_attended", "'in' needs a list"),
        ("in_state('nowhere', 'x')", "unknown track 'nowhere'"),
        ("in_state('ladder', 'limbo')", "track 'ladder' has no state 'limbo'"),
        ("count('esi')", "count('kind', days=N)"),
        ("count('esi', months=3)", "count('kind', days=N)"),
        ("weeks_in_state('mars')", "unknown track 'mars'"),
        ("open('/etc/passwd')", "unknown function 'open'"),
        ("peg.latest >=", "does not parse"),
        ("peg['latest'] > 1", "Subscript is not allowed"),
        ("None == peg.latest", "literal None is not allowed"),
    ],
)
def test_refused_at_load_time(source: str, message: str) -> None:
    expression, problems = compile_expression(source, VOCABULARY)
    assert expression is None
    assert any(message in problem for problem in problems), problems
