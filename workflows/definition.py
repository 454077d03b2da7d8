"""Pathway definitions: the data a pathway is written in.

A definition is a YAML document (see README, "Writing a pathway") parsed into these frozen
pydantic models. The models check the *shape* (types, required keys, no unknown keys); the
cross-references (states, events, facts, roles, reachability) are checked in `validation.py`.
"""

from __future__ import annotations

import re
from datetime import timedelta
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

APPROVE = "approve"
REJECT = "reject"
RESERVED_EVENTS = frozenset({APPROVE, REJECT})

NAME_PATTERN = r"^[a-z][a-z0-9_]*$"
FACT_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$"

_DURATION = re.compile(r"^\s*(\d+)\s*(w|d|h|m|min)\s*$")
_UNIT_SECONDS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "min": 60}


def parse_duration(value: Any) -> timedelta:
    """`"12w"`, `"7d"`, `"36h"`, `"30m"` or a timedelta. No months: say weeks or days."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
            if seconds > 0:
                return timedelta(seconds=seconds)
            raise ValueError("a duration must be longer than zero")
    raise ValueError(
        f"{value!r} is not a duration; write a whole number and a unit: w (weeks), d (days), "
        "h (hours) or m (minutes), e.g. '12w'"
    )


def format_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit in ("w", "d", "h", "m"):
        size = _UNIT_SECONDS[unit]
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
Name = Annotated[str, Field(pattern=NAME_PATTERN)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- effects --------------------------------------------------------------------------------


class StartCheckinsSpec(_Model):
    instrument: Name
    every: Duration
    series: Name | None = None


class StopCheckinsSpec(_Model):
    instrument: Name | None = None
    series: Name | None = None


class CreateTaskSpec(_Model):
    discipline: Name
    title: str = Field(min_length=1)
    due_in: Duration | None = None
    priority: Literal["routine", "urgent"] = "routine"


class NotifySpec(_Model):
    to: list[Name] = Field(min_length=1)
    message: str = Field(min_length=1)
    urgency: Literal["routine", "urgent"] = "routine"


class RaiseFlagSpec(_Model):
    code: Name
    severity: Literal["info", "warning", "urgent"]
    message: str = Field(min_length=1)


EFFECT_KINDS = ("start_checkins", "stop_checkins", "create_task", "notify", "raise_flag", "send")


class EffectSpec(_Model):
    """Exactly one of the keys, e.g. `- create_task: {discipline: coordinator, title: ...}`."""

    start_checkins: StartCheckinsSpec | None = None
    stop_checkins: StopCheckinsSpec | None = None
    create_task: CreateTaskSpec | None = None
    notify: NotifySpec | None = None
    raise_flag: RaiseFlagSpec | None = None
    send: Name | None = Field(
        default=None, description="An event raised inside the pathway after this step"
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> EffectSpec:
        present = [kind for kind in EFFECT_KINDS if getattr(self, kind) is not None]
        if len(present) != 1:
            raise ValueError(
                f"an effect has exactly one of {', '.join(EFFECT_KINDS)}; got {present or 'none'}"
            )
        return self

    @property
    def kind(self) -> str:
        return next(kind for kind in EFFECT_KINDS if getattr(self, kind) is not None)


# --- structure ------------------------------------------------------------------------------


class ApprovalSpec(_Model):
    roles: list[Name] = Field(min_length=1)
    summary: str = Field(default="", description="What the approver is asked to decide")


class TransitionSpec(_Model):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    source: list[str] = Field(alias="from", description="State name(s), or '*' for any")
    event: Name
    target: Name | None = Field(
        default=None,
        alias="to",
        description="The next state; omitted for an internal transition (effects only, no move)",
    )
    guard: str | None = None
    approval: ApprovalSpec | None = None
    effects: list[EffectSpec] = Field(default_factory=list)
    description: str = ""

    @model_validator(mode="before")
    @classmethod
    def _source_as_list(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("from"), str):
            data = {**data, "from": [data["from"]]}
        return data

    def leaves(self, state: str) -> bool:
        return "*" in self.source or state in self.source

    @property
    def internal(self) -> bool:
        return self.target is None

    def target_from(self, source: str) -> str:
        return source if self.target is None else self.target


THRESHOLD_REF = re.compile(r"^threshold\.([a-z][a-z0-9_]*)$")
DAY_UNITS = frozenset({"d", "day", "days"})


def _parse_after(value: Any) -> Any:
    """A duration (`"28d"`), or `threshold.NAME`: a threshold counted in days (the clinic's
    value when it sets one, else the pathway's default)."""
    if isinstance(value, str) and THRESHOLD_REF.match(value.strip()):
        return value.strip()
    return parse_duration(value)


class TimerSpec(_Model):
    name: Name
    state: Name
    after: Annotated[timedelta | str, BeforeValidator(_parse_after)]
    before: Duration | None = Field(
        default=None,
        description="Due this long before `after` (e.g. a notice 14 days before the refill date)",
    )
    event: Name

    @property
    def after_threshold(self) -> str | None:
        """The threshold `after` names (in days), or None for a fixed duration."""
        if isinstance(self.after, str):
            match = THRESHOLD_REF.match(self.after)
            return match.group(1) if match else None
        return None

    def duration(self, days_of: Any = None) -> timedelta:
        """How long after entering its state the timer is due. `days_of(name)` gives a
        threshold's value (needed only when `after` names one); never less than zero."""
        name = self.after_threshold
        if name is None:
            assert isinstance(self.after, timedelta)
            base = self.after
        else:
            base = timedelta(days=float(days_of(name)))
        if self.before is not None:
            base -= self.before
        return max(base, timedelta(0))

    def describe_after(self) -> str:
        name = self.after_threshold
        if name is not None:
            text = f"the threshold {name} (days)"
        else:
            assert isinstance(self.after, timedelta)
            text = format_duration(self.after)
        if self.before is not None:
            text = f"{format_duration(self.before)} before {text}"
        return text


class StateSpec(_Model):
    title: str = ""
    description: str = ""
    stage: Name | None = None
    final: bool = False
    invasive: bool = Field(
        default=False, description="Entered only through a clinician-approved transition"
    )
    on_enter: list[EffectSpec] = Field(default_factory=list)
    on_exit: list[EffectSpec] = Field(default_factory=list)


class TrackSpec(_Model):
    title: str = ""
    short_title: str = Field(default="", description="A short name for compact lists, e.g. 'PT'")
    initial: Name
    stages: list[Name] = Field(default_factory=list)
    states: dict[Name, StateSpec] = Field(min_length=1)
    transitions: list[TransitionSpec] = Field(default_factory=list)
    timers: list[TimerSpec] = Field(default_factory=list)


class EventSpec(_Model):
    title: str = Field(default="", description="What the pages call it, e.g. 'Intake completed'")
    description: str = ""
    # Events raised by timers or `send` effects are the pathway's own; a person may still send
    # one (e.g. "review now") when the definition says `manual: true`.
    manual: bool = False
    roles: list[Name] = Field(
        default_factory=list,
        description="The roles that may send it; required for every event a person sends",
    )
    session: Name | None = Field(
        default=None,
        description="The therapy session it reports (e.g. `pt`): only its roles log those",
    )
    requires_reason: bool = Field(
        default=False, description="A person sending it must say why (e.g. a discharge)"
    )


class FactSpec(_Model):
    type: Literal["number", "boolean", "string"]
    description: str = ""


class MigrationSpec(_Model):
    """How an enrolment on an earlier version moves to this one (README, "Changing a pathway").

    `states`: per track, old state → new state; a state not named keeps its key. `timers`:
    keep the due time, restart from the migration, or recompute from the time the state was
    entered with this version's durations. `proposals`: keep the pending ones, or close them.
    `checkins`: keep the running series, restart them with this version's intervals, or stop
    them."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    source: int = Field(alias="from", ge=1, description="The earlier version")
    description: str = ""
    states: dict[Name, dict[Name, Name]] = Field(default_factory=dict)
    timers: Literal["keep", "restart", "recompute"] = "keep"
    proposals: Literal["keep", "close"] = "keep"
    checkins: Literal["keep", "restart", "stop"] = "keep"

    def target(self, track: str, state: str) -> str:
        return self.states.get(track, {}).get(state, state)


class ThresholdSpec(_Model):
    default: float | int | bool | str
    source: str = Field(min_length=1, description="Where the value comes from, e.g. 'ASRA 2020'")
    unit: str = ""
    description: str = ""


class PathwayDefinition(_Model):
    key: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*$")]
    version: int = Field(ge=1)
    title: str
    description: str = ""
    roles: list[Name] = Field(default_factory=list)
    facts: dict[Annotated[str, Field(pattern=FACT_PATTERN)], FactSpec] = Field(default_factory=dict)
    thresholds: dict[Name, ThresholdSpec] = Field(default_factory=dict)
    events: dict[Name, EventSpec] = Field(default_factory=dict)
    tracks: dict[Name, TrackSpec] = Field(min_length=1)
    migrations: list[MigrationSpec] = Field(
        default_factory=list, description="How running enrolments on earlier versions move here"
    )

    @property
    def ref(self) -> str:
        return f"{self.key}@{self.version}"

    def migration_from(self, version: int) -> MigrationSpec | None:
        return next((m for m in self.migrations if m.source == version), None)

    def state(self, track: str, state: str) -> StateSpec:
        return self.tracks[track].states[state]

    @cached_property
    def internal_events(self) -> frozenset[str]:
        """Events the pathway raises itself (timers, `send` effects) and people do not send."""
        raised: set[str] = set()
        for track in self.tracks.values():
            raised.update(timer.event for timer in track.timers)
            effects = [e for s in track.states.values() for e in (*s.on_enter, *s.on_exit)]
            effects += [e for t in track.transitions for e in t.effects]
            raised.update(e.send for e in effects if e.send is not None)
        # (An undeclared event is reported by the validator; it is nobody's to send either.)
        return frozenset(
            name for name in raised if name not in self.events or not self.events[name].manual
        )

    def senders(self, event: str) -> frozenset[str]:
        """The roles that may send `event`: none for the pathway's own events (timers, `send`)
        unless marked `manual`, and none for `approve` / `reject` (decided by the gate)."""
        spec = self.events.get(event)
        if spec is None or event in self.internal_events:
            return frozenset()
        return frozenset(spec.roles)

    def may_send(self, role: str, event: str) -> bool:
        return role in self.senders(event)

    def session_roles(self, session: str) -> frozenset[str]:
        """The roles that may log a therapy session of this kind (`pt`, `cbt`): the senders of
        the events declared with `session: <kind>`; empty when no event reports it."""
        roles: set[str] = set()
        for name, spec in self.events.items():
            if spec.session == session:
                roles |= self.senders(name)
        return frozenset(roles)

    @cached_property
    def task_states(self) -> dict[str, frozenset[str]]:
        """Per track, the states a task can belong to (`workflows.model.CreateTask.state`): those
        whose `on_enter` creates one, the targets of transitions (or of leaving a state whose
        `on_exit`) that create one, and the states an internal transition creating one leaves
        from. Only leaving these states can close a task."""
        result: dict[str, frozenset[str]] = {}
        for name, track in self.tracks.items():
            states: set[str] = set()
            live = [s for s, spec in track.states.items() if not spec.final]

            def creates(effects: list[EffectSpec]) -> bool:
                return any(effect.create_task is not None for effect in effects)

            for state, spec in track.states.items():
                if creates(spec.on_enter):
                    states.add(state)
            for transition in track.transitions:
                sources = [s for s in live if transition.leaves(s)]
                if transition.target is None:  # internal: its tasks belong to where it stays
                    if creates(transition.effects):
                        states.update(sources)
                elif creates(transition.effects) or any(
                    creates(track.states[s].on_exit) for s in sources
                ):
                    states.add(transition.target)
            result[name] = frozenset(states)
        return result

    def transition(self, transition_id: str) -> tuple[str, TransitionSpec]:
        """Look up a transition by its id, `<track>#<index>`."""
        track, _, index = transition_id.partition("#")
        return track, self.tracks[track].transitions[int(index)]


def transition_id(track: str, index: int) -> str:
    return f"{track}#{index}"
