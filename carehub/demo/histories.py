"""Care histories for the demo patients: each patient is taken through the intractable-pain
pathway with the same services a clinic uses, at the times things would have happened.

A `Story` replays time (`carehub.core.clock.replay`): between the clinic's actions it moves the
clock from one due moment to the next, and at each one does what the live system's workers do
(fire the pathway's timers, execute its effects, open and close check-ins, send the messages
that are due) and what the patient does (answer a check-in some hours after the link arrives,
sometimes only after a reminder, sometimes not at all). Answers follow the patient's score
trajectory with a little noise from a random generator seeded with the MRN, so the same demo
comes out every time (times are relative to the day it is seeded).
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection, connections
from django.db.models import Min, Q

from carehub.accounts.models import Role, User
from carehub.checkins.models import Checkin, CheckinStatus
from carehub.checkins.services import checkin_submit, checkins_close_expired, checkins_open_due
from carehub.core import clock
from carehub.core.exceptions import ApplicationError
from carehub.instruments.registry import instrument_get
from carehub.messaging.delivery import message_send
from carehub.messaging.models import DUE_STATUSES, Message, MessageStatus
from carehub.observations.services import (
    conservative_care_start_record,
    failed_treatment_record,
    medication_record,
    pain_onset_record,
    procedure_record,
    psych_evaluation_record,
    score_record,
    session_record,
    status_record,
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
        every = kinds is None
        if self.enrolment is not None and (every or "timer" in kinds):  # type: ignore[operator]
            enrolment_timers_fire(enrolment_id=self.enrolment.pk, until=now)
            self._run_effects()
        if every or "open" in kinds:  # type: ignore[operator]
            checkins_open_due(now=now, patient_id=self.patient.pk)
        if every or "close" in kinds:  # type: ignore[operator]
            checkins_close_expired(now=now, patient_id=self.patient.pk)
        self._send_due()
        if every or "open" in kinds:  # type: ignore[operator]
            self._plan_answers()
        if every or "answer" in kinds:  # type: ignore[operator]
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
        onset = self.now.date() - timedelta(days=365 * pain_years)
        pain_onset_record(patient=patient, onset=onset, recorded_by=by)
        conservative_care_start_record(
            patient=patient, started=self.now.date() - timedelta(days=180), recorded_by=by
        )
        for treatment in failed:
            failed_treatment_record(
                patient=patient, treatment_class=treatment, reason="insufficient_effect",
                observed_at=self.now, recorded_by=by, duration_weeks=8,
            )  # fmt: skip
        for instrument, value in (("peg", peg), ("phq9", phq9), ("gad7", gad7)):
            score_record(
                patient=patient, instrument=instrument, score=value, observed_at=self.now,
                is_baseline=True, recorded_by=by, source="patient",
            )  # fmt: skip
        status_record(
            patient=patient, code="substance_use_active", value=False, observed_at=self.now,
            recorded_by=self.by(Role.PSYCHOLOGIST),
        )  # fmt: skip
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
            enrolment_id=self.enrolment.pk, event=name, user=self.by(role), at=self.now,
            idempotency_key=f"demo:{self.patient.mrn}:{self.counter}", reason=reason,
            note=f"Discharged: {reason}" if reason else "",
        )  # fmt: skip
        self._work()
        return result.outcome

    def approve(self) -> None:
        assert self.enrolment is not None
        proposal = Proposal.objects.get(enrolment=self.enrolment, status=ProposalStatus.PENDING)
        self.counter += 1
        proposal_approve(
            proposal=proposal, user=self.by(Role.PHYSICIAN),
            idempotency_key=f"demo:{self.patient.mrn}:{self.counter}",
        )  # fmt: skip
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
                patient=self.patient, discipline=discipline, attended=attended,
                observed_at=self.now, recorded_by=self.by(role),
                notes="Progress note written after the session." if attended else "",
            )  # fmt: skip
            if discipline != "pt" or n == 0:
                self.event(f"{discipline}_session_logged", role)

    def procedure(self, code: str, relief: float, event: str, weeks: float | None = None) -> None:
        procedure_record(
            patient=self.patient, procedure=code, performed_at=self.now, relief_pct=relief,
            relief_weeks=weeks, recorded_by=self.by(Role.PHYSICIAN),
        )  # fmt: skip
        self.event(event, Role.PHYSICIAN)


# --- building blocks -----------------------------------------------------------------------------


def _no_improvement(baseline: float) -> Trajectory:
    return [(0, baseline), (30, baseline - 0.4), (84, baseline - 0.3), (400, baseline - 0.5)]


def _conventional(story: Story, *, cbt: bool = True) -> None:
    """Intake completed: weekly PEG and 4-weekly mood check-ins start; PT (and CBT) begin."""
    story.event("intake_completed")
    story.wait(days=5)
    story.event("pt_started", Role.PHYSICAL_THERAPIST)
    if cbt:
        story.wait(days=4)
        story.event("cbt_started", Role.PSYCHOLOGIST)


def _to_interventional_review(story: Story) -> None:
    """Twelve weeks of conventional care without enough improvement."""
    _conventional(story)
    story.sessions("pt", 15)
    story.sessions("cbt", 4, every_days=7)
    assert story.enrolment is not None
    started = story.enrolment.started_at
    story.until(started + timedelta(weeks=12, hours=26))  # the 12-week review fires


def _neuromodulation_candidate(story: Story, outcome: str = "cleared") -> None:
    _to_interventional_review(story)
    story.wait(days=4)
    story.event("neuromodulation_referred", Role.PHYSICIAN)
    story.wait(weeks=3)
    psych_evaluation_record(
        patient=story.patient, outcome=outcome, observed_at=story.now,
        recorded_by=story.by(Role.PSYCHOLOGIST),
    )  # fmt: skip
    story.event("psych_evaluation_recorded", Role.PSYCHOLOGIST)


def _opioids(story: Story, dose: float) -> None:
    story.event("opioid_started", Role.PHYSICIAN)
    medication_record(
        patient=story.patient, drug="oxycodone", daily_dose=dose, unit="mg",
        observed_at=story.now, recorded_by=story.by(Role.PHARMACIST),
    )  # fmt: skip
    story.event("medication_recorded", Role.PHARMACIST)


# --- the stories ---------------------------------------------------------------------------------


def intake_only(story: Story) -> None:
    """Baselines recorded, intake not yet completed: waiting on the coordinator."""
    story.intake(peg=6.7, phq9=11, gad7=8, pain_years=1, failed=["nsaid", "snri"])


def early_conventional(story: Story) -> None:
    """Six weeks into conventional care, improving; the portal demo patient."""
    story.habits.trajectories = {
        "peg": [(0, 7.3), (10, 6.9), (25, 5.6), (35, 4.7), (42, 4.6)],
        "phq9": [(0, 12), (42, 8)],
        "gad7": [(0, 9), (42, 6)],
        "psfs": [(0, 3), (42, 5)],
    }
    story.habits.leave_open_hours = 60
    story.intake(peg=7.3, phq9=12, gad7=9, pain_years=3, failed=["gabapentinoid", "tca", "nsaid"])
    _conventional(story)
    story.sessions("pt", 8)
    story.sessions("cbt", 3, every_days=7)
    story.until(story.end)


def conventional_weeks(
    weeks: float, *, improving: bool = True, cbt: bool = True
) -> Callable[[Story], None]:
    def build(story: Story) -> None:
        peg = 6.5 + story.rng.uniform(0, 2)
        story.habits.trajectories = {
            "peg": [(0, peg), (weeks * 7, peg - (2.0 if improving else 0.3))],
            "phq9": [(0, 10), (weeks * 7, 8 if improving else 11)],
        }
        story.intake(peg=round(peg, 1), phq9=10, gad7=7, pain_years=2, failed=["nsaid", "snri"])
        _conventional(story, cbt=cbt)
        story.sessions("pt", max(1, int(weeks * 2)))
        story.until(story.end)

    build.__doc__ = f"{weeks} weeks into conventional care."
    return build


def poor_adherence(story: Story) -> None:
    """Conventional care; the patient stopped answering: missed check-ins, a task to call."""
    story.habits.answers = 0.85
    story.habits.trajectories = {"peg": _no_improvement(7.0)}
    story.intake(peg=7.0, phq9=9, gad7=8, pain_years=2, failed=["nsaid", "tca"])
    _conventional(story, cbt=False)
    story.sessions("pt", 6)
    story.wait(weeks=2)
    story.habits.answers = 0.0
    story.until(story.end)


def paused_stay(story: Story) -> None:
    """Conventional care paused for a hospital stay."""
    story.habits.trajectories = {"peg": [(0, 7.1), (40, 6.2)]}
    story.intake(peg=7.1, phq9=8, gad7=6, pain_years=4, failed=["nsaid", "gabapentinoid"])
    _conventional(story)
    story.sessions("pt", 6)
    story.wait(days=2)
    story.pause("In hospital for an unrelated operation")


def opioid_monitoring(story: Story) -> None:
    """Conventional care with long-term opioids at 60 MME a day: naloxone not yet offered."""
    story.habits.trajectories = {"peg": [(0, 7.6), (50, 6.8)]}
    story.intake(peg=7.6, phq9=9, gad7=7, pain_years=6, failed=["nsaid", "snri", "tca"])
    _opioids(story, dose=40)
    story.wait(days=3)
    _conventional(story)
    story.sessions("pt", 8)
    story.wait(days=2)
    story.event("opioid_reassessed", Role.PHYSICIAN)
    story.until(story.end)


def _maintenance_course(story: Story) -> None:
    story.habits.trajectories = {
        "peg": [(0, 7.0), (30, 5.9), (84, 4.1), (200, 3.8)],
        "phq9": [(0, 11), (84, 6)],
        "gad7": [(0, 9), (84, 5)],
    }
    story.intake(peg=7.0, phq9=11, gad7=9, pain_years=2, failed=["nsaid", "snri"])
    _conventional(story)
    story.sessions("pt", 15)
    story.sessions("cbt", 6, every_days=7)
    assert story.enrolment is not None
    story.until(story.enrolment.started_at + timedelta(weeks=12, hours=26))


def maintenance(story: Story) -> None:
    """Conventional care worked (a meaningful PEG improvement): monthly check-ins now."""
    _maintenance_course(story)
    story.until(story.end)


def discharged(story: Story) -> None:
    """Maintenance, then discharged from the pathway."""
    _maintenance_course(story)
    story.wait(weeks=5)
    story.event("discharge_recorded", reason="Goals met; care back with the primary care team")
    story.until(story.end)


def review_waiting(story: Story) -> None:
    """Conventional care failed; the physician has not chosen a route yet."""
    story.habits.trajectories = {"peg": _no_improvement(7.4)}
    story.intake(peg=7.4, phq9=10, gad7=8, pain_years=3, failed=["nsaid", "gabapentinoid"])
    _to_interventional_review(story)
    story.until(story.end)


def block_proposed(story: Story) -> None:
    """Failed conventional care; a medial branch block waits for the physician's approval."""
    story.habits.trajectories = {"peg": _no_improvement(7.8)}
    story.intake(peg=7.8, phq9=9, gad7=6, pain_years=4, failed=["gabapentinoid", "snri"])
    _to_interventional_review(story)
    story.wait(days=3)
    story.event("mbb_requested", Role.PHYSICIAN)
    story.until(story.end)


