"""The demo patients' scripts, written in the story language (`carehub.demo.stories`): the
building blocks of care (conventional care, the interventional review, neuromodulation,
opioids), one script per stage of the pathway, and which patient lives which (`HISTORIES`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import partial

from carehub.accounts.models import Role
from carehub.demo.stories import Story, Trajectory
from carehub.observations.services import medication_record, psych_evaluation_record, status_record

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
        patient=story.patient,
        outcome=outcome,
        observed_at=story.now,
        recorded_by=story.by(Role.PSYCHOLOGIST),
    )
    story.event("psych_evaluation_recorded", Role.PSYCHOLOGIST)


def _opioids(story: Story, dose: float) -> None:
    story.event("opioid_started", Role.PHYSICIAN)
    medication_record(
        patient=story.patient,
        drug="oxycodone",
        daily_dose=dose,
        unit="mg",
        observed_at=story.now,
        recorded_by=story.by(Role.PHARMACIST),
    )
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


def _stops_here(story: Story, here: bool) -> bool:
    """A story that stops at this stage (`here`) lives on to its end."""
    if here:
        story.until(story.end)
    return here


def _performed(story: Story, event: str, *, weeks: int) -> None:
    """The procedure booked is done `weeks` later; the story lives on to its end."""
    story.wait(weeks=weeks)
    story.event(event, Role.PHYSICIAN)
    story.until(story.end)


def _blocks(story: Story, *, upto: str) -> None:
    story.habits.trajectories = {
        "peg": _no_improvement(8.0)
        if upto != "rfa_followup"
        else [(0, 8.0), (90, 7.7), (130, 7.5), (150, 4.8), (200, 3.9)]
    }
    story.intake(peg=8.0, phq9=7, gad7=5, pain_years=6, failed=["gabapentinoid", "snri", "nsaid"])
    _to_interventional_review(story)
    story.wait(days=3)
    story.event("mbb_requested", Role.PHYSICIAN)
    story.approve()
    if _stops_here(story, upto == "mbb1"):
        return
    story.wait(weeks=2)
    story.procedure("mbb1", 85, "mbb1_result_recorded")
    story.approve()
    if _stops_here(story, upto == "mbb2"):
        return
    story.wait(weeks=2)
    story.procedure("mbb2", 90, "mbb2_result_recorded")
    story.approve()
    if _stops_here(story, upto == "rfa"):
        return
    _performed(story, "rfa_performed", weeks=3)


def injection(story: Story) -> None:
    """An epidural steroid injection approved, waiting to be done."""
    story.habits.trajectories = {"peg": _no_improvement(7.2)}
    story.intake(peg=7.2, phq9=8, gad7=7, pain_years=2, failed=["nsaid", "gabapentinoid"])
    _procedure_approved(story, "esi_requested")


def nerve_block(story: Story) -> None:
    story.habits.trajectories = {"peg": _no_improvement(6.9)}
    story.intake(peg=6.9, phq9=7, gad7=6, pain_years=3, failed=["nsaid", "tca"])
    _procedure_approved(story, "nerve_block_requested")


def _procedure_approved(story: Story, requested: str) -> None:
    """Reviewed, a procedure requested two days later and approved."""
    _to_interventional_review(story)
    story.wait(days=2)
    story.event(requested, Role.PHYSICIAN)
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
    if _stops_here(story, upto == "proposed"):
        return
    story.approve()
    if _stops_here(story, upto == "scs_implant"):
        return
    _performed(story, "implant_performed", weeks=3)


def _pump(story: Story, *, upto: str) -> None:
    story.habits.trajectories = {"peg": _no_improvement(8.8), "trial_diary": [(0, 5)]}
    story.intake(
        peg=8.8, phq9=10, gad7=8, pain_years=11, failed=["gabapentinoid", "snri", "opioid"]
    )
    _opioids(story, dose=40)
    _neuromodulation_candidate(story)
    story.event("it_trial_requested", Role.PHYSICIAN)
    story.approve()
    if _stops_here(story, upto == "it_trial"):
        return
    story.wait(days=3)
    status_record(
        patient=story.patient,
        code="adverse_effects_intolerable",
        value=False,
        observed_at=story.now,
        recorded_by=story.by(Role.PHYSICIAN),
    )
    story.procedure("it_trial", 60, "it_trial_result_recorded")
    story.approve()
    if _stops_here(story, upto == "pump_implant"):
        return
    story.wait(weeks=2)
    story.event("implant_performed", Role.PHYSICIAN)
    story.wait(days=10)
    story.until(story.end)


# Stories that stop at a stage of a longer one.
after_ablation = partial(_blocks, upto="rfa_followup")
first_block = partial(_blocks, upto="mbb1")
second_block = partial(_blocks, upto="mbb2")
ablation_booked = partial(_blocks, upto="rfa")
stimulator_implanted = partial(_trial_then_implant, upto="scs_followup")
implant_booked = partial(_trial_then_implant, upto="scs_implant")
# The trial worked; the implant waits for the physician's approval.
implant_proposed = partial(_trial_then_implant, upto="proposed")
pump_patient = partial(_pump, upto="pump_active")
pump_trial = partial(_pump, upto="it_trial")
pump_booked = partial(_pump, upto="pump_implant")

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
