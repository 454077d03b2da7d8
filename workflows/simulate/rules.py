"""What the simulator needs from the clinic's software besides the engine, as one port.

The simulator core is pure; the rules a clinic's patients live by (when check-ins fall due in
their time zone and send window, how long they stay open, when reminders go, the delivery
policy's quiet hours and daily budget, how answers are scored and which are red flags, how
facts are derived from observations) are carehub's own and must not be copied here: carehub
hands its implementations in (`carehub.simulation.simulator.clinic_rules`), so a simulation runs
the same code as the clinic.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any, Protocol

from workflows.facts import FactValue


@dataclass(frozen=True)
class SimObservation:
    """An observation as the fact derivation reads it (the attributes of carehub's rows)."""

    pk: int
    kind: str
    code: str
    observed_at: datetime
    value_number: float | None = None
    value_bool: bool | None = None
    value_text: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    is_baseline: bool = False


@dataclass(frozen=True)
class Contact:
    time_zone: str
    window_start: time
    window_end: time


@dataclass(frozen=True)
class Scored:
    """Answers scored by the instrument library: the total and the red-flag codes raised."""

    total: float | None
    red_flags: tuple[tuple[str, str], ...]  # (code, urgency)


@dataclass(frozen=True)
class Delivery:
    """The delivery policy's verdict: "send", or a status ("deferred" with `not_before`,
    "over_budget", "suppressed", ...)."""

    outcome: str
    not_before: datetime | None = None


class ClinicRules(Protocol):
    """carehub's rules, handed to the simulator (see the module docstring)."""

    misses_before_task: int
    daily_budget: int

    def facts(
        self, rows: list[SimObservation], time_zone: str, now: datetime
    ) -> tuple[dict[str, FactValue], dict[str, tuple[datetime, ...]]]: ...

    def series_interval(self, instrument: str, every: timedelta) -> timedelta: ...

    def next_due(
        self,
        contact: Contact,
        *,
        started_at: datetime,
        every: timedelta,
        after: datetime,
        last_due: datetime | None,
    ) -> datetime: ...

    def closes_at(self, due_at: datetime, every: timedelta) -> datetime: ...

    def reminders(
        self, contact: Contact, *, due_at: datetime, closes_at: datetime, opened_at: datetime
    ) -> list[datetime]: ...

    def deliver(
        self,
        contact: Contact,
        *,
        purpose: str,
        urgency: str,
        now: datetime,
        sent_today: int,
        suppressed_because: str | None,
    ) -> Delivery: ...

    def day_key(self, contact: Contact, now: datetime) -> str: ...

    def answers(
        self,
        instrument: str,
        target: float | None,
        rng: random.Random,
        *,
        red_flag: bool,
    ) -> Mapping[str, Any]: ...

    def score(self, instrument: str, answers: Mapping[str, Any]) -> Scored: ...