def _blocks(story: Story, *, upto: str) -> None:
    story.habits.trajectories = {"peg": _no_improvement(8.0) if upto != "rfa_followup" else [
        (0, 8.0), (90, 7.7), (130, 7.5), (150, 4.8), (200, 3.9)]}  # fmt: skip
    story.intake(peg=8.0, phq9=7, gad7=5, pain_years=6, failed=["gabapentinoid", "snri", "nsaid"])
    _to_interventional_review(story)
    story.wait(days=3)
    story.event("mbb_requested", Role.PHYSICIAN)
    story.approve()
    if upto == "mbb1":
        story.until(story.end)
        return
    story.wait(weeks=2)
    story.procedure("mbb1", 85, "mbb1_result_recorded")
    story.approve()
    if upto == "mbb2":
        story.until(story.end)
        return
    story.wait(weeks=2)
    story.procedure("mbb2", 90, "mbb2_result_recorded")
    story.approve()
    if upto == "rfa":
        story.until(story.end)
        return
    story.wait(weeks=3)
    story.event("rfa_performed", Role.PHYSICIAN)
    story.until(story.end)


def after_ablation(story: Story) -> None:
    _blocks(story, upto="rfa_followup")


def first_block(story: Story) -> None:
    _blocks(story, upto="mbb1")


