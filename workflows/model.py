"""Runtime values: what `decide` reads (snapshot, event) and what it returns (decision).

All are frozen dataclasses of plain values, so the Django side can persist them as JSON
(`as_dict`) and the engine can be tested without any storage.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, ClassVar

from workflows.facts import FactValue


@dataclass(frozen=True)
class TrackState:
    state: str
    entered_at: datetime


@dataclass(frozen=True)
class Actor:
    """Who sent an event. `role` is checked against approval gates."""

    id: str
    role: str


@dataclass(frozen=True)
class ThresholdValue:
    value: Any
    source: str


@dataclass(frozen=True)
class ActiveTimer:
    key: str  # "<track>.<timer name>": at most one active timer per kind
    track: str
    state: str
    event: str
    due_at: datetime


@dataclass(frozen=True)
class Proposal:
    """An escalation whose criteria held, waiting for a clinician's decision."""

    id: str
    track: str
    transition_id: str
    source: str
    target: str
    event: str
    roles: tuple[str, ...]
    summary: str
    proposed_at: datetime
    evidence: GuardCheck | None


@dataclass(frozen=True)
class Snapshot:
    """Everything `decide` may know about one pathway instance."""

    configuration: Mapping[str, TrackState]
    facts: Mapping[str, FactValue] = field(default_factory=dict)
    thresholds: Mapping[str, ThresholdValue] = field(default_factory=dict)
    occurrences: Mapping[str, tuple[datetime, ...]] = field(default_factory=dict)
    timers: Mapping[str, ActiveTimer] = field(default_factory=dict)
    proposals: Mapping[str, Proposal] = field(default_factory=dict)


@dataclass(frozen=True)
class Event:
    """Something that happened. `key` makes redelivery harmless (the caller checks it)."""

    name: str
    key: str
    actor: Actor | None = None
    proposal_id: str | None = None  # approve / reject
    reason: str = ""  # reject (required), approve (optional note)
    timer_key: str | None = None  # set when a timer fired
    timer_due_at: datetime | None = None  # the firing timer's due time: tells cycles apart


# --- explanation ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FactReading:
    name: str
    value: Any
    source: str | None = None


@dataclass(frozen=True)
class GuardCheck:
    """One guard evaluated: the expression, the values it read and the result."""

    track: str
    transition_id: str
    event: str
    source: str
    target: str
    expression: str | None
    result: bool | None  # None: unknown because facts were missing
    readings: tuple[FactReading, ...] = ()
    missing: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return self.result is True

    def describe(self) -> str:
        if self.expression is None:
            return f"{self.source} → {self.target}: no guard"
        values = ", ".join(f"{r.name} = {_show(r.value)}" for r in self.readings)
        verdict = {True: "held", False: "did not hold", None: "unknown"}[self.result]
        text = f"{self.source} → {self.target}: `{self.expression}` {verdict}"
        if values:
            text += f" ({values})"
        if self.missing:
            text += f"; missing: {', '.join(self.missing)}"
        return text


def _show(value: Any) -> str:
    if value is None:
        return "missing"
    if isinstance(value, float):
        return f"{value:g}"
    return repr(value) if isinstance(value, str) else str(value)


@dataclass(frozen=True)
class Explanation:
    checks: tuple[GuardCheck, ...] = ()
    notes: tuple[str, ...] = ()

    def summary(self) -> str:
        return "; ".join([*self.notes, *(check.describe() for check in self.checks)])


# --- effects ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Effect:
    """An instruction for the Django side, as a value. `track` says which track produced it."""

    kind: ClassVar[str] = ""
    track: str

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **_plain(asdict(self))}


@dataclass(frozen=True)
class StartCheckins(Effect):
    kind: ClassVar[str] = "start_checkins"
    instrument: str
    every: timedelta
    series: str


@dataclass(frozen=True)
class StopCheckins(Effect):
    kind: ClassVar[str] = "stop_checkins"
    series: str | None
    instrument: str | None


@dataclass(frozen=True)
class CreateTask(Effect):
    """A task for a discipline. It belongs to `state` of its track: the state the track is in
    once the transition that emitted it is done (the state entered, or, for an internal
    transition, the state it stays in); leaving that state (re-entering it too) ends the task's
    reason to be (`PathwayDefinition.task_states`)."""

    kind: ClassVar[str] = "create_task"
    discipline: str
    title: str
    due_at: datetime | None
    priority: str
    state: str


@dataclass(frozen=True)
class Notify(Effect):
    kind: ClassVar[str] = "notify"
    to: tuple[str, ...]
    message: str
    urgency: str


@dataclass(frozen=True)
class RaiseFlag(Effect):
    kind: ClassVar[str] = "raise_flag"
    code: str
    severity: str
    message: str


@dataclass(frozen=True)
class ProposeEscalation(Effect):
    """Tell the approvers a proposal is waiting (the proposal is in `Decision.proposals_opened`)."""

    kind: ClassVar[str] = "propose_escalation"
    proposal_id: str
    source: str
    target: str
    roles: tuple[str, ...]
    summary: str


# --- timers -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StartTimer:
    timer: ActiveTimer


@dataclass(frozen=True)
class CancelTimer:
    key: str
    reason: str  # "state exited", "fired", "final state"


TimerOp = StartTimer | CancelTimer


# --- the decision -----------------------------------------------------------------------------


class Outcome(StrEnum):
    STARTED = "started"
    TRANSITIONED = "transitioned"
    PROPOSED = "proposed"
    REJECTED = "rejected"  # a proposal was rejected by a clinician
    NO_CHANGE = "no_change"  # the event applied to no transition, or every guard failed


@dataclass(frozen=True)
class TransitionTaken:
    track: str
    transition_id: str
    event: str
    source: str
    target: str
    at: datetime
    proposal_id: str | None = None  # set when this step was an approved escalation
    approved_by: Actor | None = None
    check: GuardCheck | None = None
    internal: bool = False  # effects only: the track stayed where it was


@dataclass(frozen=True)
class ProposalClosed:
    proposal_id: str
    resolution: str  # "approved" | "rejected" | "withdrawn"
    actor: Actor | None
    reason: str


@dataclass(frozen=True)
class Decision:
    event: Event | None  # None for the start of an instance
    outcome: Outcome
    configuration: Mapping[str, TrackState]
    transitions: tuple[TransitionTaken, ...] = ()
    effects: tuple[Effect, ...] = ()
    timer_ops: tuple[TimerOp, ...] = ()
    proposals_opened: tuple[Proposal, ...] = ()
    proposals_closed: tuple[ProposalClosed, ...] = ()
    explanation: Explanation = field(default_factory=Explanation)
    completed: bool = False  # every track is in a final state

    @property
    def changed(self) -> bool:
        return self.outcome is not Outcome.NO_CHANGE


def _plain(value: Any) -> Any:
    """JSON-friendly: datetimes as ISO 8601, durations as seconds, tuples as lists."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def as_dict(value: Any) -> Any:
    """Any engine dataclass as JSON-friendly data (for the transition log and the outbox)."""
    if isinstance(value, Effect):
        return value.as_dict()
    return _plain(asdict(value))
