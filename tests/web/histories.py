"""Patients at known stages of the intractable-pain pathway for the web UI's tests, built with
the services a clinic uses (observations, events, approvals, timers) at times in the past.

Kept here rather than reusing the demo's scripted histories, which change with the demo."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from carehub.accounts.models import Role, User
from carehub.core import clock
from carehub.observations.services import (
    conservative_care_start_record,
    failed_treatment_record,
    pain_onset_record,
    score_record,
    session_record,
    status_record,
)
from carehub.pathways.models import Enrolment
from carehub.pathways.scheduler import enrolment_timers_fire
from carehub.pathways.services import enrolment_start, pathway_dispatch
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
        """Let time pass; the pathway's timers falling due meanwhile fire at their due time."""
        self.now += timedelta(**delta)
        if self.enrolment is not None:
            enrolment_timers_fire(enrolment_id=self.enrolment.pk, until=self.now)

    def intake(
        self, *, peg: float, phq9: int, gad7: int, pain_years: int, failed: list[str]
    ) -> None:
        patient, by = self.patient, self.by()
        pain_onset_record(
            patient=patient, onset=self.now.date() - timedelta(days=365 * pain_years),
            recorded_by=by,
        )  # fmt: skip
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
        return pathway_dispatch(
            enrolment_id=self.enrolment.pk, event=name, user=self.by(role), at=self.now,
            idempotency_key=f"test:{self.patient.mrn}:{self.counter}",
        ).outcome  # fmt: skip

    def weekly_peg(self, scores: list[float]) -> None:
        for score in scores:
            self.wait(weeks=1)
            score_record(
                patient=self.patient, instrument="peg", score=score, observed_at=self.now,
                source="patient",
            )  # fmt: skip

    def sessions(self, discipline: str, count: int, role: str, event: str) -> None:
        for n in range(count):
            session_record(
                patient=self.patient, discipline=discipline, attended=n % 7 != 3,
                observed_at=self.now - timedelta(days=3 * (count - n)), recorded_by=self.by(role),
            )  # fmt: skip
        self.event(event, role)


def _conventional(story: Story, *, peg: list[float]) -> None:
    story.event("intake_completed")
    story.event("pt_started", Role.PHYSICAL_THERAPIST)
    story.sessions("pt", 10, Role.PHYSICAL_THERAPIST, "pt_session_logged")
    story.weekly_peg(peg)


def intake_only(story: Story) -> None:
    """Baselines recorded, intake not yet completed."""
    story.intake(peg=6.7, phq9=11, gad7=8, pain_years=1, failed=["nsaid", "snri"])


def early_conventional(story: Story) -> None:
    """Five weeks into conventional care, physical therapy and CBT started."""
    story.intake(peg=7.3, phq9=12, gad7=9, pain_years=3, failed=["gabapentinoid", "tca", "nsaid"])
    _conventional(story, peg=[7.3, 7.0, 6.8, 6.1, 6.0])
    story.event("cbt_started", Role.PSYCHOLOGIST)
    story.sessions("cbt", 4, Role.PSYCHOLOGIST, "cbt_session_logged")


def block_proposed(story: Story) -> None:
    """Failed conventional care; a medial branch block waits for the physician's approval."""
    story.intake(peg=7.8, phq9=9, gad7=6, pain_years=4, failed=["gabapentinoid", "snri"])
    _conventional(story, peg=[7.5, 7.2, 7.4, 7.0, 7.1, 6.9, 7.2, 7.0, 6.8, 7.1, 7.0, 6.9])
    story.wait(hours=2)  # the 12-week review fires
    story.event("mbb_requested", Role.PHYSICIAN)


def build(
    patient: Patient, staff: dict[str, User], history: Callable[[Story], None], days_ago: int
) -> Enrolment:
    story = Story(patient=patient, staff=staff, now=clock.now() - timedelta(days=days_ago))
    history(story)
    assert story.enrolment is not None
    return story.enrolment