def second_block(story: Story) -> None:
    _blocks(story, upto="mbb2")


def ablation_booked(story: Story) -> None:
    _blocks(story, upto="rfa")


def injection(story: Story) -> None:
    """An epidural steroid injection approved, waiting to be done."""
    story.habits.trajectories = {"peg": _no_improvement(7.2)}
    story.intake(peg=7.2, phq9=8, gad7=7, pain_years=2, failed=["nsaid", "gabapentinoid"])
    _to_interventional_review(story)
    story.wait(days=2)
    story.event("esi_requested", Role.PHYSICIAN)
    story.approve()
    story.until(story.end)


def nerve_block(story: Story) -> None:
    story.habits.trajectories = {"peg": _no_improvement(6.9)}
    story.intake(peg=6.9, phq9=7, gad7=6, pain_years=3, failed=["nsaid", "tca"])
    _to_interventional_review(story)
    story.wait(days=2)
    story.event("nerve_block_requested", Role.PHYSICIAN)
    story.approve()
    story.until(story.end)


def psych_evaluation(story: Story) -> None:
    """Referred for neuromodulation: waiting for the psychological evaluation."""
    story.habits.trajectories = {"peg": _no_improvement(7.9)}
    story.intake(peg=7.9, phq9=10, gad7=9, pain_years=5, failed=["gabapentinoid", "snri", "tca"])
    _to_interventional_review(story)
    story.wait(days=4)
    story.event("neuromodulation_referred", Role.PHYSICIAN)
    story.until(story.end)


