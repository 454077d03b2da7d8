"""The guard language: small, safe, explainable expressions over clinical facts.

Guards are written in a subset of Python's expression syntax, parsed by the standard library's
`ast` and *interpreted* here node by node; nothing is ever passed to `eval`. What is allowed:

* numbers, 'strings', true/false (or True/False);
* fact names such as `peg.improvement_pct` and thresholds such as `threshold.mbb_relief_pct`;
* `and`, `or`, `not`; comparisons `< <= > >= == !=` (chains too) and `in` / `not in` a list;
* `+ - * /` and unary minus;
* functions: `in_state('track', 'state', ...)`, `weeks_in_state()`, `days_in_state('track')`,
  `count('kind', days=365)`, `days_since('kind')`, `known(fact.name)`, `min`, `max`, `abs`.

A fact without a value is *missing*. Missing values make comparisons and arithmetic *unknown*, and
`and` / `or` / `not` follow three-valued logic (false and unknown = false, true or unknown = true).
A guard passes only when it is true, and its explanation names the facts that were missing.
Every name is checked when the definition is loaded, so a typo is a load-time error, not a guard
that silently never passes.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from workflows.errors import ExpressionError


class _Unknown:
    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "unknown"

    def __bool__(self) -> bool:
        raise TypeError("unknown has no truth value")


UNKNOWN = _Unknown()

THRESHOLD_PREFIX = "threshold."
_CONSTANTS = {"true": True, "false": False, "True": True, "False": False}
_WINDOW_UNITS = {"days": 1.0, "weeks": 7.0}

_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}
_ARITH: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}
_OP_TEXT: dict[type[ast.AST], str] = {
    ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=",
    ast.In: "in", ast.NotIn: "not in", ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/",
}  # fmt: skip


@dataclass(frozen=True)
class Reading:
    """A value an expression read, for the explanation."""

    name: str
    value: Any
    source: str | None = None  # thresholds: where the value comes from


class GuardContext(Protocol):
    """What a guard can see. Implemented by the engine over a snapshot."""

    now: datetime
    track: str

    def fact(self, name: str) -> Any: ...  # None when missing

    def threshold(self, name: str) -> tuple[Any, str]: ...  # (value, source)

    def state_of(self, track: str) -> str: ...

    def time_in_state(self, track: str) -> timedelta: ...

    def occurrences(self, kind: str) -> Sequence[datetime]: ...


@dataclass(frozen=True)
class Vocabulary:
    """The names a definition's guards may use."""

    facts: frozenset[str]
    thresholds: frozenset[str]
    tracks: Mapping[str, frozenset[str]]  # track → its states


@dataclass(frozen=True)
class Evaluation:
    result: bool | None  # None: unknown
    readings: tuple[Reading, ...]
    missing: tuple[str, ...]
    errors: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return self.result is True


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base is not None else None
    return None


def _literal_strings(call: ast.Call) -> list[str] | None:
    values = []
    for arg in call.args:
        if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
            return None
        values.append(arg.value)
    return values


