"""A cohort file: the patients a simulation runs and how the clinic around them behaves.

A cohort is YAML (README, "Simulating a pathway"): a mix of patient archetypes, each with its
share of the cohort, time zones, score trajectories, answer and miss rates, red-flag answers,
drop-outs, therapy attendance and the clinic's reactions to each state (which event staff send,
after how long, and what they record first: a procedure's relief, a psychological evaluation,
a medication). Nothing here names a pathway's states or events in code: the file does, and
`validate_against` checks every name against the definition simulated.
"""

from __future__ import annotations

import random
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from workflows.definition import Duration, PathwayDefinition, parse_duration
from workflows.errors import Problem, ProblemsError, WorkflowError
from workflows.yamldoc import located, parse

# A value drawn per use: a constant, a range [low, high] (uniform), or weighted choices.
Number = float | int
Drawn = Number | bool | str | list[Number] | dict[str, Number]


def draw(value: Drawn, rng: random.Random) -> Any:
    """A constant as is; `[low, high]` uniformly; `{choice: weight, ...}` by weight."""
    if isinstance(value, list):
        low, high = value
        return rng.uniform(low, high)
    if isinstance(value, dict):
        names = list(value)
        return rng.choices(names, weights=[value[n] for n in names])[0]
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_drawn(value: Any) -> Any:
    if isinstance(value, list):
        if len(value) != 2 or not all(isinstance(v, int | float) for v in value):
            raise ValueError("a range is two numbers, [low, high]")
        if value[0] > value[1]:
            raise ValueError("a range's low end comes first")
    if isinstance(value, dict):
        if not value or any(not isinstance(w, int | float) or w < 0 for w in value.values()):
            raise ValueError("weighted choices are {name: weight ≥ 0}, at least one")
        if sum(value.values()) <= 0:
            raise ValueError("at least one choice needs a weight above 0")
    return value


DrawnValue = Annotated[Drawn, Field(union_mode="left_to_right"), AfterValidator(_check_drawn)]


def _zero_or_duration(value: Any) -> Any:
    if isinstance(value, str) and value.strip() in ("0", "0d", "0h", "0w", "0m"):
        return timedelta(0)
    return parse_duration(value)


def _duration_or_range(value: Any) -> Any:
    if isinstance(value, list):
        if len(value) != 2:
            raise ValueError("a duration range is two durations, [low, high]")
        low, high = (parse_duration(v) for v in value)
        if low > high:
            raise ValueError("a duration range's low end comes first")
        return [low, high]
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError("write a duration with its unit, e.g. '3d'")
    return parse_duration(value)


DrawnDuration = Annotated[Any, BeforeValidator(_duration_or_range)]


class Record(_Model):
    """An observation staff record before sending the reaction's event (exactly one kind)."""

    procedure: str | None = None  # code: mbb1, esi, scs_trial, ...
    relief_pct: DrawnValue | None = None
    relief_weeks: DrawnValue | None = None
    status: str | None = None  # code: adverse_effects_intolerable, pdmp_checked, ...
    value: DrawnValue | None = None  # a boolean status's value (occurrence statuses: none)
    psych_eval: DrawnValue | None = None  # outcome, e.g. {cleared: 7, not_cleared: 1}
    medication: str | None = None  # drug, e.g. morphine
    dose: DrawnValue | None = None  # daily dose in the drug's unit
    unit: str = "mg"
    performed_before: Annotated[timedelta, BeforeValidator(_zero_or_duration)] = timedelta(
        days=1
    )  # a procedure: how long before it was done
    failed_treatment: str | None = None  # a treatment class that failed

    @model_validator(mode="after")
    def _one_kind(self) -> Record:
        kinds = [
            k
            for k in ("procedure", "status", "psych_eval", "medication", "failed_treatment")
            if getattr(self, k) is not None
        ]
        if len(kinds) != 1:
            raise ValueError(
                "a record names exactly one of procedure, status, psych_eval, medication, "
                f"failed_treatment; got {kinds or 'none'}"
            )
        for name in ("relief_pct", "relief_weeks", "value", "psych_eval", "dose"):
            _check_drawn(getattr(self, name))
        return self


