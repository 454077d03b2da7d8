"""Moving a running instance to a new version of its pathway: `plan_migration`, pure.

A new version says how an instance on an earlier one moves (`MigrationSpec`, the definition's
`migrations:`): a state map per track, and what becomes of timers, proposals and check-in
series. `plan_migration` reads the instance's snapshot under both versions and returns a
`MigrationPlan`: its classification, every change as a value (states, timers, proposals,
check-in series, tasks, effects to run) and why. Nothing is written; the caller applies the
plan (carehub.pathways.migration) or shows it (a dry run).

Classification, the most severe that applies:

* `blocked`: no valid mapping (a track or state without a place in the new version), or the
  move would enter an invasive state: a migration never does;
* `needs_approval`: a change a clinician must confirm: a track would leave a state with a
  pending proposal, a pending proposal would lose its transition, or an invasive escalation
  would stay pending under criteria that changed;
* `changes`: states, timers, proposals or check-in series change;
* `automatic`: nothing changes but the version.

Timers (`timers:`): `keep` keeps each pending timer's due time; `restart` starts the state's
timers again from now; `recompute` computes the due time of a timer whose duration changed from
when the state was entered with the new version's duration (an overdue one is due now). Under
`keep` and `recompute` a timer of the state that already fired (it is no longer pending) is not
started again, so a reminder is never sent twice; a timer new to the state starts as if it had
run since the state was entered (due now at the latest).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from workflows.definition import MigrationSpec, PathwayDefinition, TimerSpec, TransitionSpec
from workflows.engine import _Run, threshold_value
from workflows.model import (
    ActiveTimer,
    Effect,
    GuardCheck,
    Proposal,
    Snapshot,
    StartCheckins,
    StopCheckins,
    TrackState,
)


class Classification(StrEnum):
    AUTOMATIC = "automatic"
    CHANGES = "changes"
    NEEDS_APPROVAL = "needs_approval"
    BLOCKED = "blocked"


SEVERITY = {c: i for i, c in enumerate(Classification)}


@dataclass(frozen=True)
class ActiveSeries:
    """A check-in series running for the instance (the Django side knows them)."""

    series: str
    instrument: str
    every: timedelta
    next_due_at: datetime | None = None


@dataclass(frozen=True)
class StateChange:
    track: str
    source: str | None  # None: a track new in this version enters its initial state
    target: str
    entered_at: datetime


@dataclass(frozen=True)
class TimerChange:
    """`keep` (the due time stays; state or event may be renamed), `move` (a new due time),
    `start` (a timer new to the state), `cancel` (no such timer in the new state)."""

    key: str
    track: str
    action: str
    state: str
    event: str
    before: datetime | None
    after: datetime | None
    why: str


@dataclass(frozen=True)
class ProposalChange:
    """`keep` (unchanged), `remap` (same escalation, its transition renumbered), `close`."""

    proposal_id: str
    track: str
    action: str
    transition_before: str
    transition_after: str | None
    why: str
    check: GuardCheck | None = None


@dataclass(frozen=True)
class SeriesChange:
    """`stop`, or `restart` (stopped, then started again with `every_after`)."""

    series: str
    instrument: str
    action: str
    every_before: timedelta
    every_after: timedelta | None
    next_due_before: datetime | None
    why: str


@dataclass(frozen=True)
class TaskMove:
    """Open tasks that belonged to `source` of `track` now belong to `target`."""

    track: str
    source: str
    target: str


@dataclass(frozen=True)
class MigrationPlan:
    from_version: int
    to_version: int
    classification: Classification
    configuration: dict[str, TrackState]
    states: tuple[StateChange, ...] = ()
    timers: tuple[TimerChange, ...] = ()
    proposals: tuple[ProposalChange, ...] = ()
    checkins: tuple[SeriesChange, ...] = ()
    tasks: tuple[TaskMove, ...] = ()
    effects: tuple[Effect, ...] = ()
    blocked: tuple[str, ...] = ()  # why it cannot migrate
    approval: tuple[str, ...] = ()  # what a clinician must confirm
    notes: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return self.classification is not Classification.AUTOMATIC

    @property
    def applicable(self) -> bool:
        return self.classification is not Classification.BLOCKED

    def timers_after(self, snapshot: Snapshot) -> dict[str, ActiveTimer]:
        """The pending timers once the plan is applied."""
        timers = dict(snapshot.timers)
        for change in self.timers:
            if change.action == "cancel":
                timers.pop(change.key, None)
            else:
                assert change.after is not None
                timers[change.key] = ActiveTimer(
                    change.key, change.track, change.state, change.event, change.after
                )
        return timers

    def summary(self) -> str:
        """One paragraph: what happens and why (the step log's explanation)."""
        head = f"Version {self.from_version} → {self.to_version}: {self.classification.value}"
        parts = [*self.blocked, *self.approval, *(describe(c) for c in self.changes()), *self.notes]
        return head + (": " + "; ".join(parts) if parts else " (nothing changes but the version)")

    def changes(self) -> list[StateChange | TimerChange | ProposalChange | SeriesChange | TaskMove]:
        timers = [t for t in self.timers if t.action != "keep" or t.before != t.after]
        proposals = [p for p in self.proposals if p.action != "keep"]
        return [*self.states, *timers, *proposals, *self.checkins, *self.tasks]


def describe(change: object) -> str:
    """A change in one sentence (times in UTC; the Django report shows the patient's time)."""
    if isinstance(change, StateChange):
        if change.source is None:
            return f"{change.track}: new track, enters '{change.target}'"
        return f"{change.track}: '{change.source}' becomes '{change.target}'"
    if isinstance(change, TimerChange):
        return f"timer {change.key}: {change.action} ({change.why})"
    if isinstance(change, ProposalChange):
        return f"proposal on {change.track}: {change.action} ({change.why})"
    if isinstance(change, SeriesChange):
        return f"check-ins {change.series}: {change.action} ({change.why})"
    if isinstance(change, TaskMove):
        return f"{change.track}: open tasks of '{change.source}' now belong to '{change.target}'"
    return str(change)


@dataclass
class _Planner:
    snapshot: Snapshot
    old: PathwayDefinition
    new: PathwayDefinition
    spec: MigrationSpec
    now: datetime
    checkins: Sequence[ActiveSeries]
    configuration: dict[str, TrackState] = field(default_factory=dict)
    states: list[StateChange] = field(default_factory=list)
    timers: list[TimerChange] = field(default_factory=list)
    proposals: list[ProposalChange] = field(default_factory=list)
    series: list[SeriesChange] = field(default_factory=list)
    tasks: list[TaskMove] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    approval: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def run(self) -> MigrationPlan:
        for track, ts in self.snapshot.configuration.items():
            if track not in self.new.tracks:
                self.blocked.append(
                    f"track '{track}' is not in version {self.new.version}: no valid mapping"
                )
                continue
            self.map_track(track, ts)
        new_tracks = [t for t in self.new.tracks if t not in self.snapshot.configuration]
        if not self.blocked:
            for track in new_tracks:
                self.enter_new_track(track)
        if not self.blocked:
            self.plan_proposals()
            self.plan_checkins()
        return self.plan()

    # -- states and timers ---------------------------------------------------------------------

    def map_track(self, track: str, ts: TrackState) -> None:
        old_states = self.old.tracks[track].states if track in self.old.tracks else {}
        new_track = self.new.tracks[track]
        target = self.spec.target(track, ts.state)
        if target not in new_track.states:
            self.blocked.append(
                f"{track}: '{ts.state}' has no state in version {self.new.version} "
                "(no valid mapping)"
            )
            return
        was = old_states.get(ts.state)
        if new_track.states[target].invasive and not (
            was is not None and was.invasive and target == ts.state
        ):
            self.blocked.append(
                f"{track}: '{ts.state}' would become '{target}', an invasive state; a migration "
                "never enters an invasive state"
            )
            return
        self.configuration[track] = TrackState(target, ts.entered_at)
        if target != ts.state:
            self.states.append(StateChange(track, ts.state, target, ts.entered_at))
            if ts.state in self.old.task_states.get(track, frozenset()):
                self.tasks.append(TaskMove(track, ts.state, target))
        self.plan_timers(track, ts.state, target, ts.entered_at)

    def same_duration(self, old: TimerSpec | None, new: TimerSpec) -> bool:
        """The timer lasts as long under both versions, for this instance's thresholds."""
        if old is None:
            return False
        before = old.duration(lambda name: threshold_value(self.old, self.snapshot, name))
        after = new.duration(lambda name: threshold_value(self.new, self.snapshot, name))
        return before == after

    def timer_due(self, timer: TimerSpec, entered_at: datetime) -> datetime:
        def days_of(name: str) -> object:
            return threshold_value(self.new, self.snapshot, name)

        return entered_at + timer.duration(days_of)

    def plan_timers(self, track: str, source: str, target: str, entered_at: datetime) -> None:
        pending = {k: t for k, t in self.snapshot.timers.items() if t.track == track}
        old_timers = {
            t.name: t
            for t in self.old.tracks.get(track, self.new.tracks[track]).timers
            if t.state == source
        }
        old_specs = set(old_timers)
        policy = self.spec.timers
        wanted: set[str] = set()
        for timer in self.new.tracks[track].timers:
            if timer.state != target:
                continue
            key = f"{track}.{timer.name}"
            wanted.add(key)
            current = pending.get(key)
            if policy == "restart":
                due = self.now + timer.duration(
                    lambda name: threshold_value(self.new, self.snapshot, name)
                )
                action, why = ("move" if current else "start"), "restarted from the migration"
            elif current is None and timer.name in old_specs:
                # It ran in this state already (fired): starting it again would repeat it.
                continue
            elif current is None:
                due = max(self.timer_due(timer, entered_at), self.now)
                action, why = (
                    "start",
                    f"new in version {self.new.version}: after {timer.describe_after()}",
                )
            elif policy == "keep":
                due = current.due_at
                action, why = "keep", "due time kept"
            elif self.same_duration(old_timers.get(timer.name), timer):
                # Recomputing an unchanged duration would only repeat the arithmetic (and could
                # differ from the stored due time by a clock change): the due time stays.
                due = current.due_at
                action, why = "keep", "duration unchanged"
            else:  # recompute
                computed = self.timer_due(timer, entered_at)
                due = max(computed, self.now)
                action = "keep" if due == current.due_at else "move"
                duration = _days(computed - entered_at)
                why = f"recomputed: {duration} after entering '{target}' ({timer.describe_after()})"
                if computed < self.now:
                    why += " (overdue: due now)"
            before = current.due_at if current else None
            renamed = current is not None and (current.state, current.event) != (
                target,
                timer.event,
            )
            if action == "keep" and not renamed:
                continue
            self.timers.append(
                TimerChange(key, track, action, target, timer.event, before, due, why)
            )
        for key, current in pending.items():
            if key not in wanted:
                self.timers.append(
                    TimerChange(
                        key,
                        track,
                        "cancel",
                        current.state,
                        current.event,
                        current.due_at,
                        None,
                        f"version {self.new.version} has no such timer in '{target}'",
                    )
                )

    def enter_new_track(self, track: str) -> None:
        run = _Run(self.new, self.snapshot, self.now, event_key="migration")
        run.configuration = dict(self.configuration)
        initial = self.new.tracks[track].initial
        run.enter(track, initial)
        self.configuration[track] = run.configuration[track]
        self.states.append(StateChange(track, None, initial, self.now))
        self.effects.extend(run.effects)
        for key, timer in run.timers.items():
            if timer.track == track:
                self.timers.append(
                    TimerChange(
                        key,
                        track,
                        "start",
                        timer.state,
                        timer.event,
                        None,
                        timer.due_at,
                        f"the new track's '{initial}'",
                    )
                )
        if run.sends:
            self.notes.append(f"{track}: events its start raises are not sent by a migration")

    # -- proposals -----------------------------------------------------------------------------

    def plan_proposals(self) -> None:
        for proposal in self.snapshot.proposals.values():
            track_state = self.configuration.get(proposal.track)
            left = track_state is None or track_state.state != proposal.source
            if left:
                self.approval.append(
                    f"{proposal.track}: leaves '{proposal.source}' with a pending proposal "
                    f"({proposal.summary}); it would be withdrawn"
                )
                self.close_proposal(proposal, f"'{proposal.source}' is left")
                continue
            if self.spec.proposals == "close":
                self.close_proposal(
                    proposal, f"closed by the migration to version {self.new.version}"
                )
                continue
            self.keep_proposal(proposal)

    def close_proposal(self, proposal: Proposal, why: str) -> None:
        self.proposals.append(
            ProposalChange(proposal.id, proposal.track, "close", proposal.transition_id, None, why)
        )

    def keep_proposal(self, proposal: Proposal) -> None:
        found = self.matching_transition(proposal)
        if found is None:
            self.approval.append(
                f"{proposal.track}: version {self.new.version} has no gated transition "
                f"'{proposal.source}' → '{proposal.target}' on '{proposal.event}'; the pending "
                f"proposal ({proposal.summary}) would be withdrawn"
            )
            self.close_proposal(proposal, "no such escalation in the new version")
            return
        index, new_id = found
        old_spec = self.old_transition(proposal.transition_id)
        new_spec = self.new.tracks[proposal.track].transitions[index]
        check = None
        if old_spec is None or (old_spec.guard, old_spec.approval) != (
            new_spec.guard,
            new_spec.approval,
        ):
            run = _Run(self.new, self.snapshot, self.now)
            run.configuration = dict(self.configuration)
            check = run.check(proposal.track, index, new_spec, proposal.source)
            if self.new.state(proposal.track, proposal.target).invasive:
                verdict = {True: "hold", False: "do not hold", None: "are unknown"}[check.result]
                self.approval.append(
                    f"{proposal.track}: the pending escalation to '{proposal.target}' "
                    f"(invasive) has new criteria, which {verdict} now: {check.describe()}"
                )
        action = "keep" if new_id == proposal.transition_id else "remap"
        why = "unchanged" if action == "keep" else f"now transition {new_id}"
        if check is not None:
            why = f"criteria changed; {why}"
            action = "remap"
        self.proposals.append(
            ProposalChange(
                proposal.id, proposal.track, action, proposal.transition_id, new_id, why, check
            )
        )

    def old_transition(self, transition_id: str) -> TransitionSpec | None:
        try:
            return self.old.transition(transition_id)[1]
        except (KeyError, IndexError, ValueError):
            return None

    def matching_transition(self, proposal: Proposal) -> tuple[int, str] | None:
        track = self.new.tracks[proposal.track]
        for index, spec in enumerate(track.transitions):
            if (
                spec.approval is not None
                and spec.event == proposal.event
                and spec.target == proposal.target
                and spec.leaves(proposal.source)
            ):
                return index, f"{proposal.track}#{index}"
        return None

    # -- check-in series -----------------------------------------------------------------------

    def plan_checkins(self) -> None:
        intervals = _series_intervals(self.new)
        for active in self.checkins:
            every = intervals.get(active.series)
            if self.spec.checkins == "keep":
                if every is None:
                    self.notes.append(
                        f"check-ins {active.series} keep running; version {self.new.version} "
                        "no longer starts them"
                    )
                continue
            if self.spec.checkins == "restart" and every is not None:
                action = "restart"
                why = f"restarted every {_days(every)} (was every {_days(active.every)})"
            else:
                action, every = "stop", None
                why = (
                    f"stopped by the migration to version {self.new.version}"
                    if self.spec.checkins == "stop"
                    else f"version {self.new.version} no longer starts them"
                )
            self.series.append(
                SeriesChange(
                    active.series,
                    active.instrument,
                    action,
                    active.every,
                    every,
                    active.next_due_at,
                    why,
                )
            )
            track = next(iter(self.configuration), "")
            self.effects.append(StopCheckins(track=track, series=active.series, instrument=None))
            if every is not None:
                self.effects.append(
                    StartCheckins(
                        track=track,
                        instrument=active.instrument,
                        every=every,
                        series=active.series,
                    )
                )

    # -- result --------------------------------------------------------------------------------

    def plan(self) -> MigrationPlan:
        if self.blocked:
            classification = Classification.BLOCKED
        elif self.approval:
            classification = Classification.NEEDS_APPROVAL
        else:
            timers = [t for t in self.timers if t.action != "keep" or t.before != t.after]
            proposals = [p for p in self.proposals if p.action != "keep"]
            changed = self.states or timers or proposals or self.series or self.tasks
            classification = Classification.CHANGES if changed else Classification.AUTOMATIC
        configuration = (
            dict(self.snapshot.configuration) if self.blocked else dict(self.configuration)
        )
        return MigrationPlan(
            from_version=self.old.version,
            to_version=self.new.version,
            classification=classification,
            configuration=configuration,
            states=tuple(self.states),
            timers=tuple(self.timers),
            proposals=tuple(self.proposals),
            checkins=tuple(self.series),
            tasks=tuple(self.tasks),
            effects=tuple(self.effects),
            blocked=tuple(self.blocked),
            approval=tuple(self.approval),
            notes=tuple(self.notes),
        )


def _days(every: timedelta) -> str:
    from workflows.definition import format_duration

    return format_duration(every)


def _series_intervals(definition: PathwayDefinition) -> dict[str, timedelta]:
    """Each check-in series the definition starts, with its interval (the first one named)."""
    result: dict[str, timedelta] = {}
    for track in definition.tracks.values():
        effects = [e for s in track.states.values() for e in (*s.on_enter, *s.on_exit)]
        effects += [e for t in track.transitions for e in t.effects]
        for effect in effects:
            start = effect.start_checkins
            if start is not None:
                result.setdefault(start.series or start.instrument, start.every)
    return result


def plan_migration(
    snapshot: Snapshot,
    old: PathwayDefinition,
    new: PathwayDefinition,
    spec: MigrationSpec,
    now: datetime,
    *,
    checkins: Sequence[ActiveSeries] = (),
) -> MigrationPlan:
    """What moving the instance in `snapshot` from `old` to `new` under `spec` would do at
    `now`. Pure: nothing is written, no clock is read."""
    if old.key != new.key or spec.source != old.version:
        raise ValueError(f"{new.ref} migrates from version {spec.source}, not from {old.ref}")
    return _Planner(snapshot, old, new, spec, now, checkins).run()
