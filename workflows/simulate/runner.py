"""The cohort runner: every patient of a cohort through a pathway on a fake clock.

One queue of due work, ordered by time (ties in the order they were planned), as carehub's
scheduler would meet it: pathway timers, check-ins opening and closing, reminders and messages
(through the delivery policy), patients answering, therapy sessions, staff reactions and
approvals, drop-outs. Every pathway step is the real `decide()` on a snapshot whose facts come
from the patient's simulated observations through carehub's own fact derivation; nothing waits
and nothing is stored. The same cohort, seed and definition give the same result.

The runner records what happened (`Tally`); `workflows.simulate.report` turns it into the
report.
"""

from __future__ import annotations

import bisect
import heapq
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from workflows.definition import APPROVE, REJECT, PathwayDefinition
from workflows.engine import apply, decide, start
from workflows.errors import WorkflowError
from workflows.model import (
    Actor,
    CreateTask,
    Decision,
    Event,
    Notify,
    ProposeEscalation,
    RaiseFlag,
    Snapshot,
    StartCheckins,
    StartTimer,
    StopCheckins,
    ThresholdValue,
)
from workflows.simulate.cohort import Archetype, Cohort, Reaction, Record, draw, draw_duration
from workflows.simulate.rules import ClinicRules, Contact, SimObservation

WEEK = timedelta(weeks=1)
SCORE_INSTRUMENTS_WITH_BASELINE = ("peg", "phq9", "gad7")


@dataclass
class Tally:
    """Everything counted during a run (plain data; see `report.build_report`)."""

    start: datetime
    days: int
    patients: int = 0
    decisions: int = 0
    queue_items: int = 0  # everything the fake clock processed (timers, check-ins, messages, ...)
    timers_fired: int = 0
    refused: Counter[str] = field(default_factory=Counter)  # engine refusals by error
    state_patients: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    transition_patients: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    transition_times: Counter[str] = field(default_factory=Counter)
    stage_days: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    state_days: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    stage_patients: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    proposals: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    proposal_outcomes: Counter[str] = field(default_factory=Counter)
    tasks: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    sessions: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    checkins: Counter[str] = field(default_factory=Counter)
    messages: Counter[str] = field(default_factory=Counter)  # by delivery outcome
    sent_per_patient_week: Counter[tuple[int, int]] = field(default_factory=Counter)
    max_sent_in_a_day: int = 0
    red_flag_answers: Counter[str] = field(default_factory=Counter)
    red_flags_per_week: Counter[int] = field(default_factory=Counter)
    pathway_flags: Counter[str] = field(default_factory=Counter)
    staff_alerts: Counter[str] = field(default_factory=Counter)
    drop_outs: int = 0
    completed: int = 0
    last_move: dict[int, datetime] = field(default_factory=dict)
    final_states: dict[int, dict[str, str]] = field(default_factory=dict)
    archetype_of: dict[int, str] = field(default_factory=dict)

    def week(self, at: datetime) -> int:
        return int((at - self.start) / WEEK)


@dataclass
class _Series:
    name: str
    instrument: str
    every: timedelta
    started_at: datetime
    last_due: datetime | None = None
    stopped: bool = False
    occurrence: int = 0  # the current occurrence's number (stale queue items are skipped)
    state: str = ""  # scheduled | open | answered | missed | cancelled
    due_at: datetime | None = None
    closes_at: datetime | None = None
    misses_in_a_row: int = 0


@dataclass
class _Patient:
    index: int
    archetype: Archetype
    contact: Contact
    enrolled_at: datetime
    rng: random.Random
    snapshot: Snapshot = field(init=False)
    rows: list[SimObservation] = field(default_factory=list)
    series: dict[str, _Series] = field(default_factory=dict)
    trajectory: dict[str, tuple[float, float]] = field(default_factory=dict)
    sessions_running: set[str] = field(default_factory=set)
    sent_by_day: Counter[str] = field(default_factory=Counter)
    answering: bool = True
    done: bool = False
    seq: int = 0
    pk: int = 0

    def next_key(self, what: str) -> str:
        self.seq += 1
        return f"p{self.index}:{what}:{self.seq}"


Handler = Callable[..., None]


