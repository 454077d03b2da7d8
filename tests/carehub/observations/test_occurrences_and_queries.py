"""Occurrences for `count()` / `days_since()`, guards over real facts, and query counts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from carehub.observations import services
from carehub.observations.selectors import (
    facts_for_patient,
    mme_breakdown,
    observation_history,
    occurrences_for_patient,
)
from carehub.patients.models import Patient
from tests.carehub.observations.conftest import NOW, days_ago, weeks_ago
from workflows.expressions import Vocabulary, compile_expression
from workflows.facts import STANDARD_FACTS

pytestmark = pytest.mark.django_db


def test_occurrences_are_procedures_by_code_and_occurrence_statuses(patient: Patient) -> None:
    for days in (400, 200, 30):
        services.procedure_record(patient=patient, procedure="esi", performed_at=days_ago(days))
    block = services.procedure_record(patient=patient, procedure="mbb1", performed_at=days_ago(5))
    services.procedure_result_record(procedure=block, relief_pct=80, assessed_at=days_ago(4))
    services.status_record(
        patient=patient, code="pdmp_checked", value=None, observed_at=days_ago(9)
    )
    services.status_record(
        patient=patient, code="naloxone_offered", value=True, observed_at=days_ago(9)
    )
    services.session_record(patient=patient, discipline="pt", attended=True, observed_at=NOW)

    occurrences = occurrences_for_patient(patient=patient)
    assert occurrences == {
        "esi": (days_ago(400), days_ago(200), days_ago(30)),
        "mbb1": (days_ago(5),),  # the block and its result are one procedure
        "pdmp_checked": (days_ago(9),),
    }


def test_withdrawn_procedures_do_not_occur(patient: Patient) -> None:
    wrong = services.procedure_record(patient=patient, procedure="esi", performed_at=days_ago(3))
    services.observation_withdraw(observation=wrong, reason="Booked, not performed")
    assert occurrences_for_patient(patient=patient) == {}


@dataclass
class GuardContext:
    """What the engine shows a guard, built from the observation store's output."""

    facts: dict[str, Any]
    events: dict[str, tuple[datetime, ...]]
    now: datetime = NOW
    track: str = "ladder"
    states: dict[str, str] = field(default_factory=dict)

    def fact(self, name: str) -> Any:
        return self.facts.get(name)

    def threshold(self, name: str) -> tuple[Any, str]:
        raise KeyError(name)

    def state_of(self, track: str) -> str:
        return self.states[track]

    def time_in_state(self, track: str) -> timedelta:
        return timedelta(0)

    def occurrences(self, kind: str) -> Sequence[datetime]:
        return self.events.get(kind, ())


def guard(patient: Patient, source: str, now: datetime = NOW) -> bool | None:
    vocabulary = Vocabulary(
        facts=frozenset(STANDARD_FACTS), thresholds=frozenset(), tracks={"ladder": frozenset()}
    )
    expression, problems = compile_expression(source, vocabulary)
    assert problems == []
    assert expression is not None
    context = GuardContext(
        facts=facts_for_patient(patient=patient, now=now),
        events=occurrences_for_patient(patient=patient),
        now=now,
    )
    return expression.evaluate(context).result


def test_guards_read_rolling_windows_and_facts(patient: Patient) -> None:
    for days in (400, 200, 100, 30):
        services.procedure_record(
            patient=patient, procedure="esi", performed_at=days_ago(days), relief_pct=60
        )
    assert guard(patient, "count('esi', days=365) == 3") is True
    assert guard(patient, "count('esi', weeks=5) == 1") is True
    assert guard(patient, "days_since('esi') == 30") is True
    assert guard(patient, "count('rfa', days=365) == 0") is True
    assert guard(patient, "days_since('rfa') > 180") is None  # never done: unknown
    # Frequency cap a year on, when the 400- and 200-day-old injections have dropped out.
    assert guard(patient, "count('esi', days=365) < 4", now=NOW + timedelta(days=200)) is True


def test_guards_over_intake_facts(patient: Patient) -> None:
    entry = "pain.months >= 6 and failed_treatment_classes >= 2"
    assert guard(patient, entry) is False  # no failed class yet: false whatever the onset
    for treatment_class in ("nsaid", "snri"):
        services.failed_treatment_record(
            patient=patient,
            treatment_class=treatment_class,
            reason="insufficient_effect",
            observed_at=weeks_ago(3),
        )
    assert guard(patient, entry) is None  # onset unknown
    onset = services.pain_onset_record(patient=patient, onset=date(2025, 10, 1))
    assert guard(patient, entry) is False  # 5 months
    services.pain_onset_record(patient=patient, onset=date(2025, 6, 1), corrects=onset)
    assert guard(patient, entry) is True  # 9 months