class Reaction(_Model):
    """One thing staff may do once a track enters a state: after `after`, record, then send."""

    weight: float = Field(default=1, ge=0)
    after: DrawnDuration = Field(default_factory=lambda: timedelta(days=1))
    send: str | None = None  # None: do nothing (an option in a weighted choice)
    record: list[Record] = Field(default_factory=list)
    reason: str = ""  # events that need one (a discharge)


class Sessions(_Model):
    """Therapy sessions while `track` is in one of `states`: booked `per_week`, attended with
    probability `attendance`; an attended one is recorded and `event` sent, a missed one is a
    recorded no-show."""

    track: str
    states: list[str] = Field(min_length=1)
    event: str
    code: str  # observation code of the session: pt, cbt
    discipline: str  # whose workload a session is
    per_week: float = Field(gt=0, le=14)
    attendance: float = Field(ge=0, le=1)


class Trajectory(_Model):
    """A score over time: `start + weekly * min(week, plateau_week)`, plus gaussian `noise`,
    kept inside [minimum, maximum]. `start` and `weekly` are drawn once per patient."""

    start: DrawnValue
    weekly: DrawnValue = 0
    plateau_week: float = 1000
    noise: float = Field(default=0, ge=0)
    minimum: float = 0
    maximum: float

    def value_at(self, start: float, weekly: float, weeks: float, rng: random.Random) -> float:
        base = start + weekly * min(weeks, self.plateau_week)
        noisy = base + (rng.gauss(0, self.noise) if self.noise else 0.0)
        return min(max(noisy, self.minimum), self.maximum)


class Intake(_Model):
    pain_months: DrawnValue = 12
    failed_treatment_classes: int = Field(default=2, ge=0, le=4)
    conservative_care_weeks: DrawnValue = 16
    baselines: bool = True  # baseline PEG, PHQ-9 and GAD-7 recorded at enrolment


class Archetype(_Model):
    name: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    share: float = Field(gt=0, description="Relative weight in the cohort")
    time_zones: dict[str, float] = Field(default_factory=lambda: {"UTC": 1.0})
    send_window: tuple[time, time] = (time(9, 0), time(20, 0))
    intake: Intake = Field(default_factory=Intake)
    scores: dict[str, Trajectory] = Field(default_factory=dict)
    answer_rate: float = Field(default=0.85, ge=0, le=1)
    answer_delay: DrawnDuration = Field(default_factory=lambda: [timedelta(0), timedelta(hours=30)])
    red_flag_rate: float = Field(default=0, ge=0, le=1)
    drop_out_per_week: float = Field(default=0, ge=0, le=1)
    sessions: list[Sessions] = Field(default_factory=list)
    reactions: dict[str, list[Reaction]] = Field(default_factory=dict)

    @field_validator("time_zones")
    @classmethod
    def _zones(cls, value: dict[str, float]) -> dict[str, float]:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        for zone in value:
            try:
                ZoneInfo(zone)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {zone!r}") from None
        _check_drawn(value)
        return value

    @field_validator("send_window")
    @classmethod
    def _window(cls, value: tuple[time, time]) -> tuple[time, time]:
        if not value[0] < value[1]:
            raise ValueError("a send window opens before it closes (same local day)")
        return value


class Clinic(_Model):
    approval_delay: DrawnDuration = Field(default_factory=lambda: [timedelta(days=1), timedelta(3)])
    approve_rate: float = Field(default=0.9, ge=0, le=1)
    reactions: dict[str, list[Reaction]] = Field(default_factory=dict)
    sessions: list[Sessions] = Field(
        default_factory=list, description="Therapy sessions of archetypes that list none"
    )


