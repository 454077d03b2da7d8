"""An in-memory pathway instance: the engine plus idempotency, for tests and simulation.

It does what carehub.pathways does with the database (remember processed event keys, apply the
decision, fire due timers) without any storage, so engine properties can be tested in
milliseconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from workflows.definition import PathwayDefinition
from workflows.engine import apply, decide, start, with_facts
from workflows.model import Decision, Event, Outcome, Snapshot, ThresholdValue


class MemoryInstance:
    def __init__(
        self,
        definition: PathwayDefinition,
        now: datetime,
        *,
        facts: Mapping[str, Any] | None = None,
        thresholds: Mapping[str, ThresholdValue] | None = None,
    ) -> None:
        self.definition = definition
        first = start(definition, now)
        self.snapshot = Snapshot(
            configuration=first.configuration, facts=dict(facts or {}), thresholds=thresholds or {}
        )
        self.snapshot = apply(self.snapshot, first)
        self.log: list[Decision] = [first]
        self.outcomes: dict[str, Decision] = {}
        self.version = 1

    @property
    def states(self) -> dict[str, str]:
        return {track: ts.state for track, ts in self.snapshot.configuration.items()}

    def set_facts(self, **facts: Any) -> None:
        """Facts use dots in their names; pass them as a mapping: set_facts(**{"peg.latest": 5})."""
        self.snapshot = with_facts(self.snapshot, facts)

    def dispatch(self, event: Event, now: datetime) -> Decision:
        """Apply an event once: a redelivered key returns the first outcome and changes nothing."""
        if event.key in self.outcomes:
            return self.outcomes[event.key]
        decision = decide(self.definition, self.snapshot, event, now)
        self.outcomes[event.key] = decision
        if decision.outcome is not Outcome.NO_CHANGE or decision.timer_ops:
            self.snapshot = apply(self.snapshot, decision)
            self.version += 1
        self.log.append(decision)
        return decision

    def fire_due_timers(self, now: datetime) -> list[Decision]:
        decisions = []
        for timer in sorted(self.snapshot.timers.values(), key=lambda t: (t.due_at, t.key)):
            if timer.due_at <= now and timer.key in self.snapshot.timers:
                key = f"timer:{timer.key}:{timer.due_at.isoformat()}"
                event = Event(
                    name=timer.event, key=key, timer_key=timer.key, timer_due_at=timer.due_at
                )
                decisions.append(self.dispatch(event, now))
        return decisions
