"""The caseload entries (`web_caseloadentry`) stay equal to their definition (the view
`web_caseload_source`, computed from the tables the facts come from) whatever door changes a
fact: the services, the engine's dispatch, the set-based check-in sweeps, plain ORM writes and
deletes, and two transactions changing one patient at once."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, transaction

from carehub.accounts.models import User
from carehub.checkins.models import Checkin, CheckinStatus
from carehub.checkins.services import (
    checkin_series_start,
    checkin_submit,
    checkins_close_expired,
    checkins_open_due,
)
from carehub.clinics.models import Clinic
from carehub.core import clock
from carehub.pathways.models import EnrolmentStatus, Proposal
from carehub.pathways.services import (
    enrolment_discharge,
    enrolment_pause,
    enrolment_resume,
    enrolment_start,
    pathway_dispatch,
    proposal_approve,
)
from carehub.patients.models import Patient
from carehub.patients.services import patient_update
from carehub.web.models import Attention, CaseloadEntry
from carehub.worklists.models import Flag, FlagStatus
from carehub.worklists.services import flag_raise, flag_set_status
from tests.web.conftest import register

PATHWAY = "intractable-pain"
COLUMNS = (
    "patient_id, clinic_id, family_name, given_name, in_caseload, on_active_pathway, "
    "unresolved_flags, urgent_flags, pending_proposals, oldest_open_checkin_due, "
    "latest_missed_checkin_closes, last_progress_at, attention"
)
DIFFERENCES = """
(SELECT 'stored', {c} FROM web_caseloadentry EXCEPT SELECT 'stored', {c} FROM web_caseload_source)
UNION ALL
(SELECT 'defined', {c} FROM web_caseload_source EXCEPT SELECT 'defined', {c} FROM web_caseloadentry)
""".replace("{c}", COLUMNS)


def differences() -> list[tuple[Any, ...]]:
    """Rows of the entries and of their definition that are not in the other (none: equal)."""
    with connection.cursor() as cursor:
        cursor.execute(DIFFERENCES)
        return cursor.fetchall()


def entry(patient: Patient) -> CaseloadEntry:
    return CaseloadEntry.objects.get(patient=patient)


@pytest.mark.django_db
def test_every_door_keeps_the_entries_true(
    clinic: Clinic, staff: dict[str, User], proposed: Proposal
) -> None:
    now = clock.now()
    # The engine's dispatch (the fixture's history) made an escalation wait for approval.
    assert entry(proposed.enrolment.patient).attention == Attention.APPROVAL
    assert differences() == []

    patient = register(clinic, "E-1", "Ann", "Able")  # a service: not on the caseload yet
    assert not entry(patient).in_caseload
    enrolment = enrolment_start(patient=patient, definition_key=PATHWAY)
    assert entry(patient).in_caseload
    assert entry(patient).last_progress_at is not None
    assert differences() == []

    flag = flag_raise(
        enrolment=enrolment, code="phq9_item9", severity="urgent",
        message="PHQ-9 item 9 answered 2", raised_at=now,
    )  # fmt: skip
    assert (entry(patient).urgent_flags, entry(patient).attention) == (1, Attention.URGENT)
    flag_set_status(
        flag=flag, status=FlagStatus.ACKNOWLEDGED, user=staff["physician"], note="Called her"
    )
    assert entry(patient).urgent_flags == 1  # acknowledged is not resolved
    flag_set_status(flag=flag, status=FlagStatus.RESOLVED, user=staff["physician"], outcome="Safe")
    assert (entry(patient).urgent_flags, entry(patient).attention) == (0, Attention.NONE)
    assert differences() == []

    # Check-ins through the set-based sweeps: opened when due, missed when their window passed,
    # the next one answered through the submit service.
    series = checkin_series_start(
        enrolment=enrolment, series="peg", instrument="peg", every=timedelta(weeks=1),
        at=now - timedelta(days=20),
    )  # fmt: skip

    def due() -> Checkin:
        checkin = series.checkins.get(status=CheckinStatus.SCHEDULED)
        checkins_open_due(now=checkin.due_at)
        checkin.refresh_from_db()
        return checkin

    missed = due()
    assert entry(patient).oldest_open_checkin_due == missed.due_at
    assert differences() == []
    checkins_close_expired(now=missed.closes_at + timedelta(seconds=1))
    assert entry(patient).oldest_open_checkin_due is None
    assert entry(patient).latest_missed_checkin_closes == missed.closes_at
    assert differences() == []
    answered = due()
    checkin_submit(
        checkin_id=answered.pk, answers={"pain": 5, "enjoyment": 5, "activity": 5},
        at=answered.due_at,
    )  # fmt: skip
    assert entry(patient).oldest_open_checkin_due is None
    assert differences() == []

    # The pathway paused, resumed, an escalation approved, the patient renamed.
    enrolment_pause(enrolment_id=enrolment.pk, reason="Hospital stay")
    assert not entry(patient).on_active_pathway
    assert entry(patient).in_caseload
    enrolment_resume(enrolment_id=enrolment.pk)
    assert entry(patient).on_active_pathway
    proposal_approve(proposal=proposed, user=staff["physician"], idempotency_key="approve-1")
    assert entry(proposed.enrolment.patient).pending_proposals == 0
    patient_update(patient=patient, family_name="Abbott")
    assert entry(patient).family_name == "Abbott"
    assert differences() == []

    # Plain ORM writes, set-based and row by row, and deletes.
    Checkin.objects.filter(patient=patient).update(status=CheckinStatus.CANCELLED)
    assert entry(patient).oldest_open_checkin_due is None
    warning = Flag.objects.create(
        clinic=clinic, patient=patient, code="test", severity="warning", message="Test",
        raised_at=now,
    )  # fmt: skip
    assert entry(patient).unresolved_flags == 1
    Flag.objects.filter(pk=warning.pk).delete()
    assert entry(patient).unresolved_flags == 0
    assert differences() == []

    # Discharged: off the caseload.
    enrolment.refresh_from_db()
    enrolment_discharge(
        enrolment=enrolment, reason="Goals met", idempotency_key="discharge-1",
        user=staff["physician"],
    )  # fmt: skip
    enrolment.refresh_from_db()
    assert enrolment.status == EnrolmentStatus.COMPLETED
    assert not entry(patient).in_caseload
    assert differences() == []


@pytest.mark.django_db(transaction=True)
def test_two_transactions_changing_one_patient_both_count(
    clinic: Clinic, staff: dict[str, User]
) -> None:
    """The second transaction waits for the first's lock on the entry and then recomputes
    from what the first committed: neither change is lost."""
    patient = register(clinic, "E-2", "Bob", "Baker")
    enrolment = enrolment_start(patient=patient, definition_key=PATHWAY)
    first_wrote = threading.Event()
    errors: list[BaseException] = []

    def raise_flag(code: str, hold: bool) -> None:
        try:
            with transaction.atomic():
                Flag.objects.create(
                    clinic=clinic, patient=patient, enrolment=enrolment, code=code,
                    severity="warning", message=code, raised_at=clock.now(),
                )  # fmt: skip
                if hold:
                    first_wrote.set()
                    threading.Event().wait(1.0)  # the second is blocked meanwhile
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    first = threading.Thread(target=raise_flag, args=("first", True))
    first.start()
    assert first_wrote.wait(10)
    second = threading.Thread(target=raise_flag, args=("second", False))
    second.start()
    first.join(20)
    second.join(20)
    assert errors == []
    assert entry(patient).unresolved_flags == 2
    assert differences() == []


@pytest.mark.django_db
def test_a_transition_moves_progress_forward_and_never_back(clinic: Clinic) -> None:
    """A step changes one fact, the latest progress of an active enrolment, and only forward:
    its trigger moves that column alone, and the entries still equal their definition."""
    patient = register(clinic, "E-3", "Cy", "Cole")
    now = clock.now()
    enrolment = enrolment_start(patient=patient, definition_key=PATHWAY, at=now)
    assert entry(patient).last_progress_at == now

    later = now + timedelta(days=3)
    step = pathway_dispatch(
        enrolment_id=enrolment.pk, event="pt_started", idempotency_key="pt-1", at=later
    ).step
    assert step.outcome == "transitioned"
    assert entry(patient).last_progress_at == later
    assert differences() == []

    # A step recorded with an earlier time (a late report) leaves the latest progress alone.
    earlier = now + timedelta(days=1)
    step = pathway_dispatch(
        enrolment_id=enrolment.pk, event="pt_completed", idempotency_key="pt-2", at=earlier
    ).step
    assert step.outcome == "transitioned"
    assert entry(patient).last_progress_at == later
    assert differences() == []

    # Paused, its steps no longer count; resumed, they do again.
    enrolment_pause(enrolment_id=enrolment.pk, reason="Hospital stay")
    assert entry(patient).last_progress_at is None
    assert differences() == []
    enrolment_resume(enrolment_id=enrolment.pk)
    assert entry(patient).last_progress_at == later
    assert differences() == []
