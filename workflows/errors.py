"""Errors raised by the engine. None of them carries patient data."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a pathway definition, with where it is."""

    path: tuple[str | int, ...]
    message: str
    line: int | None = None

    @property
    def location(self) -> str:
        dotted = ""
        for part in self.path:
            dotted += f"[{part}]" if isinstance(part, int) else (f".{part}" if dotted else part)
        return dotted or "(top level)"

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line is not None else ""
        return f"{where}{self.location}: {self.message}"


def describe_problems(source: str, problems: Sequence[Problem], *, what: str = "") -> str:
    """The message for `problems` found in `source`: "N problem(s) in <what> <source>:", then a
    line per problem."""
    lines = "\n".join(f"  {source}:{p}" for p in problems)
    named = f"{what} {source}" if what else source
    return f"{len(problems)} problem(s) in {named}:\n{lines}"


class ProblemsError(Exception):
    """A document (`source`) is invalid; `problems` lists every problem found. `what` names the
    kind of document in the message."""

    what: ClassVar[str] = ""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(describe_problems(source, problems, what=self.what))


class WorkflowError(Exception):
    """Base class of every engine error."""


class DefinitionError(ProblemsError, WorkflowError):
    """A pathway definition is invalid; `problems` lists every problem found."""

    what = "pathway definition"


class ExpressionError(WorkflowError):
    """A guard expression does not parse, or uses something the language does not allow."""


class UnknownEvent(WorkflowError):
    """The event is not declared by the instance's pathway definition."""


class UnknownProposal(WorkflowError):
    """An approve/reject names a proposal that is not pending on this instance."""


class ApprovalNotPermitted(WorkflowError):
    """The actor's role may not approve or reject this proposal."""


class EventNotPermitted(WorkflowError):
    """The sender's role may not send this event: the definition names who may (`roles`, empty
    for the pathway's own events, which nobody sends)."""

    def __init__(self, message: str, event: str, roles: tuple[str, ...]) -> None:
        super().__init__(message)
        self.event = event
        self.roles = roles


class InvalidEvent(WorkflowError):
    """The event is malformed for its kind (e.g. a reject without a reason)."""


class CriteriaNoLongerMet(WorkflowError):
    """An approval came after the facts changed: the escalation's guard no longer holds.

    `check` is the guard evaluated now, for the explanation; the proposal stays pending, so the
    clinician can reject it (or approve once the criteria hold again)."""

    def __init__(self, message: str, check: object) -> None:
        super().__init__(message)
        self.check = check