def psych_deferred(story: Story) -> None:
    """Clearance deferred for treatment first; the last PHQ-9 raised a red flag (item 9)."""
    story.habits.trajectories = {"peg": _no_improvement(7.6), "phq9": [(0, 16), (200, 17)]}
    story.habits.answers = 1.0
    story.habits.item9_after_day = 100
    story.intake(peg=7.6, phq9=16, gad7=12, pain_years=5, failed=["gabapentinoid", "tca", "snri"])
    _neuromodulation_candidate(story, outcome="deferred_pending_treatment")
    story.until(story.end)


def candidate(story: Story) -> None:
    """Cleared by the psychologist: neuromodulation options to discuss."""
    story.habits.trajectories = {"peg": _no_improvement(8.1)}
    story.intake(peg=8.1, phq9=8, gad7=6, pain_years=6, failed=["gabapentinoid", "snri", "tca"])
    _neuromodulation_candidate(story)
    story.until(story.end)


def stimulator_trial(story: Story) -> None:
    """In the stimulator trial, with a daily diary; day 2 reported a wound problem."""
    story.habits.trajectories = {"peg": _no_improvement(8.2), "trial_diary": [(0, 7), (200, 3)]}
    story.intake(peg=8.2, phq9=8, gad7=7, pain_years=7, failed=["gabapentinoid", "snri", "opioid"])
    _neuromodulation_candidate(story)
    story.event("scs_trial_requested", Role.PHYSICIAN)
    story.approve()
    assert story.start is not None
    story.habits.wound_problem_day = story.day() + 1.2
    story.until(story.end)


