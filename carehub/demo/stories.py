"""The demo's story language: a `Story` takes one patient through the intractable-pain pathway
with the same services a clinic uses, at the times things would have happened.

A `Story` replays time (`carehub.core.clock.replay`): between the clinic's actions it moves the
clock from one due moment to the next, and at each one does what the live system's workers do
(fire the pathway's timers, execute its effects, open and close check-ins, send the messages
that are due) and what the patient does (answer a check-in some hours after the link arrives,
sometimes only after a reminder, sometimes not at all). Answers follow the patient's score
trajectory (`Habits`) with a little noise from a random generator seeded with the MRN, so the
same demo comes out every time (times are relative to the day it is seeded).

The scripts written in it are in `carehub.demo.scripts`; `carehub.demo.builder` runs them.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Min, Q

from carehub.accounts.models import Role, User
from carehub.checkins.models import Checkin, CheckinStatus
from carehub.checkins.services import checkin_submit, checkins_close_expired, checkins_open_due
from carehub.core import clock
from carehub.core.exceptions import ApplicationError
from carehub.demo.seeding import demo_intake_history_record
from carehub.instruments.registry import instrument_get
from carehub.messaging.delivery import message_send
from carehub.messaging.models import DUE_STATUSES, Message, MessageStatus
from carehub.observations.services import (
    procedure_record,
    session_record,
)
from carehub.pathways.effects import effect_execute
from carehub.pathways.models import (
    EffectStatus,
    Enrolment,
    OutboxEffect,
    PathwayTimer,
    Proposal,
    ProposalStatus,
    TimerStatus,
)
from carehub.pathways.scheduler import enrolment_timers_fire
from carehub.pathways.services import (
    enrolment_pause,
    enrolment_start,
    pathway_dispatch,
    proposal_approve,
)
from carehub.patients.models import Patient

PATHWAY = "intractable-pain"
# The demo's patients started before version 2 was published: they run on version 1 until
# `manage.py pathway migrate intractable-pain 1 2` moves them (README, "Changing a pathway").
PATHWAY_VERSION = 1
# Messages a worker would send now: due ones, and those queued when created (due at once).
SENDABLE = (*DUE_STATUSES, MessageStatus.QUEUED)
Trajectory = list[tuple[float, float]]  # (day of the story, score), straight lines between


@dataclass
class Habits:
    """How a patient answers their check-ins."""

    answers: float = 0.9  # the share of check-ins answered at all
    after_reminder: float = 0.2  # of those, the share answered only after a reminder
    # Scores over the story, per instrument (PEG, PHQ-9, GAD-7, PSFS, trial diary pain).
    trajectories: dict[str, Trajectory] = field(default_factory=dict)
    # PHQ-9 item 9 answered "several days" (1) on the first PHQ-9 after this day of the story.
    item9_after_day: float | None = None
    # A trial diary reporting fever or a wound problem on this day of the story.
    wound_problem_day: float | None = None
    # Check-ins opened this close to the end of the story are left for the patient to answer.
    leave_open_hours: float = 0


@dataclass
class Story:
    patient: Patient
    staff: dict[str, User]
    now: datetime
    end: datetime
    habits: Habits = field(default_factory=Habits)
    enrolment: Enrolment | None = None
    counter: int = 0
    rng: random.Random = field(default_factory=random.Random)
    replay: clock.ReplayClock | None = None
    start: datetime | None = None
    plans: dict[int, tuple[datetime, dict[str, Any]] | None] = field(default_factory=dict)
    answered: set[str] = field(default_factory=set)

    # --- time -------------------------------------------------------------------------------

    def by(self, role: str = Role.COORDINATOR) -> User:
        return self.staff[role]

    def day(self, moment: datetime | None = None) -> float:
        assert self.start is not None
        return ((moment or self.now) - self.start).total_seconds() / 86400

    def _move(self, moment: datetime) -> None:
        self.now = moment
        if self.replay is not None:
            self.replay.move_to(moment)

    def wait(self, **delta: float) -> None:
        """Let time pass: everything that falls due meanwhile happens at its own time."""
        self.until(min(self.now + timedelta(**delta), self.end))

    def until(self, target: datetime) -> None:
        self._work()
        while (due := self._next_due()) is not None and due[0] <= target:
            self._move(due[0])
            self._work(due[1])
        if target > self.now:
            self._move(target)
        self._work()

    def _next_due(self) -> tuple[datetime, set[str]] | None:
        """The next moment something falls due, and what: pathway timers, check-ins to open or
        close, messages to send, answers the patient will give. Reminders of answered
        check-ins are left for the next stop (they are suppressed whenever they are handled)."""
        after = self.now
        candidates: dict[str, datetime | None] = {}
        if self.enrolment is not None:
            candidates["timer"] = PathwayTimer.objects.filter(
                enrolment_id=self.enrolment.pk, status=TimerStatus.PENDING, due_at__gt=after
            ).aggregate(m=Min("due_at"))["m"]
        checkins = Checkin.objects.filter(patient=self.patient).aggregate(
            open=Min("due_at", filter=Q(status=CheckinStatus.SCHEDULED, due_at__gt=after)),
            close=Min("closes_at", filter=Q(status=CheckinStatus.OPEN, closes_at__gt=after)),
        )
        candidates["open"], candidates["close"] = checkins["open"], checkins["close"]
        candidates["message"] = (
            Message.objects.filter(patient=self.patient, status__in=SENDABLE, not_before__gt=after)
            .exclude(purpose="checkin_reminder", subject_key__in=self.answered)
            .aggregate(m=Min("not_before"))["m"]
        )
        plans = [plan[0] for plan in self.plans.values() if plan and plan[0] > after]
        candidates["answer"] = min(plans) if plans else None
        due = {kind: at for kind, at in candidates.items() if at is not None}
        if not due:
            return None
        moment = min(due.values())
        return moment, {kind for kind, at in due.items() if at == moment}

    def _work(self, kinds: set[str] | None = None) -> None:
        """What the workers and the patient do at `now` (everything, or only what is due)."""
        now = self.now

        def due(kind: str) -> bool:
            return kinds is None or kind in kinds

        if self.enrolment is not None and due("timer"):
            enrolment_timers_fire(enrolment_id=self.enrolment.pk, until=now)
            self._run_effects()
        if due("open"):
            checkins_open_due(now=now, patient_id=self.patient.pk)
        if due("close"):
            checkins_close_expired(now=now, patient_id=self.patient.pk)
        self._send_due()
        if due("open"):
            self._plan_answers()
        if due("answer"):
            answered = False
            for checkin_id, plan in list(self.plans.items()):
                if plan is not None and plan[0] <= now:
                    self.plans[checkin_id] = None
                    try:
                        checkin_submit(checkin_id=checkin_id, answers=plan[1])
                    except ApplicationError:
                        continue  # closed meanwhile (series stopped): nothing to answer
                    self.answered.add(f"checkin:{checkin_id}")
                    answered = True
            if answered:
                self._send_due()  # red-flag alerts go out at once

    def _run_effects(self) -> None:
        assert self.enrolment is not None
        pending = OutboxEffect.objects.filter(
            enrolment_id=self.enrolment.pk, status=EffectStatus.PENDING
        ).order_by("pk")
        for effect_id in pending.values_list("pk", flat=True):
            effect_execute(effect_id=effect_id)

    def _send_due(self) -> None:
        due = Message.objects.filter(
            patient=self.patient, status__in=SENDABLE, not_before__lte=self.now
        ).order_by("not_before", "pk")
        for message_id in due.values_list("pk", flat=True):
            message_send(message_id=message_id)

    # --- the patient ------------------------------------------------------------------------

    def _plan_answers(self) -> None:
        opened = Checkin.objects.filter(patient=self.patient, status=CheckinStatus.OPEN).exclude(
            pk__in=list(self.plans)
        )
        for checkin in opened.order_by("pk"):
            self.plans[checkin.pk] = self._plan(checkin)

    def _plan(self, checkin: Checkin) -> tuple[datetime, dict[str, Any]] | None:
        habits = self.habits
        opened_at = checkin.opened_at or self.now
        if opened_at >= self.end - timedelta(hours=habits.leave_open_hours):
            return None
        if self.rng.random() >= habits.answers:
            return None  # missed
        window = (checkin.closes_at - opened_at).total_seconds() / 3600
        if self.rng.random() < habits.after_reminder:
            hours = self.rng.uniform(window * 0.4, window * 0.9)
        else:
            hours = self.rng.uniform(0.5, min(10.0, window * 0.3))
        at = opened_at + timedelta(hours=hours)
        return at, self._answers(checkin.instrument, at)

    def _level(self, instrument: str, at: datetime, default: float) -> float:
        points = self.habits.trajectories.get(instrument)
        if not points:
            return default
        day = self.day(at)
        if day <= points[0][0]:
            return points[0][1]
        for (d0, v0), (d1, v1) in itertools.pairwise(points):
            if d0 <= day <= d1:
                return v0 + (v1 - v0) * (day - d0) / ((d1 - d0) or 1)
        return points[-1][1]

    def _scale(self, value: float, low: int, high: int, spread: float = 0.8) -> int:
        return max(low, min(high, round(value + self.rng.uniform(-spread, spread))))

    def _spread(self, total: float, items: int, top: int) -> list[int]:
        """Item answers (0..top) adding up to about `total`."""
        total = max(0, min(items * top, round(total + self.rng.uniform(-1.5, 1.5))))
        values = [0] * items
        order = list(range(items))
        self.rng.shuffle(order)
        while total > 0:
            for i in order:
                if total and values[i] < top and self.rng.random() < 0.7:
                    values[i] += 1
                    total -= 1
        return values

    def _answers(self, instrument: str, at: datetime) -> dict[str, Any]:
        if instrument == "peg":
            level = self._level("peg", at, 6.5)
            return {k: self._scale(level, 0, 10) for k in ("pain", "enjoyment", "activity")}
        if instrument in ("phq9", "gad7"):
            count = 9 if instrument == "phq9" else 7
            level = self._level(instrument, at, 8 if instrument == "phq9" else 6)
            values = self._spread(level, count, 3)
            answers: dict[str, Any] = {f"item{n + 1}": v for n, v in enumerate(values)}
            if instrument == "phq9":
                answers["item9"] = 0
                after = self.habits.item9_after_day
                if after is not None and self.day(at) >= after:
                    answers["item9"] = 1
                    self.habits.item9_after_day = None  # once
            answers["difficulty"] = min(3, round(level / 7))
            return answers
        if instrument == "psfs":
            level = self._level("psfs", at, 4)
            return {f"activity{n}": self._scale(level, 0, 10) for n in (1, 2, 3)} | {
                "activity1_name": "Walking the dog",
                "activity2_name": "Gardening",
                "activity3_name": "Sitting through a film",
            }
        if instrument == "trial_diary":
            level = self._level("trial_diary", at, 4)
            wound = self.habits.wound_problem_day
            problem = wound is not None and self.day(at) >= wound
            if problem:
                self.habits.wound_problem_day = None
            return {
                "average_pain": self._scale(level, 0, 10),
                "worst_pain": self._scale(level + 2, 0, 10),
                "walking_minutes": self.rng.choice([20, 30, 45, 60]),
                "rescue_doses": self.rng.choice([0, 0, 1, 2]),
                "leg_weakness_or_numbness": False,
                "bladder_or_bowel_problem": False,
                "fever_or_wound_problem": problem,
                "headache_when_upright": False,
            }
        if instrument == "pgic":
            return {"change": self.rng.choice([2, 2, 3, 3, 4])}
        return self._generic_answers(instrument)

    def _generic_answers(self, instrument: str) -> dict[str, Any]:
        answers: dict[str, Any] = {}
        for item in instrument_get(instrument).items:
            if item.optional or item.type == "text":
                continue
            if item.type == "yes_no":
                answers[item.key] = False
            elif item.type == "choice" and item.options:
                answers[item.key] = item.options[0].value
            elif item.minimum is not None:
                answers[item.key] = int(item.minimum)
        return answers

    # --- the clinic -------------------------------------------------------------------------

    def intake(
        self, *, peg: float, phq9: int, gad7: int, pain_years: int, failed: list[str]
    ) -> None:
        patient, by = self.patient, self.by()
        demo_intake_history_record(
            patient,
            by,
            self.by(Role.PSYCHOLOGIST),
            self.now,
            pain_years=pain_years,
            failed=failed,
            peg=peg,
            phq9=phq9,
            gad7=gad7,
        )
        self.enrolment = enrolment_start(
            patient=patient,
            definition_key=PATHWAY,
            version=PATHWAY_VERSION,
            started_by=by,
            at=self.now,
        )
        self._work()

    def event(self, name: str, role: str = Role.COORDINATOR, *, reason: str = "") -> str:
        assert self.enrolment is not None
        self.counter += 1
        result = pathway_dispatch(
            enrolment_id=self.enrolment.pk,
            event=name,
            user=self.by(role),
            at=self.now,
            idempotency_key=f"demo:{self.patient.mrn}:{self.counter}",
            reason=reason,
            note=f"Discharged: {reason}" if reason else "",
        )
        self._work()
        return result.outcome

    def approve(self) -> None:
        assert self.enrolment is not None
        proposal = Proposal.objects.get(enrolment=self.enrolment, status=ProposalStatus.PENDING)
        self.counter += 1
        proposal_approve(
            proposal=proposal,
            user=self.by(Role.PHYSICIAN),
            idempotency_key=f"demo:{self.patient.mrn}:{self.counter}",
        )
        self._work()

    def pause(self, reason: str) -> None:
        assert self.enrolment is not None
        enrolment_pause(enrolment_id=self.enrolment.pk, reason=reason, user=self.by(), at=self.now)
        self._work()

    def sessions(self, discipline: str, count: int, *, every_days: float = 3.5) -> None:
        """Sessions over the coming weeks, recorded as they happen (a missed one now and then).
        CBT sessions move the CBT track through its phases, so each is sent to the pathway; a PT
        session changes nothing once the programme runs (the pathway counts the observations),
        so only the first is."""
        role = Role.PHYSICAL_THERAPIST if discipline == "pt" else Role.PSYCHOLOGIST
        for n in range(count):
            self.wait(days=every_days)
            attended = self.rng.random() > 0.07
            session_record(
                patient=self.patient,
                discipline=discipline,
                attended=attended,
                observed_at=self.now,
                recorded_by=self.by(role),
                notes="Progress note written after the session." if attended else "",
            )
            if discipline != "pt" or n == 0:
                self.event(f"{discipline}_session_logged", role)

    def procedure(self, code: str, relief: float, event: str, weeks: float | None = None) -> None:
        procedure_record(
            patient=self.patient,
            procedure=code,
            performed_at=self.now,
            relief_pct=relief,
            relief_weeks=weeks,
            recorded_by=self.by(Role.PHYSICIAN),
        )
        self.event(event, Role.PHYSICIAN)