class Simulation:
    def __init__(
        self,
        definition: PathwayDefinition,
        cohort: Cohort,
        rules: ClinicRules,
        *,
        days: int,
        seed: int,
        thresholds: Mapping[str, ThresholdValue] | None = None,
        patients: int | None = None,
    ) -> None:
        self.definition = definition
        self.cohort = cohort
        self.rules = rules
        self.days = days
        self.seed = seed
        self.thresholds = dict(thresholds or {})
        self.count = patients if patients is not None else cohort.patients
        self.start_at = cohort.start
        self.end_at = cohort.start + timedelta(days=days)
        self.tally = Tally(start=cohort.start, days=days)
        self._queue: list[tuple[datetime, int, int, str, tuple[Any, ...]]] = []
        self._order = 0
        self._patients: list[_Patient] = []
        self._now = cohort.start
        self._stages = {
            (track, state): spec.stage
            for track, t in definition.tracks.items()
            for state, spec in t.states.items()
            if spec.stage
        }

    # -- the queue --------------------------------------------------------------------------

    def _at(self, when: datetime, patient: _Patient, kind: str, *args: Any) -> None:
        if when >= self.end_at or patient.done:
            return
        self._order += 1
        heapq.heappush(self._queue, (when, self._order, patient.index, kind, args))

    def run(self) -> Tally:
        """Run the cohort (or its first `patients`) through the definition for `days` from its
        start."""
        rng = random.Random(self.seed)  # noqa: S311 (reproducible simulation; no secrets)
        weights = [a.share for a in self.cohort.archetypes]
        spread = self.cohort.enrol_over
        for index in range(self.count):
            archetype = rng.choices(self.cohort.archetypes, weights=weights)[0]
            patient_rng = random.Random(rng.getrandbits(64))  # noqa: S311
            zone = draw(archetype.time_zones, patient_rng)
            contact = Contact(zone, archetype.send_window[0], archetype.send_window[1])
            enrolled = self.start_at + spread * patient_rng.random()
            patient = _Patient(index, archetype, contact, enrolled, patient_rng)
            self._patients.append(patient)
            self.tally.archetype_of[index] = archetype.name
            self._at(enrolled, patient, "enrol")
        self.tally.patients = self.count
        while self._queue:
            when, _, index, kind, args = heapq.heappop(self._queue)
            patient = self._patients[index]
            if patient.done and kind != "enrol":
                continue
            self._now = when
            self.tally.queue_items += 1
            getattr(self, f"_on_{kind}")(patient, *args)
        for patient in self._patients:
            if hasattr(patient, "snapshot"):
                self.tally.final_states[patient.index] = {
                    t: s.state for t, s in patient.snapshot.configuration.items()
                }
        return self.tally

    # -- enrolment ----------------------------------------------------------------------------

    def _on_enrol(self, patient: _Patient) -> None:
        now = self._now
        a = patient.archetype
        rng = patient.rng
        for name, trajectory in a.scores.items():
            patient.trajectory[name] = (
                float(draw(trajectory.start, rng)),
                float(draw(trajectory.weekly, rng)),
            )
        zone = ZoneInfo(patient.contact.time_zone)
        today = now.astimezone(zone).date()
        months = float(draw(a.intake.pain_months, rng))
        onset = today - timedelta(days=round(months * 30.44))
        self._observe(patient, "pain_onset", "pain", now, data={"date": onset.isoformat()})
        weeks = float(draw(a.intake.conservative_care_weeks, rng))
        begun = today - timedelta(days=round(weeks * 7))
        self._observe(
            patient,
            "conservative_care_start",
            "conservative",
            now,
            data={"date": begun.isoformat()},
        )
        for klass in ("pharmacological", "physical", "psychological", "interventional")[
            : a.intake.failed_treatment_classes
        ]:
            self._observe(patient, "failed_treatment", klass, now)
        if a.intake.baselines:
            for instrument in SCORE_INSTRUMENTS_WITH_BASELINE:
                if instrument in a.scores:
                    self._score(patient, instrument, now, baseline=True)
        first = start(self.definition, now)
        patient.snapshot = apply(
            Snapshot(configuration=first.configuration, thresholds=self.thresholds), first
        )
        self._after_decision(patient, first)
        if a.drop_out_per_week > 0:
            weeks_in = 0
            while rng.random() >= a.drop_out_per_week:
                weeks_in += 1
                if now + WEEK * weeks_in >= self.end_at:
                    break
            else:
                self._at(now + WEEK * weeks_in + timedelta(days=rng.random() * 7), patient, "drop")

    # -- observations -------------------------------------------------------------------------

    def _observe(
        self,
        patient: _Patient,
        kind: str,
        code: str,
        at: datetime,
        *,
        number: float | None = None,
        boolean: bool | None = None,
        text: str = "",
        data: dict[str, Any] | None = None,
        baseline: bool = False,
    ) -> None:
        patient.pk += 1
        row = SimObservation(
            pk=patient.pk,
            kind=kind,
            code=code,
            observed_at=at,
            value_number=number,
            value_bool=boolean,
            value_text=text,
            data=data or {},
            is_baseline=baseline,
        )
        rows = patient.rows
        if rows and rows[-1].observed_at > at:  # back-dated (a procedure): keep the order
            bisect.insort(rows, row, key=lambda r: (r.observed_at, r.pk))
        else:
            rows.append(row)

    def _target(self, patient: _Patient, instrument: str, at: datetime) -> float | None:
        trajectory = patient.archetype.scores.get(instrument)
        if trajectory is None:
            return None
        start_value, weekly = patient.trajectory[instrument]
        weeks = (at - patient.enrolled_at) / WEEK
        return trajectory.value_at(start_value, weekly, weeks, patient.rng)

    def _score(
        self, patient: _Patient, instrument: str, at: datetime, *, baseline: bool = False
    ) -> None:
        red = instrument == "phq9" and patient.rng.random() < patient.archetype.red_flag_rate
        answers = self.rules.answers(
            instrument, self._target(patient, instrument, at), patient.rng, red_flag=red
        )
        scored = self.rules.score(instrument, answers)
        if scored.total is None:
            self.tally.checkins["unscorable"] += 1
            return
        self._observe(
            patient,
            "score",
            instrument,
            at,
            number=scored.total,
            data={"items": dict(answers)},
            baseline=baseline,
        )
        for code, urgency in scored.red_flags:
            self.tally.red_flag_answers[code] += 1
            self.tally.red_flags_per_week[self.tally.week(at)] += 1
            # The care team's alert is urgent: quiet hours and digests do not hold it.
            self.tally.staff_alerts[urgency] += 1

    def _record(self, patient: _Patient, record: Record) -> None:
        rng, now = patient.rng, self._now
        if record.procedure is not None:
            relief = draw(record.relief_pct, rng) if record.relief_pct is not None else None
            weeks = draw(record.relief_weeks, rng) if record.relief_weeks is not None else None
            data = {"relief_weeks": round(float(weeks), 1)} if weeks is not None else {}
            number = round(float(relief)) if relief is not None else None
            performed = now - record.performed_before
            unassessed = [
                row
                for row in patient.rows
                if row.kind == "procedure"
                and row.code == record.procedure
                and row.value_number is None
            ]
            if number is not None and unassessed:
                # The result of a procedure already recorded replaces its record (same date).
                previous = unassessed[-1]
                patient.rows.remove(previous)
                performed = previous.observed_at
            self._observe(
                patient, "procedure", record.procedure, performed, number=number, data=data
            )
        elif record.status is not None:
            value = draw(record.value, rng) if record.value is not None else None
            self._observe(
                patient,
                "status",
                record.status,
                now,
                boolean=_truth(value) if value is not None else None,
            )
        elif record.psych_eval is not None:
            self._observe(
                patient, "psych_evaluation", "psych", now, text=draw(record.psych_eval, rng)
            )
        elif record.medication is not None:
            dose = float(draw(record.dose, rng)) if record.dose is not None else 0.0
            self._observe(
                patient,
                "medication",
                record.medication,
                now,
                number=round(dose),
                data={"unit": record.unit},
            )
        elif record.failed_treatment is not None:
            self._observe(patient, "failed_treatment", record.failed_treatment, now)

    # -- the engine ---------------------------------------------------------------------------

    def _dispatch(self, patient: _Patient, event: Event) -> Decision | None:
        # Facts are derived only if a guard reads one: most steps (timers, sessions that only
        # re-enter a state) have no guard, and the derivation is the costliest part of a step.
        derived = _Derived(self.rules, list(patient.rows), patient.contact.time_zone, self._now)
        snapshot = Snapshot(
            configuration=patient.snapshot.configuration,
            facts=derived.facts,
            thresholds=self.thresholds,
            occurrences=derived.occurrences,
            timers=patient.snapshot.timers,
            proposals=patient.snapshot.proposals,
        )
        self.tally.decisions += 1
        try:
            decision = decide(self.definition, snapshot, event, self._now)
        except WorkflowError as exc:
            self.tally.refused[type(exc).__name__] += 1
            return None
        patient.snapshot = apply(snapshot, decision)
        self._after_decision(patient, decision)
        return decision

    def _send(self, patient: _Patient, name: str, *, reason: str = "") -> None:
        senders = sorted(self.definition.senders(name))
        actor = Actor(id="sim", role=senders[0]) if senders else None
        spec = self.definition.events.get(name)
        if not reason and spec is not None and spec.requires_reason:
            reason = "Simulated"
        self._dispatch(
            patient, Event(name=name, key=patient.next_key(name), actor=actor, reason=reason)
        )

    def _after_decision(self, patient: _Patient, decision: Decision) -> None:
        now, tally = self._now, self.tally
        for taken in decision.transitions:
            tally.transition_patients[taken.transition_id].add(patient.index)
            tally.transition_times[taken.transition_id] += 1
            if not taken.internal:
                tally.last_move[patient.index] = now
        entered = [(t.track, t.target) for t in decision.transitions if not t.internal]
        if decision.event is None:  # the start: every track's initial state
            entered = [(track, ts.state) for track, ts in decision.configuration.items()]
            tally.last_move[patient.index] = now
        for track, state in entered:
            key = f"{track}.{state}"
            days = (now - patient.enrolled_at) / timedelta(days=1)
            if patient.index not in tally.state_patients[key]:
                tally.state_patients[key].add(patient.index)
                tally.state_days[key].append(days)
            stage = self._stages.get((track, state))
            if stage is not None:
                stage_key = f"{track}.{stage}"
                if patient.index not in tally.stage_patients[stage_key]:
                    tally.stage_patients[stage_key].add(patient.index)
                    tally.stage_days[stage_key].append(days)
            self._react(patient, track, state)
        for op in decision.timer_ops:
            if isinstance(op, StartTimer):
                self._at(op.timer.due_at, patient, "timer", op.timer.key, op.timer.due_at)
        for effect in decision.effects:
            self._effect(patient, effect)
        if decision.completed:
            tally.completed += 1
            patient.done = True

    def _effect(self, patient: _Patient, effect: Any) -> None:
        week = self.tally.week(self._now)
        if isinstance(effect, CreateTask):
            self.tally.tasks[effect.discipline][week] += 1
        elif isinstance(effect, ProposeEscalation):
            self.tally.proposals[effect.summary][week] += 1
            delay = draw_duration(self.cohort.clinic.approval_delay, patient.rng)
            self._at(self._now + delay, patient, "decide_proposal", effect.proposal_id)
        elif isinstance(effect, RaiseFlag):
            self.tally.pathway_flags[effect.code] += 1
        elif isinstance(effect, Notify):
            for to in effect.to:
                if to == "patient":
                    self._message(patient, "pathway_notice", effect.urgency, None)
                else:
                    self.tally.staff_alerts[effect.urgency] += 1
        elif isinstance(effect, StartCheckins):
            self._series_start(patient, effect)
        elif isinstance(effect, StopCheckins):
            for series in patient.series.values():
                if series.stopped:
                    continue
                if effect.series == series.name or (
                    effect.series is None and effect.instrument == series.instrument
                ):
                    series.stopped = True
                    if series.state in ("scheduled", "open"):
                        series.state = "cancelled"
                        self.tally.checkins["cancelled"] += 1

    def _on_timer(self, patient: _Patient, key: str, due_at: datetime) -> None:
        active = patient.snapshot.timers.get(key)
        if active is None or active.due_at != due_at:
            return  # cancelled or restarted since: the scheduler never sees it
        self.tally.timers_fired += 1
        self._dispatch(
            patient,
            Event(
                name=active.event,
                key=f"timer:{key}:{due_at.isoformat()}",
                timer_key=key,
                timer_due_at=due_at,
            ),
        )

    def _on_decide_proposal(self, patient: _Patient, proposal_id: str) -> None:
        proposal = patient.snapshot.proposals.get(proposal_id)
        if proposal is None:
            self.tally.proposal_outcomes["withdrawn"] += 1
            return
        actor = Actor(id="sim", role=proposal.roles[0])
        if patient.rng.random() < self.cohort.clinic.approve_rate:
            decision = self._dispatch(
                patient,
                Event(APPROVE, patient.next_key("approve"), actor=actor, proposal_id=proposal_id),
            )
            self.tally.proposal_outcomes["approved" if decision else "refused at approval"] += 1
        else:
            self._dispatch(
                patient,
                Event(
                    REJECT,
                    patient.next_key("reject"),
                    actor=actor,
                    proposal_id=proposal_id,
                    reason="Simulated rejection",
                ),
            )
            self.tally.proposal_outcomes["rejected"] += 1

    # -- staff reactions and sessions ---------------------------------------------------------

    def _react(self, patient: _Patient, track: str, state: str) -> None:
        options = self.cohort.reactions(patient.archetype, f"{track}.{state}")
        if options:
            weights = [o.weight for o in options]
            if sum(weights) > 0:
                option = patient.rng.choices(options, weights=weights)[0]
                if option.send is not None or option.record:
                    entered = patient.snapshot.configuration[track].entered_at
                    delay = draw_duration(option.after, patient.rng)
                    self._at(self._now + delay, patient, "reaction", track, state, entered, option)
        for sessions in self.cohort.sessions(patient.archetype):
            if (
                sessions.track == track
                and state in sessions.states
                and sessions.code not in patient.sessions_running
            ):
                patient.sessions_running.add(sessions.code)
                self._at(
                    self._now + self._session_gap(patient, sessions.per_week),
                    patient,
                    "session",
                    sessions,
                )

    def _session_gap(self, patient: _Patient, per_week: float) -> timedelta:
        return WEEK / per_week * (0.75 + 0.5 * patient.rng.random())

    def _on_reaction(
        self, patient: _Patient, track: str, state: str, entered: datetime, option: Reaction
    ) -> None:
        current = patient.snapshot.configuration[track]
        if current.state != state or current.entered_at != entered:
            return  # the state was left (or re-entered) before staff got to it
        for record in option.record:
            self._record(patient, record)
        if option.send is not None:
            self._send(patient, option.send, reason=option.reason)

    def _on_session(self, patient: _Patient, sessions: Any) -> None:
        if patient.snapshot.configuration[sessions.track].state not in sessions.states:
            patient.sessions_running.discard(sessions.code)
            return
        week = self.tally.week(self._now)
        self.tally.sessions[sessions.discipline][week] += 1
        attended = patient.rng.random() < sessions.attendance
        self._observe(patient, "session", sessions.code, self._now, boolean=attended)
        if attended:
            self._send(patient, sessions.event)
        if patient.snapshot.configuration[sessions.track].state in sessions.states:
            gap = self._session_gap(patient, sessions.per_week)
            self._at(self._now + gap, patient, "session", sessions)
        else:
            patient.sessions_running.discard(sessions.code)

    def _on_drop(self, patient: _Patient) -> None:
        self.tally.drop_outs += 1
        patient.answering = False
        self._send(patient, self.cohort.drop_out_event, reason="Stopped attending (simulated)")

    # -- check-ins ----------------------------------------------------------------------------

    def _series_start(self, patient: _Patient, effect: StartCheckins) -> None:
        existing = patient.series.get(effect.series)
        if existing is not None and not existing.stopped:
            return  # starting is idempotent
        every = self.rules.series_interval(effect.instrument, effect.every)
        series = _Series(effect.series, effect.instrument, every, self._now)
        patient.series[effect.series] = series
        self._plan_next(patient, series)

    def _plan_next(self, patient: _Patient, series: _Series) -> None:
        if series.stopped:
            return
        due = self.rules.next_due(
            patient.contact,
            started_at=series.started_at,
            every=series.every,
            after=self._now,
            last_due=series.last_due,
        )
        series.occurrence += 1
        series.last_due = due
        series.due_at = due
        series.closes_at = self.rules.closes_at(due, series.every)
        series.state = "scheduled"
        self._at(due, patient, "checkin_open", series.name, series.occurrence)

    def _current(self, patient: _Patient, name: str, occurrence: int) -> _Series | None:
        series = patient.series.get(name)
        if series is None or series.occurrence != occurrence or series.stopped:
            return None
        return series

    def _on_checkin_open(self, patient: _Patient, name: str, occurrence: int) -> None:
        series = self._current(patient, name, occurrence)
        if series is None or series.state != "scheduled":
            return
        assert series.due_at is not None
        assert series.closes_at is not None
        series.state = "open"
        self.tally.checkins["opened"] += 1
        self._message(patient, "checkin_request", "routine", (name, occurrence))
        for at in self.rules.reminders(
            patient.contact, due_at=series.due_at, closes_at=series.closes_at, opened_at=self._now
        ):
            self._at(at, patient, "reminder", name, occurrence)
        self._at(series.closes_at, patient, "checkin_close", name, occurrence)
        if patient.answering and patient.rng.random() < patient.archetype.answer_rate:
            delay = draw_duration(patient.archetype.answer_delay, patient.rng)
            answer_at = min(self._now + delay, series.closes_at - timedelta(minutes=1))
            self._at(answer_at, patient, "answer", name, occurrence)

    def _on_reminder(self, patient: _Patient, name: str, occurrence: int) -> None:
        if self._current(patient, name, occurrence) is None:
            return
        self._message(patient, "checkin_reminder", "routine", (name, occurrence))

    def _on_answer(self, patient: _Patient, name: str, occurrence: int) -> None:
        series = self._current(patient, name, occurrence)
        if series is None or series.state != "open" or not patient.answering:
            return
        series.state = "answered"
        series.misses_in_a_row = 0
        self.tally.checkins["answered"] += 1
        self._score(patient, series.instrument, self._now)
        self._plan_next(patient, series)

    def _on_checkin_close(self, patient: _Patient, name: str, occurrence: int) -> None:
        series = self._current(patient, name, occurrence)
        if series is None or series.state != "open":
            return
        series.state = "missed"
        series.misses_in_a_row += 1
        self.tally.checkins["missed"] += 1
        if series.misses_in_a_row == self.rules.misses_before_task:
            self.tally.tasks["coordinator"][self.tally.week(self._now)] += 1
            self.tally.checkins["miss streak tasks"] += 1
        self._plan_next(patient, series)

    # -- messages -----------------------------------------------------------------------------

    def _message(
        self, patient: _Patient, purpose: str, urgency: str, about: tuple[str, int] | None
    ) -> None:
        self._on_deliver(patient, purpose, urgency, about)

    def _on_deliver(
        self, patient: _Patient, purpose: str, urgency: str, about: tuple[str, int] | None
    ) -> None:
        suppressed = None
        if about is not None:
            series = patient.series.get(about[0])
            if series is None or series.occurrence != about[1] or series.state != "open":
                suppressed = "the check-in is no longer open"
        day = self.rules.day_key(patient.contact, self._now)
        verdict = self.rules.deliver(
            patient.contact,
            purpose=purpose,
            urgency=urgency,
            now=self._now,
            sent_today=patient.sent_by_day[day],
            suppressed_because=suppressed,
        )
        if verdict.outcome == "deferred" and verdict.not_before is not None:
            self.tally.messages["deferred"] += 1
            self._at(verdict.not_before, patient, "deliver", purpose, urgency, about)
            return
        self.tally.messages[verdict.outcome] += 1
        if verdict.outcome == "send":
            patient.sent_by_day[day] += 1
            self.tally.max_sent_in_a_day = max(
                self.tally.max_sent_in_a_day, patient.sent_by_day[day]
            )
            self.tally.sent_per_patient_week[(patient.index, self.tally.week(self._now))] += 1


class _Derived:
    """The facts and occurrences of one step, derived on first use (one derivation for both)."""

    def __init__(
        self, rules: ClinicRules, rows: list[SimObservation], time_zone: str, now: datetime
    ) -> None:
        self._args = (rows, time_zone, now)
        self._rules = rules
        self._values: tuple[dict[str, Any], dict[str, tuple[datetime, ...]]] | None = None
        self.facts = _Lazy(self, 0)
        self.occurrences = _Lazy(self, 1)

    def values(self, which: int) -> Mapping[str, Any]:
        if self._values is None:
            self._values = self._rules.facts(*self._args)
        return self._values[which]


class _Lazy(Mapping[str, Any]):
    def __init__(self, derived: _Derived, which: int) -> None:
        self._derived = derived
        self._which = which

    def __getitem__(self, name: str) -> Any:
        return self._derived.values(self._which)[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._derived.values(self._which))

    def __len__(self) -> int:
        return len(self._derived.values(self._which))


def _truth(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "1")
    return bool(value)
