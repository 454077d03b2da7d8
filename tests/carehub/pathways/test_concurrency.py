"""Two conflicting events on one pathway at the same moment: exactly one wins, the other gets a
conflict carrying the current state; never a double transition, never another error."""

from __future__ import annotations

import threading

import pytest
from django.db import connections

from carehub.core.exceptions import Conflict
from carehub.pathways.models import Enrolment, PathwayStep
from carehub.pathways.services import enrolment_start, pathway_dispatch
from carehub.patients.services import patient_register

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
