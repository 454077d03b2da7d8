"""Care histories for the demo patients: each patient is taken through the intractable-pain
pathway with the same services a clinic uses (observations, events, approvals, timers), with
times in the past, so that the demo shows patients at every stage with months of history."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from carehub.accounts.models import Role, User
from carehub.core import clock
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
from carehub.pathways.models import Enrolment, Proposal, ProposalStatus
from carehub.pathways.scheduler import enrolment_timers_fire
from carehub.pathways.services import enrolment_start, pathway_dispatch, proposal_approve
from carehub.patients.models import Patient

PATHWAY = "intractable-pain"


@dataclass
class Story:
    patient: Patient
    staff: dict[str, User]
    now: datetime
    enrolment: Enrolment | None = None
    counter: int = 0

    def by(self, role: str = Role.COORDINATOR) -> User:
        return self.staff[role]

    def wait(self, **delta: float) -> None:
        """Let time pass; the pathway's timers that fall due meanwhile fire at their due time."""
        self.now += timedelta(**delta)
        if self.enrolment is not None:
            enrolment_timers_fire(enrolment_id=self.enrolment.pk, until=self.now)

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
            patient=patient, definition_key=PATHWAY, started_by=by, at=self.now
        )

    def event(self, name: str, role: str = Role.COORDINATOR) -> str:
        assert self.enrolment is not None
        self.counter += 1
        result = pathway_dispatch(
            enrolment_id=self.enrolment.pk, event=name, user=self.by(role), at=self.now,
            idempotency_key=f"demo:{self.patient.mrn}:{self.counter}",
        )  # fmt: skip
        return result.outcome

    def approve(self) -> None:
        assert self.enrolment is not None
        proposal = Proposal.objects.get(enrolment=self.enrolment, status=ProposalStatus.PENDING)
        self.counter += 1
        proposal_approve(
            proposal=proposal, user=self.by(Role.PHYSICIAN),
            idempotency_key=f"demo:{self.patient.mrn}:{self.counter}",
        )  # fmt: skip

    def weekly_peg(self, scores: list[float]) -> None:
        for score in scores:
            self.wait(weeks=1)
            score_record(
                patient=self.patient, instrument="peg", score=score, observed_at=self.now,
                source="patient",
            )  # fmt: skip

    def pt_sessions(self, count: int) -> None:
        self.event("pt_started", Role.PHYSICAL_THERAPIST)
        for n in range(count):
            session_record(
                patient=self.patient, discipline="pt", attended=n % 7 != 3,
                observed_at=self.now - timedelta(days=3 * (count - n)),
                recorded_by=self.by(Role.PHYSICAL_THERAPIST),
            )  # fmt: skip
        self.event("pt_session_logged", Role.PHYSICAL_THERAPIST)

    def procedure(self, code: str, relief: float, event: str, weeks: float | None = None) -> None:
        procedure_record(
            patient=self.patient, procedure=code, performed_at=self.now, relief_pct=relief,
            relief_weeks=weeks, recorded_by=self.by(Role.PHYSICIAN),
        )  # fmt: skip
        self.event(event, Role.PHYSICIAN)


def _conventional(story: Story, *, peg: list[float]) -> None:
    story.event("intake_completed")
    story.pt_sessions(10)
    story.weekly_peg(peg)


def _to_interventional_review(story: Story) -> None:
    _conventional(story, peg=[7.5, 7.2, 7.4, 7.0, 7.1, 6.9, 7.2, 7.0, 6.8, 7.1, 7.0, 6.9])
    story.wait(hours=2)  # the 12-week review fires


def intake_only(story: Story) -> None:
    """Baselines recorded, intake not yet completed: waiting on the coordinator."""
    story.intake(peg=6.7, phq9=11, gad7=8, pain_years=1, failed=["nsaid", "snri"])


def early_conventional(story: Story) -> None:
    story.intake(peg=7.3, phq9=12, gad7=9, pain_years=3, failed=["gabapentinoid", "tca", "nsaid"])
    _conventional(story, peg=[7.3, 7.0, 6.8, 6.1, 6.0])
    story.event("cbt_started", Role.PSYCHOLOGIST)
    for n in range(4):
        session_record(
            patient=story.patient, discipline="cbt", attended=True,
            observed_at=story.now - timedelta(weeks=4 - n), recorded_by=story.by(Role.PSYCHOLOGIST),
        )  # fmt: skip
    story.event("cbt_session_logged", Role.PSYCHOLOGIST)


def block_proposed(story: Story) -> None:
    """Failed conventional care; a medial branch block waits for the physician's approval."""
    story.intake(peg=7.8, phq9=9, gad7=6, pain_years=4, failed=["gabapentinoid", "snri"])
    _to_interventional_review(story)
    story.event("mbb_requested", Role.PHYSICIAN)


