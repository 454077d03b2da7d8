"""Walk-throughs of the built-in intractable-pain pathway on PostgreSQL, through the services a
clinic uses: record observations, tell the pathway, approve escalations, let the scheduler fire
timers, run the effects. The log and its explanations are checked at each step."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import pytest
from django.utils import timezone

from carehub.accounts.models import User
from carehub.demo.services import demo_seed
from carehub.messaging.models import Message
from carehub.observations.services import (
    conservative_care_start_record,
    failed_treatment_record,
    pain_onset_record,
    procedure_record,
    psych_evaluation_record,
    score_record,
    session_record,
    status_record,
)
from carehub.pathways.effects import effect_execute
from carehub.pathways.models import EffectStatus, Enrolment, OutboxEffect, PathwayStep, Proposal
from carehub.pathways.scheduler import timers_fire_due
from carehub.pathways.services import (
    enrolment_start,
    patient_event_dispatch,
    proposal_approve,
)
from carehub.patients.models import Patient
from carehub.worklists.models import CareTask, Flag

pytestmark = pytest.mark.django_db


@dataclass
class Journey:
    patient: Patient
    staff: dict[str, User]
    now: datetime
    enrolment: Enrolment | None = None
    counter: int = 0
    steps_seen: int = 0
    log: list[PathwayStep] = field(default_factory=list)

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)

    def event(self, name: str, role: str = "coordinator") -> PathwayStep:
        self.counter += 1
        [result] = patient_event_dispatch(
            patient=self.patient, event=name, idempotency_key=f"walk-{self.counter}",
            user=self.staff[role], at=self.now,
        )  # fmt: skip
        return result.step

    def approve(self) -> PathwayStep:
        assert self.enrolment is not None
        proposal = Proposal.objects.get(enrolment=self.enrolment, status="pending")
        self.counter += 1
        return proposal_approve(
            proposal=proposal, user=self.staff["physician"], idempotency_key=f"ok-{self.counter}"
        ).step

    def fire_timers(self) -> list[PathwayStep]:
        before = PathwayStep.objects.count()
        timers_fire_due(now=self.now)
        return list(PathwayStep.objects.order_by("id")[before:])

    def state(self, track: str = "ladder") -> str:
        assert self.enrolment is not None
        self.enrolment.refresh_from_db()
        return self.enrolment.state_of(track)

    def run_effects(self) -> None:
        for pk in OutboxEffect.objects.filter(status=EffectStatus.PENDING).values_list(
            "pk", flat=True
        ):
            assert effect_execute(effect_id=pk) == EffectStatus.DONE


def readings(step: PathwayStep, check: int = 0) -> dict[str, object]:
    return {r["name"]: r["value"] for r in step.explanation["checks"][check]["readings"]}


@pytest.fixture
def journey() -> Journey:
    seeded = demo_seed(histories=False)
    patient = Patient.objects.get(clinic=seeded.clinic, mrn="RP-1001")
    staff = {u.role: u for u in User.objects.filter(clinic=seeded.clinic)}
    start = timezone.now() - timedelta(days=300)
    j = Journey(patient=patient, staff=staff, now=start)
    by = staff["coordinator"]
    pain_onset_record(
        patient=patient, onset=date.fromordinal(start.date().toordinal() - 600), recorded_by=by
    )
    conservative_care_start_record(
        patient=patient, started=start.date() - timedelta(days=200), recorded_by=by
    )
    for treatment in ("gabapentinoid", "snri", "nsaid"):
        failed_treatment_record(
            patient=patient, treatment_class=treatment, reason="insufficient_effect",
            observed_at=start, recorded_by=by,
        )  # fmt: skip
    for instrument, value in (("peg", 7.0), ("phq9", 9), ("gad7", 7)):
        score_record(
            patient=patient, instrument=instrument, score=value, observed_at=start,
            is_baseline=True, recorded_by=by,
        )  # fmt: skip
    status_record(
        patient=patient, code="substance_use_active", value=False, observed_at=start, recorded_by=by
    )
    j.enrolment = enrolment_start(
        patient=patient, definition_key="intractable-pain", started_by=by, at=start
    )
    return j


def through_conventional_care(j: Journey) -> None:
    step = j.event("intake_completed")
    assert j.state() == "conventional"
    assert step.transitions[0]["target"] == "conventional"
    values = readings(step)
    assert values["failed_treatment_classes"] == 3
    assert values["peg.baseline"] == 7.0
    sources = {r["name"]: r["source"] for r in step.explanation["checks"][0]["readings"]}
    assert "pathway default" in str(sources["threshold.intractable_min_months"])

    for week in range(1, 13):
        j.advance(weeks=1)
        score_record(
            patient=j.patient, instrument="peg", score=6.5 if week > 2 else 7.0, observed_at=j.now
        )
    j.advance(hours=1)
    fired = [s for s in j.fire_timers() if s.event == "conventional_review_due"]
    assert len(fired) == 1
    assert j.state() == "interventional_review"
    review = fired[0]
    improvement = readings(review, check=-1)["peg.improvement_pct"]
    assert improvement == pytest.approx(100 * (7.0 - 6.5) / 7.0, abs=0.1)
    assert "did not hold" in review.explanation["summary"]  # not a responder: no maintenance
    assert review.actor is None  # the scheduler, not a person


def neuromodulation_candidate(j: Journey) -> None:
    step = j.event("neuromodulation_referred", role="physician")
    assert j.state() == "psych_evaluation"
    j.advance(weeks=3)
    psych_evaluation_record(patient=j.patient, outcome="cleared", observed_at=j.now)
    step = j.event("psych_evaluation_recorded", role="psychologist")
    assert j.state() == "neuromodulation_candidate"
    assert readings(step)["psych_eval.outcome"] == "cleared"
    for n in range(10):
        session_record(
            patient=j.patient,
            discipline="pt",
            attended=True,
            observed_at=j.now - timedelta(days=70 - 7 * n),
        )


def test_intake_to_spinal_cord_stimulator_implant_with_approvals(journey: Journey) -> None:
    j = journey
    through_conventional_care(j)
    neuromodulation_candidate(j)

    proposed = j.event("scs_trial_requested", role="physician")
    assert proposed.outcome == "proposed"
    assert j.state() == "neuromodulation_candidate"  # nothing invasive without a physician
    proposal = Proposal.objects.get(enrolment=j.enrolment, status="pending")
    assert proposal.target == "scs_trial"
    assert readings(proposed)["pt.sessions_attended"] == 10

    approved = j.approve()
    assert j.state() == "scs_trial"
    assert approved.transitions[0]["approved_by"]["role"] == "physician"
    assert approved.actor == j.staff["physician"]

    j.advance(days=7)
    procedure_record(patient=j.patient, procedure="scs_trial", performed_at=j.now, relief_pct=65)
    proposed = j.event("scs_trial_result_recorded")
    assert proposed.outcome == "proposed"
    assert readings(proposed)["scs_trial.relief_pct"] == 65
    assert j.state() == "scs_trial"
    j.approve()
    assert j.state() == "scs_implant"

    j.advance(weeks=3)
    step = j.event("implant_performed")
    assert j.state() == "scs_followup"
    kinds = [e["kind"] for e in step.effects]
    assert "create_task" in kinds
    assert "notify" in kinds

    # The log tells the whole story, in order, each step explained.
    ladder = [
        (s.event, t["source"], t["target"])
        for s in PathwayStep.objects.filter(enrolment=j.enrolment).order_by("id")
        for t in s.transitions
        if t["track"] == "ladder" and not t["internal"]
    ]
    assert ladder == [
        ("intake_completed", "intake", "conventional"),
        ("conventional_review_due", "conventional", "interventional_review"),
        ("neuromodulation_referred", "interventional_review", "psych_evaluation"),
        ("psych_evaluation_recorded", "psych_evaluation", "neuromodulation_candidate"),
        ("approve", "neuromodulation_candidate", "scs_trial"),
        ("approve", "scs_trial", "scs_implant"),
        ("implant_performed", "scs_implant", "scs_followup"),
    ]
    for step in PathwayStep.objects.filter(enrolment=j.enrolment, event="approve"):
        assert step.transitions[0]["proposal_id"]
        assert step.explanation["checks"][0]["result"] is True

    j.run_effects()
    assert CareTask.objects.filter(enrolment=j.enrolment, discipline="physician").exists()
    assert Message.objects.filter(patient=j.patient, to_staff__isnull=True).exists()


def test_intrathecal_branch_to_its_first_refill_reminder(journey: Journey) -> None:
    j = journey
    through_conventional_care(j)
    neuromodulation_candidate(j)
    j.event("it_trial_requested", role="physician")
    j.approve()
    assert j.state() == "it_trial"
    j.advance(days=3)
    procedure_record(patient=j.patient, procedure="it_trial", performed_at=j.now, relief_pct=55)
    status_record(
        patient=j.patient, code="adverse_effects_intolerable", value=False, observed_at=j.now
    )
    assert j.event("it_trial_result_recorded").outcome == "proposed"
    j.approve()
    assert j.state() == "pump_implant"
    j.advance(weeks=2)
    j.event("implant_performed")
    assert j.state() == "pump_active"
    j.run_effects()

    # The reminders follow the clinic's refill interval (version 2: a threshold in days).
    from carehub.clinics.models import ClinicThreshold

    interval = (
        ClinicThreshold.objects.filter(
            clinic_id=j.enrolment.clinic_id, pathway_key="intractable-pain",
            name="pump_refill_interval_days",
        ).values_list("value", flat=True).first()
        or 28
    )  # fmt: skip
    j.advance(days=int(interval) - 14, minutes=1)
    reminders = [s for s in j.fire_timers() if s.event == "pump_refill_notice_due"]
    assert len(reminders) == 1
    assert reminders[0].transitions[0]["internal"]
    assert j.state() == "pump_active"
    j.run_effects()
    patient_messages = Message.objects.filter(
        patient=j.patient, to_staff__isnull=True, source_effect__payload__track="ladder"
    )
    assert any("refill" in m.body.lower() for m in patient_messages)
    assert CareTask.objects.filter(enrolment=j.enrolment, title__icontains="refill").exists()

    # No refill recorded: the missed refill raises an urgent flag for coordinator and physician.
    j.advance(days=15)
    missed = [s for s in j.fire_timers() if s.event == "pump_refill_missed"]
    assert len(missed) == 1
    j.run_effects()
    flag = Flag.objects.get(enrolment=j.enrolment, code="pump_refill_missed")
    assert flag.severity == "urgent"
    urgent = Message.objects.filter(patient=j.patient, urgency="urgent").values_list(
        "to_staff__role", flat=True
    )
    assert {"coordinator", "physician"} <= set(urgent)