def test_guards_over_opioid_safety_facts(patient: Patient) -> None:
    naloxone_due = "mme.daily >= 50 and not naloxone.offered"
    services.medication_record(
        patient=patient, drug="oxycodone", daily_dose=40, unit="mg", observed_at=weeks_ago(2)
    )
    assert guard(patient, naloxone_due) is None  # not yet known whether naloxone was offered
    services.status_record(
        patient=patient, code="naloxone_offered", value=False, observed_at=weeks_ago(2)
    )
    assert guard(patient, naloxone_due) is True
    services.status_record(
        patient=patient, code="naloxone_offered", value=True, observed_at=weeks_ago(1)
    )
    assert guard(patient, naloxone_due) is False


def test_history_lists_current_observations_newest_first(patient: Patient) -> None:
    first = services.score_record(
        patient=patient, instrument="nrs", score=7, observed_at=days_ago(9)
    )
    typo = services.score_record(
        patient=patient, instrument="nrs", score=1, observed_at=days_ago(2)
    )
    fixed = services.score_record(
        patient=patient, instrument="nrs", score=4, observed_at=days_ago(2), corrects=typo
    )
    services.session_record(patient=patient, discipline="pt", attended=True, observed_at=NOW)
    assert list(observation_history(patient=patient, kind="score")) == [fixed, first]


# --- query counts --------------------------------------------------------------------------------


def record_history(patient: Patient, size: int) -> None:
    """`size` observations of every kind, spread over the past year, with corrections."""
    for n in range(size):
        at = NOW - timedelta(days=365 * (n + 1) / (size + 1))
        services.score_record(
            patient=patient, instrument=("peg", "phq9", "psfs")[n % 3], score=5, observed_at=at
        )
        services.procedure_record(
            patient=patient, procedure=("esi", "mbb1")[n % 2], performed_at=at, relief_pct=50
        )
        services.session_record(patient=patient, discipline="pt", attended=True, observed_at=at)
        services.medication_record(
            patient=patient,
            drug=("oxycodone", "lorazepam")[n % 2],
            daily_dose=n,
            unit="mg",
            observed_at=at,
        )
        services.status_record(patient=patient, code="pdmp_checked", value=None, observed_at=at)
        wrong = services.status_record(
            patient=patient, code="naloxone_offered", value=n % 2 == 0, observed_at=at
        )
        services.status_record(
            patient=patient, code="naloxone_offered", value=True, observed_at=at, corrects=wrong
        )
        services.failed_treatment_record(
            patient=patient,
            treatment_class=("nsaid", "tca")[n % 2],
            reason="insufficient_effect",
            observed_at=at,
        )
    services.pain_onset_record(patient=patient, onset=date(2024, 1, 1))
    services.conservative_care_start_record(patient=patient, started=date(2025, 1, 1))
    services.psych_evaluation_record(patient=patient, outcome="cleared", observed_at=NOW)


@pytest.mark.parametrize("size", [5, 50])
def test_selectors_run_one_query_whatever_the_history(
    patient: Patient, size: int, django_assert_num_queries: Any
) -> None:
    record_history(patient, size)
    with django_assert_num_queries(1):
        facts = facts_for_patient(patient=patient, now=NOW)
    assert facts["pt.sessions_attended"] == size
    assert facts["failed_treatment_classes"] == 2
    with django_assert_num_queries(1):
        occurrences = occurrences_for_patient(patient=patient)
    assert len(occurrences["pdmp_checked"]) == size
    with django_assert_num_queries(1):
        mme_breakdown(patient=patient, now=NOW)


def test_a_snapshot_reads_facts_and_occurrences_in_one_query(
    patient: Patient, django_assert_num_queries: Any
) -> None:
    """What `facts_for_patient` and `occurrences_for_patient` give, from one read; at an
    earlier `now`, later rows still count as occurrences (as there) but not as facts."""
    from carehub.observations.selectors import facts_and_occurrences_for_patient

    services.score_record(patient=patient, instrument="peg", score=8, observed_at=weeks_ago(8))
    services.score_record(patient=patient, instrument="peg", score=3, observed_at=weeks_ago(1))
    services.procedure_record(patient=patient, procedure="esi", performed_at=days_ago(30))
    block = services.procedure_record(patient=patient, procedure="mbb1", performed_at=days_ago(5))
    services.procedure_result_record(procedure=block, relief_pct=80, assessed_at=days_ago(4))
    services.status_record(
        patient=patient, code="pdmp_checked", value=None, observed_at=days_ago(9)
    )
    services.session_record(patient=patient, discipline="pt", attended=True, observed_at=NOW)
    with django_assert_num_queries(1):
        facts, occurrences = facts_and_occurrences_for_patient(patient=patient, now=NOW)
    assert facts == facts_for_patient(patient=patient, now=NOW)
    assert occurrences == occurrences_for_patient(patient=patient)
    earlier = NOW - timedelta(days=6)
    assert facts_and_occurrences_for_patient(patient=patient, now=earlier)[0] == (
        facts_for_patient(patient=patient, now=earlier)
    )
