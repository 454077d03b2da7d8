"""Two conflicting events on one pathway at the same moment: exactly one wins, the other gets a
conflict carrying the current state; never a double transition, never another error."""

from __future__ import annotations

import threading

import pytest
from django.db import connections

from carehub.core.exceptions import Conflict, NotFound
from carehub.pathways.models import Enrolment, EnrolmentStatus, PathwayStep
from carehub.pathways.services import (
    enrolment_pause,
    enrolment_resume,
    enrolment_start,
    pathway_dispatch,
)
from carehub.patients.services import patient_register
from tests.carehub.pathways.locking import locked_elsewhere

TRIALS = 40


def send(enrolment: Enrolment, key: str, barrier: threading.Barrier, outcomes: list[str],
         errors: list[BaseException]) -> None:  # fmt: skip
    try:
        barrier.wait()
        result = pathway_dispatch(
            enrolment_id=enrolment.pk, event="discharge", idempotency_key=key,
            expected_version=enrolment.version,
        )  # fmt: skip
        outcomes.append(result.outcome)
    except Conflict as exc:
        assert exc.extra["current"]["enrolment"] == str(enrolment.public_id)
        outcomes.append("conflict")
    except BaseException as exc:  # any other error fails the test
        errors.append(exc)
    finally:
        connections.close_all()


@pytest.mark.django_db(transaction=True)
def test_conflicting_events_exactly_one_wins(clinic, staff) -> None:  # type: ignore[no-untyped-def]
    for trial in range(TRIALS):
        patient = patient_register(
            clinic=clinic, mrn=f"C-{trial}", given_name="C", family_name=str(trial), time_zone="UTC"
        )
        enrolment = enrolment_start(patient=patient, definition_key="stepped-care-example")
        barrier = threading.Barrier(2)
        outcomes: list[str] = []
        errors: list[BaseException] = []
        threads = [
            threading.Thread(
                target=send, args=(enrolment, f"{trial}-{n}", barrier, outcomes, errors)
            )
            for n in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert sorted(outcomes) == ["conflict", "transitioned"], (trial, outcomes)
        moves = PathwayStep.objects.filter(enrolment=enrolment, event="discharge")
        assert moves.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_pause_while_another_change_holds_the_row_is_a_conflict_carrying_the_state(
    clinic,  # type: ignore[no-untyped-def]
) -> None:
    """Pause and resume take the dispatch's lock (NOWAIT): no wait, a Conflict with the current
    state, nothing written."""
    patient = patient_register(
        clinic=clinic, mrn="H-1", given_name="H", family_name="One", time_zone="UTC"
    )
    enrolment = enrolment_start(patient=patient, definition_key="stepped-care-example")
    with locked_elsewhere(enrolment):
        steps = PathwayStep.objects.filter(enrolment=enrolment).count()
        with pytest.raises(Conflict) as refused:
            enrolment_pause(enrolment_id=enrolment.pk, reason="Hospital stay")
        current = refused.value.extra["current"]
        assert (current["enrolment"], current["version"], current["status"]) == (
            str(enrolment.public_id),
            enrolment.version,
            EnrolmentStatus.ACTIVE,
        )
        assert PathwayStep.objects.filter(enrolment=enrolment).count() == steps
    paused = enrolment_pause(enrolment_id=enrolment.pk, reason="Hospital stay")
    assert (paused.status, paused.version) == (EnrolmentStatus.PAUSED, enrolment.version + 1)
    step = PathwayStep.objects.filter(enrolment=enrolment).order_by("-pk").first()
    assert step is not None
    assert (step.event, step.sequence, step.explanation["summary"]) == (
        "paused",
        paused.version,
        "Paused: Hospital stay",
    )
    resumed = enrolment_resume(enrolment_id=enrolment.pk)
    assert (resumed.status, resumed.version) == (EnrolmentStatus.ACTIVE, enrolment.version + 2)
    with pytest.raises(NotFound):
        enrolment_resume(enrolment_id=enrolment.pk + 10_000)