class Cohort(_Model):
    name: str
    pathway: str
    description: str = ""
    patients: int = Field(default=200, ge=1)
    start: datetime
    enrol_over: Duration = timedelta(weeks=4)
    stuck_after: Duration = timedelta(weeks=16)
    drop_out_event: str = "discharge_recorded"
    clinic: Clinic = Field(default_factory=Clinic)
    archetypes: list[Archetype] = Field(min_length=1)

    @field_validator("start")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("the start needs a time zone, e.g. 2026-01-05T09:00:00Z")
        return value

    def reactions(self, archetype: Archetype, key: str) -> list[Reaction]:
        """The archetype's reactions to `track.state`, else the clinic's."""
        if key in archetype.reactions:
            return archetype.reactions[key]
        return self.clinic.reactions.get(key, [])

    def sessions(self, archetype: Archetype) -> list[Sessions]:
        return archetype.sessions or self.clinic.sessions


def draw_duration(value: timedelta | list[timedelta], rng: random.Random) -> timedelta:
    if isinstance(value, list):
        low, high = value
        return low + (high - low) * rng.random()
    return value


# --- loading and checking --------------------------------------------------------------------


class CohortError(ProblemsError, WorkflowError):
    """A cohort file is invalid (or names what the pathway lacks); `problems` lists them all."""

    what = "cohort"


def load_cohort_text(text: str, *, source: str = "<text>") -> Cohort:
    cohort, _doc, problems = parse(text, Cohort, what="a cohort")
    if problems or not isinstance(cohort, Cohort):
        raise CohortError(source, problems)
    return cohort


def load_cohort(path: str | Path) -> Cohort:
    path = Path(path)
    return load_cohort_text(path.read_text(encoding="utf-8"), source=str(path))


def validate_against(cohort: Cohort, definition: PathwayDefinition) -> list[Problem]:
    """Every track, state and event the cohort names exists in `definition`."""
    problems: list[Problem] = []
    events = set(definition.events)

    def reactions(where: tuple[str | int, ...], table: dict[str, list[Reaction]]) -> None:
        for key, options in table.items():
            track, _, state = key.partition(".")
            if track not in definition.tracks or state not in definition.tracks[track].states:
                problems.append(Problem((*where, key), f"{definition.ref} has no state '{key}'"))
            for i, option in enumerate(options):
                if option.send is not None and option.send not in events:
                    problems.append(
                        Problem(
                            (*where, key, i, "send"),
                            f"{definition.ref} has no event {option.send!r}",
                        )
                    )

    reactions(("clinic", "reactions"), cohort.clinic.reactions)
    if cohort.drop_out_event not in events:
        problems.append(
            Problem(("drop_out_event",), f"{definition.ref} has no event {cohort.drop_out_event!r}")
        )
    session_lists: list[tuple[tuple[str | int, ...], list[Sessions]]] = [
        (("clinic", "sessions"), cohort.clinic.sessions)
    ]
    for a, archetype in enumerate(cohort.archetypes):
        reactions(("archetypes", a, "reactions"), archetype.reactions)
        session_lists.append((("archetypes", a, "sessions"), archetype.sessions))
    for where, listed in session_lists:
        for s, sessions in enumerate(listed):
            at = (*where, s)
            track = definition.tracks.get(sessions.track)
            if track is None:
                problems.append(Problem((*at, "track"), f"no track '{sessions.track}'"))
            else:
                for state in sessions.states:
                    if state not in track.states:
                        problems.append(Problem((*at, "states"), f"no state '{state}'"))
            if sessions.event not in events:
                problems.append(Problem((*at, "event"), f"no event '{sessions.event}'"))
    return problems


def check_cohort_text(text: str) -> tuple[Cohort | None, list[Problem]]:
    cohort, doc, problems = parse(text, Cohort, what="a cohort")
    return cohort, located(doc, problems)