def after_ablation(story: Story) -> None:
    story.intake(peg=8.0, phq9=7, gad7=5, pain_years=6, failed=["gabapentinoid", "snri", "nsaid"])
    _to_interventional_review(story)
    story.event("mbb_requested", Role.PHYSICIAN)
    story.approve()
    story.wait(weeks=2)
    story.procedure("mbb1", 85, "mbb1_result_recorded")
    story.approve()
    story.wait(weeks=2)
    story.procedure("mbb2", 90, "mbb2_result_recorded")
    story.approve()
    story.wait(weeks=3)
    story.event("rfa_performed", Role.PHYSICIAN)
    story.weekly_peg([5.5, 4.8, 4.2, 4.0, 3.9, 3.8])


def psych_deferred(story: Story) -> None:
    story.intake(peg=7.6, phq9=16, gad7=12, pain_years=5, failed=["gabapentinoid", "tca", "snri"])
    _to_interventional_review(story)
    story.event("neuromodulation_referred", Role.PHYSICIAN)
    story.wait(weeks=3)
    psych_evaluation_record(
        patient=story.patient, outcome="deferred_pending_treatment", observed_at=story.now,
        recorded_by=story.by(Role.PSYCHOLOGIST),
    )  # fmt: skip
    story.event("psych_evaluation_recorded", Role.PSYCHOLOGIST)


def _neuromodulation_candidate(story: Story) -> None:
    _to_interventional_review(story)
    story.event("neuromodulation_referred", Role.PHYSICIAN)
    story.wait(weeks=3)
    psych_evaluation_record(
        patient=story.patient, outcome="cleared", observed_at=story.now,
        recorded_by=story.by(Role.PSYCHOLOGIST),
    )  # fmt: skip
    story.event("psych_evaluation_recorded", Role.PSYCHOLOGIST)


def stimulator_trial(story: Story) -> None:
    story.intake(peg=8.2, phq9=8, gad7=7, pain_years=7, failed=["gabapentinoid", "snri", "opioid"])
    _neuromodulation_candidate(story)
    story.event("scs_trial_requested")
    story.approve()
    story.wait(days=3)


def stimulator_implanted(story: Story) -> None:
    story.intake(peg=8.5, phq9=6, gad7=5, pain_years=9, failed=["gabapentinoid", "tca", "opioid"])
    _neuromodulation_candidate(story)
    story.event("scs_trial_requested")
    story.approve()
    story.wait(days=7)
    story.procedure("scs_trial", 70, "scs_trial_result_recorded")
    story.approve()
    story.wait(weeks=3)
    story.event("implant_performed", Role.PHYSICIAN)
    story.weekly_peg([5.0, 4.4, 4.1])


def pump_patient(story: Story) -> None:
    story.intake(
        peg=8.8, phq9=10, gad7=8, pain_years=11, failed=["gabapentinoid", "snri", "opioid"]
    )
    story.event("opioid_started", Role.PHYSICIAN)
    medication_record(
        patient=story.patient, drug="oxycodone", daily_dose=40, unit="mg", observed_at=story.now,
        recorded_by=story.by(Role.PHARMACIST),
    )  # fmt: skip
    story.event("medication_recorded", Role.PHARMACIST)
    _neuromodulation_candidate(story)
    story.event("it_trial_requested")
    story.approve()
    story.wait(days=3)
    status_record(
        patient=story.patient, code="adverse_effects_intolerable", value=False,
        observed_at=story.now, recorded_by=story.by(Role.PHYSICIAN),
    )  # fmt: skip
    story.procedure("it_trial", 60, "it_trial_result_recorded")
    story.approve()
    story.wait(weeks=2)
    story.event("implant_performed", Role.PHYSICIAN)
    story.wait(days=10)


# MRN → (history, how many days ago it starts). Each ends at or before today.
HISTORIES: dict[str, tuple[Callable[[Story], None], int]] = {
    "RP-1001": (intake_only, 2),
    "RP-1002": (early_conventional, 45),
    "RP-1003": (block_proposed, 100),
    "RP-1004": (after_ablation, 200),
    "RP-1005": (psych_deferred, 130),
    "RP-1006": (stimulator_trial, 140),
    "RP-1007": (stimulator_implanted, 190),
    "RP-1008": (pump_patient, 150),
}


def demo_history_build(*, patient: Patient, staff: dict[str, User]) -> bool:
    """Build the patient's history once; False when they are already on the pathway."""
    if Enrolment.objects.filter(patient=patient, definition_key=PATHWAY).exists():
        return False
    history = HISTORIES.get(patient.mrn)
    if history is None:
        return False
    build, days_ago = history
    build(Story(patient=patient, staff=staff, now=clock.now() - timedelta(days=days_ago)))
    return True