@dataclass
class _Checker:
    vocabulary: Vocabulary
    problems: list[str] = field(default_factory=list)

    def check(self, node: ast.AST) -> None:
        if isinstance(node, ast.Expression):
            self.check(node.body)
        elif isinstance(node, ast.Constant):
            if isinstance(node.value, bool | int | float | str):
                return
            self.problems.append(f"literal {node.value!r} is not allowed")
        elif isinstance(node, ast.Name | ast.Attribute):
            self._check_name(node)
        elif isinstance(node, ast.BoolOp):
            for value in node.values:
                self.check(value)
        elif isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, ast.Not | ast.USub):
                self.problems.append("only 'not' and unary minus are allowed")
            self.check(node.operand)
        elif isinstance(node, ast.BinOp):
            if type(node.op) not in _ARITH:
                self.problems.append(f"operator {type(node.op).__name__} is not allowed")
            self.check(node.left)
            self.check(node.right)
        elif isinstance(node, ast.Compare):
            self.check(node.left)
            for op, comparator in zip(node.ops, node.comparators, strict=True):
                if type(op) not in _COMPARE:
                    self.problems.append(f"comparison {type(op).__name__} is not allowed")
                if isinstance(op, ast.In | ast.NotIn) and not isinstance(
                    comparator, ast.List | ast.Tuple
                ):
                    self.problems.append("'in' needs a list written in the expression, e.g. [1, 2]")
                self.check(comparator)
        elif isinstance(node, ast.List | ast.Tuple):
            for element in node.elts:
                self.check(element)
        elif isinstance(node, ast.Call):
            self._check_call(node)
        else:
            self.problems.append(f"{type(node).__name__} is not allowed in a guard")

    def _check_name(self, node: ast.Name | ast.Attribute) -> None:
        name = _dotted(node)
        if name is None:
            self.problems.append("only plain fact names may be used (no indexing or calls on them)")
        elif name in _CONSTANTS:
            return
        elif name.startswith(THRESHOLD_PREFIX):
            if name[len(THRESHOLD_PREFIX) :] not in self.vocabulary.thresholds:
                self.problems.append(f"unknown threshold '{name}' (declare it under thresholds:)")
        elif name not in self.vocabulary.facts:
            self.problems.append(f"unknown fact '{name}'")

    def _check_call(self, node: ast.Call) -> None:
        fname = node.func.id if isinstance(node.func, ast.Name) else None
        if fname not in _FUNCTIONS:
            self.problems.append(
                f"unknown function '{_dotted(node.func) or '?'}' "
                f"(allowed: {', '.join(sorted(_FUNCTIONS))})"
            )
            return
        tracks = self.vocabulary.tracks
        if fname == "in_state":
            args = _literal_strings(node)
            if not args or len(args) < 2 or node.keywords:
                self.problems.append("in_state('track', 'state', ...) takes a track and states")
            elif args[0] not in tracks:
                self.problems.append(f"in_state: unknown track '{args[0]}'")
            else:
                for state in args[1:]:
                    if state not in tracks[args[0]]:
                        self.problems.append(f"in_state: track '{args[0]}' has no state '{state}'")
        elif fname in ("weeks_in_state", "days_in_state"):
            args = _literal_strings(node)
            if args is None or len(args) > 1 or node.keywords:
                self.problems.append(f"{fname}() takes at most one track name")
            elif args and args[0] not in tracks:
                self.problems.append(f"{fname}: unknown track '{args[0]}'")
        elif fname in ("count", "days_since"):
            args = _literal_strings(node)
            if args is None or len(args) != 1:
                self.problems.append(f"{fname}() takes one kind, e.g. {fname}('esi')")
            keywords = {kw.arg for kw in node.keywords}
            if fname == "count":
                if len(node.keywords) != 1 or not keywords <= set(_WINDOW_UNITS):
                    self.problems.append("count('kind', days=N) or count('kind', weeks=N)")
                for kw in node.keywords:
                    if not (isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, int)):
                        self.problems.append("count(): the window is a whole number")
            elif node.keywords:
                self.problems.append("days_since() takes no keyword arguments")
        elif fname == "known":
            if len(node.args) != 1 or node.keywords or _dotted(node.args[0]) is None:
                self.problems.append("known() takes one fact name")
            else:
                self._check_name(node.args[0])  # type: ignore[arg-type]
        else:  # min, max, abs
            if node.keywords or not node.args or (fname == "abs" and len(node.args) != 1):
                self.problems.append(f"{fname}() takes values only")
            for arg in node.args:
                self.check(arg)


@dataclass(frozen=True)
class Expression:
    source: str
    tree: ast.Expression

    def evaluate(self, context: GuardContext) -> Evaluation:
        run = _Evaluator(context)
        try:
            value = run.eval(self.tree.body)
        except (TypeError, ZeroDivisionError) as exc:
            return Evaluation(None, tuple(run.readings), tuple(run.missing), (str(exc),))
        if value is UNKNOWN:
            result: bool | None = None
        elif isinstance(value, bool):
            result = value
        else:
            return Evaluation(
                None,
                tuple(run.readings),
                tuple(run.missing),
                (f"the guard gave {value!r}, not true or false",),
            )
        return Evaluation(result, tuple(run.readings), tuple(run.missing))


def parse(source: str) -> ast.Expression:
    try:
        return ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"does not parse: {exc.msg} (column {exc.offset})") from exc


def compile_expression(source: str, vocabulary: Vocabulary) -> tuple[Expression | None, list[str]]:
    """Parse and check an expression; return it with the list of problems (empty when valid)."""
    try:
        tree = parse(source)
    except ExpressionError as exc:
        return None, [str(exc)]
    checker = _Checker(vocabulary)
    checker.check(tree)
    if checker.problems:
        return None, checker.problems
    return Expression(source=source.strip(), tree=tree), []


def compile_checked(source: str) -> Expression:
    """For a definition that has already been validated: parse without re-checking names."""
    return Expression(source=source.strip(), tree=parse(source))