def _trial_then_implant(story: Story, *, upto: str) -> None:
    story.habits.trajectories = {
        "peg": [(0, 8.5), (110, 8.2), (150, 5.0), (200, 4.2)],
        "trial_diary": [(0, 4)],
    }
    story.intake(peg=8.5, phq9=6, gad7=5, pain_years=9, failed=["gabapentinoid", "tca", "opioid"])
    _neuromodulation_candidate(story)
    story.event("scs_trial_requested", Role.PHYSICIAN)
    story.approve()
    story.wait(days=7, hours=2)
    story.procedure("scs_trial", 70, "scs_trial_result_recorded")
    if upto == "proposed":
        story.until(story.end)
        return
    story.approve()
    if upto == "scs_implant":
        story.until(story.end)
        return
    story.wait(weeks=3)
    story.event("implant_performed", Role.PHYSICIAN)
    story.until(story.end)


def stimulator_implanted(story: Story) -> None:
    _trial_then_implant(story, upto="scs_followup")


def implant_booked(story: Story) -> None:
    _trial_then_implant(story, upto="scs_implant")


def implant_proposed(story: Story) -> None:
    """The trial worked; the implant waits for the physician's approval."""
    _trial_then_implant(story, upto="proposed")


def _pump(story: Story, *, upto: str) -> None:
    story.habits.trajectories = {"peg": _no_improvement(8.8), "trial_diary": [(0, 5)]}
    story.intake(
        peg=8.8, phq9=10, gad7=8, pain_years=11, failed=["gabapentinoid", "snri", "opioid"]
    )
    _opioids(story, dose=40)
    _neuromodulation_candidate(story)
    story.event("it_trial_requested", Role.PHYSICIAN)
    story.approve()
    if upto == "it_trial":
        story.until(story.end)
        return
    story.wait(days=3)
    status_record(
        patient=story.patient, code="adverse_effects_intolerable", value=False,
        observed_at=story.now, recorded_by=story.by(Role.PHYSICIAN),
    )  # fmt: skip
    story.procedure("it_trial", 60, "it_trial_result_recorded")
    story.approve()
    if upto == "pump_implant":
        story.until(story.end)
        return
    story.wait(weeks=2)
    story.event("implant_performed", Role.PHYSICIAN)
    story.wait(days=10)
    story.until(story.end)


def pump_patient(story: Story) -> None:
    _pump(story, upto="pump_active")


def pump_trial(story: Story) -> None:
    _pump(story, upto="it_trial")


def pump_booked(story: Story) -> None:
    _pump(story, upto="pump_implant")


# MRN → (history, how many days ago it starts). Each ends today.
HISTORIES: dict[str, tuple[Callable[[Story], None], int]] = {
    "RP-1001": (intake_only, 2),
    "RP-1002": (early_conventional, 42),
    "RP-1003": (block_proposed, 100),
    "RP-1004": (after_ablation, 165),
    "RP-1005": (psych_deferred, 130),
    "RP-1006": (stimulator_trial, 120),
    "RP-1007": (stimulator_implanted, 160),
    "RP-1008": (pump_patient, 150),
    "RP-1009": (conventional_weeks(2), 16),
    "RP-1010": (conventional_weeks(5, improving=False), 38),
    "RP-1011": (conventional_weeks(9), 65),
    "RP-1012": (conventional_weeks(11, cbt=False), 79),
    "RP-1013": (poor_adherence, 60),
    "RP-1014": (paused_stay, 50),
    "RP-1015": (opioid_monitoring, 70),
    "RP-1016": (maintenance, 110),
    "RP-1017": (discharged, 130),
    "RP-1018": (review_waiting, 88),
    "RP-1019": (first_block, 98),
    "RP-1020": (second_block, 112),
    "RP-1021": (ablation_booked, 128),
    "RP-1022": (injection, 95),
    "RP-1023": (nerve_block, 92),
    "RP-1024": (psych_evaluation, 100),
    "RP-1025": (candidate, 118),
    "RP-1026": (implant_proposed, 125),
    "RP-1027": (implant_booked, 135),
    "RP-1028": (pump_trial, 122),
    "RP-1029": (pump_booked, 135),
    "RP-1030": (conventional_weeks(7), 50),
}