class _Evaluator:
    def __init__(self, context: GuardContext) -> None:
        self.context = context
        self.readings: list[Reading] = []
        self.missing: list[str] = []

    def _read(self, name: str) -> Any:
        if name in _CONSTANTS:
            return _CONSTANTS[name]
        if name.startswith(THRESHOLD_PREFIX):
            value, source = self.context.threshold(name[len(THRESHOLD_PREFIX) :])
            self.readings.append(Reading(name, value, source))
            return value
        value = self.context.fact(name)
        self.readings.append(Reading(name, value))
        if value is None:
            if name not in self.missing:
                self.missing.append(name)
            return UNKNOWN
        return value

    def eval(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name | ast.Attribute):
            return self._read(_dotted(node) or "")
        if isinstance(node, ast.List | ast.Tuple):
            return [self.eval(element) for element in node.elts]
        if isinstance(node, ast.BoolOp):
            values = [self.eval(v) for v in node.values]  # all read, for a full explanation
            if isinstance(node.op, ast.And):
                if any(v is False for v in values):
                    return False
                return UNKNOWN if any(v is UNKNOWN for v in values) else _all_bool(values)
            if any(v is True for v in values):
                return True
            return UNKNOWN if any(v is UNKNOWN for v in values) else not _all_bool(values)
        if isinstance(node, ast.UnaryOp):
            operand = self.eval(node.operand)
            if operand is UNKNOWN:
                return UNKNOWN
            if isinstance(node.op, ast.Not):
                if not isinstance(operand, bool):
                    raise TypeError(f"'not' needs true or false, got {operand!r}")
                return not operand
            return -operand
        if isinstance(node, ast.BinOp):
            left, right = self.eval(node.left), self.eval(node.right)
            if left is UNKNOWN or right is UNKNOWN:
                return UNKNOWN
            if isinstance(node.op, ast.Div) and right == 0:
                return UNKNOWN
            return _ARITH[type(node.op)](left, right)
        if isinstance(node, ast.Compare):
            left = self.eval(node.left)
            result: Any = True
            for op, comparator in zip(node.ops, node.comparators, strict=True):
                right = self.eval(comparator)
                if (
                    left is UNKNOWN
                    or right is UNKNOWN
                    or (isinstance(right, list) and UNKNOWN in right)
                ):
                    result = UNKNOWN if result is not False else False
                elif not _COMPARE[type(op)](left, right):
                    result = False
                left = right
            return result
        if isinstance(node, ast.Call):
            return self._call(node)
        raise TypeError(f"{type(node).__name__} is not allowed")

    def _call(self, node: ast.Call) -> Any:
        assert isinstance(node.func, ast.Name)
        fname = node.func.id
        ctx = self.context
        if fname == "known":
            name = _dotted(node.args[0]) or ""
            value = ctx.fact(name)
            self.readings.append(Reading(name, value))
            return value is not None
        if fname in ("min", "max", "abs"):
            values = [self.eval(arg) for arg in node.args]
            if any(v is UNKNOWN for v in values):
                return UNKNOWN
            return _ARITHMETIC_FUNCTIONS[fname](*values)
        args = _literal_strings(node) or []
        if fname == "in_state":
            state = ctx.state_of(args[0])
            self.readings.append(Reading(f"state of {args[0]}", state))
            return state in args[1:]
        if fname in ("weeks_in_state", "days_in_state"):
            track = args[0] if args else ctx.track
            days = ctx.time_in_state(track).total_seconds() / 86400
            value = round(days / 7 if fname == "weeks_in_state" else days, 2)
            self.readings.append(Reading(f"{fname}({track})", value))
            return value
        if fname == "count":
            keyword = node.keywords[0]
            assert keyword.arg is not None
            assert isinstance(keyword.value, ast.Constant)
            amount = keyword.value.value  # validated as a number when the expression compiled
            assert isinstance(amount, int | float)
            window_days = amount * _WINDOW_UNITS[keyword.arg]
            since = ctx.now - timedelta(days=window_days)
            value = sum(1 for at in ctx.occurrences(args[0]) if since < at <= ctx.now)
            self.readings.append(Reading(f"count({args[0]}, last {amount} {keyword.arg})", value))
            return value
        if fname == "days_since":
            past = [at for at in ctx.occurrences(args[0]) if at <= ctx.now]
            if not past:
                self.readings.append(Reading(f"days_since({args[0]})", None))
                self.missing.append(f"days_since({args[0]})")
                return UNKNOWN
            value = round((ctx.now - max(past)).total_seconds() / 86400, 2)
            self.readings.append(Reading(f"days_since({args[0]})", value))
            return value
        raise TypeError(f"unknown function {fname}")


def _all_bool(values: list[Any]) -> bool:
    for value in values:
        if not isinstance(value, bool):
            raise TypeError(f"'and'/'or' need true or false, got {value!r}")
    return True


_ARITHMETIC_FUNCTIONS: dict[str, Callable[..., Any]] = {"min": min, "max": max, "abs": abs}
_FUNCTIONS = frozenset(
    {"in_state", "weeks_in_state", "days_in_state", "count", "days_since", "known"}
    | set(_ARITHMETIC_FUNCTIONS)
)