# Patients whose weekly check-in should be open, unanswered, when the demo starts (the portal
# demo login): their history starts a whole number of weeks before their last 10:00.
OPEN_AT_THE_END = {"RP-1002"}


def story_start(patient: Patient, days_ago: int, now: datetime) -> datetime:
    """09:00 in the patient's zone, `days_ago` days before their today."""
    zone = ZoneInfo(patient.time_zone)
    local_now = now.astimezone(zone)
    if patient.mrn in OPEN_AT_THE_END and local_now.time() < time(11, 0):
        days_ago += 1  # today's check-in is not open yet: end a day after one that is
    local_day = local_now.date() - timedelta(days=days_ago)
    return datetime.combine(local_day, time(9, 0), tzinfo=zone)


def demo_history_build(*, patient: Patient, staff: dict[str, User]) -> bool:
    """Build the patient's history once; False when they are already on the pathway."""
    if Enrolment.objects.filter(patient=patient, definition_key=PATHWAY).exists():
        return False
    history = HISTORIES.get(patient.mrn)
    if history is None:
        return False
    build, days_ago = history
    end = clock.now()
    start = story_start(patient, days_ago, end)
    rng = random.Random(patient.mrn)  # noqa: S311  (the same demo every time; no secrets)
    story = Story(patient=patient, staff=staff, now=start, end=end, rng=rng, start=start)
    with clock.replay(start) as replay:
        story.replay = replay
        build(story)
    return True


def _build_in_worker(args: tuple[int, dict[str, int]]) -> str | None:
    """In a forked worker process: build one patient's history with its own connection."""
    patient_id, staff_ids = args
    try:
        patient = Patient.objects.get(pk=patient_id)
        staff = {role: User.objects.get(pk=pk) for role, pk in staff_ids.items()}
        return patient.mrn if demo_history_build(patient=patient, staff=staff) else None
    finally:
        connections.close_all()


def demo_histories_build(
    *, patients: list[Patient], staff: dict[str, User], workers: int | None = None
) -> list[str]:
    """Build the histories not built yet; the MRNs built. Histories are independent of each
    other, so they are built side by side in forked processes (one per core, at most 4) unless
    the caller holds a transaction (which other processes could not see)."""
    todo = [
        p for p in patients
        if p.mrn in HISTORIES
        and not Enrolment.objects.filter(patient=p, definition_key=PATHWAY).exists()
    ]  # fmt: skip
    # The longest histories first, so that the processes finish together.
    todo.sort(key=lambda p: -HISTORIES[p.mrn][1])
    workers = workers or max(1, min(4, os.cpu_count() or 1))
    if workers == 1 or len(todo) < 2 or connection.in_atomic_block:
        return sorted(p.mrn for p in todo if demo_history_build(patient=p, staff=staff))
    staff_ids = {role: user.pk for role, user in staff.items()}
    connections.close_all()  # each process opens its own
    context = multiprocessing.get_context("fork")
    with context.Pool(workers) as pool:
        built = pool.map(_build_in_worker, [(p.pk, staff_ids) for p in todo], chunksize=1)
    return sorted(mrn for mrn in built if mrn)
