"""A sandbox clinic's test clock through the API (ADR 0024): advancing it 20 weeks runs the
real scheduler's code paths for that clinic alone, in order, on a real Celery worker (timers
fire, check-ins open and are missed, reminders go out through the recording backends), while a
production clinic whose timers are also due by the wall clock sees nothing happen."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from datetime import time as dt_time
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.db import IntegrityError, transaction
from rest_framework.test import APIClient

from carehub.accounts.models import STAFF_ROLES, Role, User
from carehub.accounts.services import staff_create
from carehub.audit.models import AuditEvent
from carehub.checkins.models import Checkin, CheckinStatus
from carehub.clinics.clock import clinic_time
from carehub.clinics.models import Clinic
from carehub.clinics.services import clinic_create
from carehub.core import clock
from carehub.messaging.models import Message, MessageStatus, RecordedMessage
from carehub.observations.services import (
    conservative_care_start_record,
    failed_treatment_record,
    pain_onset_record,
    score_record,
    status_record,
)
from carehub.pathways.effects import effect_execute
from carehub.pathways.models import (
    EffectStatus,
    Enrolment,
    OutboxEffect,
    PathwayStep,
    PathwayTimer,
    TimerStatus,
)
from carehub.pathways.services import enrolment_start, pathway_dispatch
from carehub.patients.models import Patient
from carehub.patients.services import patient_register
from tests.api.conftest import assert_problem, new_key
from tests.support.celery_worker import purge_queue

PATHWAY = "intractable-pain"
URL = "/api/v1/clinic/test-clock"
ADVANCE = "/api/v1/clinic/test-clock/advance"

pytestmark = pytest.mark.django_db(transaction=True)


def _staff(clinic: Clinic, prefix: str) -> dict[str, User]:
    return {
        role.value: staff_create(
            clinic=clinic,
            username=f"{prefix}-{role.value}",
            role=role,
            password=None,
            email=f"{prefix}-{role.value}@example.org",
        )
        for role in Role
        if role in STAFF_ROLES
    }


def _in_conventional_care(clinic: Clinic, staff: dict[str, User], mrn: str) -> Enrolment:
    """A patient whose intake is complete (as the demo's histories record it), at the clinic's
    now: conventional care, with its 12-week review timer and weekly PEG check-ins."""
    patient = patient_register(
        clinic=clinic, mrn=mrn, given_name="Sam", family_name="Sandbox",
        time_zone="Europe/London", phone="+447700900123", email=f"{mrn.lower()}@example.org",
    )  # fmt: skip
    by = staff["coordinator"]
    now = clock.now()
    pain_onset_record(patient=patient, onset=now.date() - timedelta(days=3 * 365), recorded_by=by)
    conservative_care_start_record(
        patient=patient, started=now.date() - timedelta(days=180), recorded_by=by
    )
    for treatment in ("nsaid", "snri"):
        failed_treatment_record(
            patient=patient, treatment_class=treatment, reason="insufficient_effect",
            observed_at=now, recorded_by=by, duration_weeks=8,
        )  # fmt: skip
    for instrument, value in (("peg", 7.5), ("phq9", 9), ("gad7", 7)):
        score_record(
            patient=patient, instrument=instrument, score=value, observed_at=now,
            is_baseline=True, recorded_by=by, source="patient",
        )  # fmt: skip
    status_record(
        patient=patient, code="substance_use_active", value=False, observed_at=now,
        recorded_by=staff["psychologist"],
    )  # fmt: skip
    enrolment = enrolment_start(patient=patient, definition_key=PATHWAY, started_by=by)
    result = pathway_dispatch(
        enrolment_id=enrolment.pk, event="intake_completed", user=by, idempotency_key=f"{mrn}:i"
    )
    assert result.outcome == "transitioned"
    # What a worker does with the pathway's effects (a worker may take some first: once each).
    pending = OutboxEffect.objects.filter(enrolment=enrolment, status=EffectStatus.PENDING)
    for effect_id in pending.order_by("pk").values_list("pk", flat=True):
        effect_execute(effect_id=effect_id)
    return enrolment


def _settled(enrolment: Enrolment, timeout: float = 30) -> None:
    """Wait for the worker to finish the effects it took before the helper could."""
    deadline = time.monotonic() + timeout
    busy = OutboxEffect.objects.filter(
        enrolment=enrolment, status__in=[EffectStatus.PENDING, EffectStatus.RUNNING]
    )
    while busy.exists():
        assert time.monotonic() < deadline, list(busy.values("pk", "kind", "status"))
        time.sleep(0.2)


def _wait_until_done(client: APIClient, timeout: float = 240) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(URL).json()
        if body["advancing_to"] is None:
            return body
        time.sleep(0.5)
    raise AssertionError(f"the advance did not finish in {timeout} s: {body}")


def _ladder(enrolment: Enrolment) -> str:
    enrolment.refresh_from_db()
    return str(enrolment.configuration["ladder"]["state"])


@pytest.fixture
def sandbox(transactional_db: None) -> Clinic:
    """A sandbox whose clock starts yesterday at 08:00 in London: before the clinic's check-in
    time of day (10:00), so that a whole number of weeks later the week's check-in is still
    scheduled, whatever the hour the suite runs at."""
    london = ZoneInfo("Europe/London")
    yesterday = clock.now().astimezone(london).date() - timedelta(days=1)
    start = datetime.combine(yesterday, dt_time(8, 0), tzinfo=london)
    assert start.time() < settings.CHECKIN_SEND_TIME
    return clinic_create(
        name="Sandbox Pain Clinic", slug="sandbox", time_zone="Europe/London", sandbox=True,
        test_clock_start=start,
    )  # fmt: skip


@pytest.fixture
def production(transactional_db: None) -> Clinic:
    return clinic_create(name="Riverside", slug="riverside", time_zone="Europe/London")


@pytest.fixture
def client_for() -> Callable[[User], APIClient]:
    def make(user: User) -> APIClient:
        client = APIClient()
        client.force_authenticate(user)
        return client

    return make


def test_advancing_20_weeks_runs_the_sandbox_alone(
    sandbox: Clinic,
    production: Clinic,
    client_for: Callable[[User], APIClient],
    celery_worker_process: str,
) -> None:
    start = sandbox.test_clock_at
    assert start is not None
    wall_start = clock.now()
    sandbox_staff = _staff(sandbox, "sb")
    production_staff = _staff(production, "rp")
    with clinic_time(sandbox):
        ours = _in_conventional_care(sandbox, sandbox_staff, "SB-1")
    # The production patient started 20 weeks ago by the wall clock: its 12-week review and its
    # check-ins are all due, and nothing runs them here (no beat in this test).
    with clock.replay(clock.now() - timedelta(weeks=20)):
        theirs = _in_conventional_care(production, production_staff, "RP-1")
    _settled(ours)
    _settled(theirs)
    production_timer = PathwayTimer.objects.get(enrolment=theirs, status=TimerStatus.PENDING)
    assert production_timer.due_at < clock.now()
    production_checkins = set(
        Checkin.objects.filter(enrolment=theirs).values_list("pk", "status", "due_at")
    )
    assert any(due < clock.now() for _, _, due in production_checkins)
    assert _ladder(ours) == _ladder(theirs) == "conventional"
    timer = PathwayTimer.objects.get(enrolment=ours, status=TimerStatus.PENDING)
    assert timer.due_at > start  # on the sandbox's clock

    admin = client_for(sandbox_staff["clinic_admin"])
    response = admin.post(ADVANCE, {"by": "P6W"}, format="json", **new_key())
    assert response.status_code == 202, response.content
    assert datetime.fromisoformat(response.json()["advancing_to"]) == start + timedelta(weeks=6)
    assert _wait_until_done(admin)["last_error"] == ""
    # Up to a check-in's opening, and the patient's answers (no better than at intake), given
    # on the telephone to the physician: recorded at the sandbox's now.
    peg = (
        Checkin.objects.filter(enrolment=ours, instrument="peg", status=CheckinStatus.SCHEDULED)
        .order_by("due_at")
        .first()
    )
    assert peg is not None
    opened = peg.due_at + timedelta(hours=2)
    response = admin.post(ADVANCE, {"to": opened.isoformat()}, format="json", **new_key())
    assert response.status_code == 202, response.content
    _wait_until_done(admin)
    peg.refresh_from_db()
    assert peg.status == CheckinStatus.OPEN
    assert peg.opened_at == peg.due_at
    answered = client_for(sandbox_staff["physician"]).post(
        f"/api/v1/checkins/{peg.pk}/answers",
        {"answers": {"pain": 7, "enjoyment": 8, "activity": 7}},
        format="json",
        **new_key(),
    )
    assert answered.status_code in (200, 201), answered.content
    peg.refresh_from_db()
    assert peg.answered_at == opened
    # On to 20 weeks after the start.
    end = start + timedelta(weeks=20)
    response = admin.post(ADVANCE, {"to": end.isoformat()}, format="json", **new_key())
    assert response.status_code == 202, response.content
    done = _wait_until_done(admin)
    assert done["last_error"] == ""
    assert datetime.fromisoformat(done["now"]) == end
    sandbox.refresh_from_db()
    assert sandbox.test_clock_at == end
    assert sandbox.advance_to is None

    # The ladder escalated: the 12-week review fired at its own due time.
    timer.refresh_from_db()
    assert timer.status == TimerStatus.FIRED
    assert timer.closed_at == timer.due_at
    fired = PathwayStep.objects.get(enrolment=ours, event=timer.event)
    assert fired.at == timer.due_at
    assert _ladder(ours) == "interventional_review"
    # Weekly check-ins opened and (unanswered) were missed, each at its moment.
    checkins = Checkin.objects.filter(enrolment=ours)
    missed = checkins.filter(status=CheckinStatus.MISSED)
    assert missed.count() >= 15
    for checkin in missed:
        assert start <= checkin.opened_at <= start + timedelta(weeks=20)
        assert checkin.opened_at < checkin.closes_at
    # Requests and reminders went out, recorded by the development backends, at test time.
    sent = Message.objects.filter(patient=ours.patient, status=MessageStatus.SENT)
    assert sent.filter(purpose="checkin_request").count() >= 15
    assert sent.filter(purpose="checkin_reminder").exists()
    assert (
        RecordedMessage.objects.filter(to=ours.patient.phone).count()
        >= sent.filter(channel="sms").count()
    )
    assert all(m.sent_at is not None and m.sent_at >= start for m in sent)
    assert sent.filter(sent_at__gt=start + timedelta(weeks=10)).exists()

    # Nothing happened in the production clinic.
    production_timer.refresh_from_db()
    assert production_timer.status == TimerStatus.PENDING
    assert _ladder(theirs) == "conventional"
    assert (
        set(Checkin.objects.filter(enrolment=theirs).values_list("pk", "status", "due_at"))
        == production_checkins
    )
    assert not Message.objects.filter(clinic=production, status=MessageStatus.SENT).exists()
    # Audited, at real time.
    audits = AuditEvent.objects.filter(action="test_clock.advance", clinic=sandbox)
    assert audits.count() == 3
    assert {audit.actor for audit in audits} == {sandbox_staff["clinic_admin"]}
    assert all(wall_start <= audit.at <= clock.now() for audit in audits)


def test_the_wall_clock_scheduler_leaves_sandboxes_out(sandbox: Clinic, production: Clinic) -> None:
    from carehub.checkins.services import checkins_open_due
    from carehub.pathways.scheduler import timers_fire_due

    with clinic_time(sandbox):
        ours = _in_conventional_care(sandbox, _staff(sandbox, "sb"), "SB-1")
    with clock.replay(clock.now() - timedelta(weeks=20)):
        theirs = _in_conventional_care(production, _staff(production, "rp"), "RP-1")
    later = clock.now() + timedelta(weeks=30)
    assert timers_fire_due(now=later) == 1
    assert checkins_open_due(now=later) >= 1
    assert PathwayTimer.objects.filter(enrolment=ours, status=TimerStatus.PENDING).count() == 1
    assert not PathwayTimer.objects.filter(enrolment=theirs, status=TimerStatus.PENDING).exists()
    assert (
        not Checkin.objects.filter(enrolment=ours).exclude(status=CheckinStatus.SCHEDULED).exists()
    )
    purge_queue()


def test_one_advance_at_a_time_and_only_forward(
    sandbox: Clinic, client_for: Callable[[User], APIClient]
) -> None:
    """No worker here: the first advance waits in the queue, holding the clinic's slot."""
    purge_queue()
    staff = _staff(sandbox, "sb")
    admin = client_for(staff["clinic_admin"])
    assert_problem(admin.post(ADVANCE, {"by": "P2W"}, format="json"), 400, "invalid_input")
    too_far = admin.post(ADVANCE, {"by": "P53W"}, format="json", **new_key())
    assert_problem(too_far, 400, "invalid_input")
    backwards = admin.post(
        ADVANCE, {"to": (sandbox.test_clock_at - timedelta(days=1)).isoformat()},  # type: ignore[operator]
        format="json", **new_key(),
    )  # fmt: skip
    assert_problem(backwards, 400, "invalid_input")
    assert_problem(admin.post(ADVANCE, {"by": "P1Y"}, format="json", **new_key()), 400,
                   "invalid_input")  # fmt: skip
    both = admin.post(ADVANCE, {"by": "P1D", "to": "2030-01-01T00:00:00Z"}, format="json",
                      **new_key())  # fmt: skip
    assert_problem(both, 400, "invalid_input")
    sandbox.refresh_from_db()
    assert sandbox.advance_to is None

    key = new_key()
    first = admin.post(ADVANCE, {"by": "P1W"}, format="json", **key)
    assert first.status_code == 202, first.content
    again = admin.post(ADVANCE, {"by": "P1W"}, format="json", **key)  # the same request
    assert again.status_code == 200  # the first answer again
    assert again["Idempotent-Replayed"] == "true"
    second = admin.post(ADVANCE, {"by": "P1D"}, format="json", **new_key())
    body = assert_problem(second, 409, "advance_in_progress")
    assert datetime.fromisoformat(body["current"]["advancing_to"]) == datetime.fromisoformat(
        first.json()["advancing_to"]
    )
    # Only the clinic admin moves the clock; every member of staff sees it.
    coordinator = client_for(staff["coordinator"])
    assert_problem(
        coordinator.post(ADVANCE, {"by": "P1D"}, format="json", **new_key()), 403, "not_permitted"
    )
    assert coordinator.get(URL).json()["advancing_to"] == first.json()["advancing_to"]
    purge_queue()


def test_a_production_clinic_has_no_test_clock(
    production: Clinic, client_for: Callable[[User], APIClient]
) -> None:
    admin = client_for(_staff(production, "rp")["clinic_admin"])
    shown = admin.get(URL)
    assert shown.status_code == 200
    assert (shown.json()["sandbox"], shown.json()["now"]) == (False, None)
    assert_problem(
        admin.post(ADVANCE, {"by": "P1D"}, format="json", **new_key()), 409, "not_a_sandbox"
    )
    production.refresh_from_db()
    assert production.test_clock_at is None
    assert production.advance_to is None


def test_sandbox_or_production_is_fixed_at_creation(sandbox: Clinic, production: Clinic) -> None:
    for clinic, value in ((production, True), (sandbox, False)):
        with pytest.raises(IntegrityError), transaction.atomic():
            Clinic.objects.filter(pk=clinic.pk).update(is_sandbox=value)
    # A production clinic cannot be given a test clock either (the check constraint).
    with pytest.raises(IntegrityError), transaction.atomic():
        Clinic.objects.filter(pk=production.pk).update(
            test_clock_at=datetime(2030, 1, 1, tzinfo=UTC)
        )


def test_a_sandbox_request_runs_at_its_test_clock(
    sandbox: Clinic, client_for: Callable[[User], APIClient]
) -> None:
    """What a sandbox's staff do through the API happens at the clinic's now."""
    staff = _staff(sandbox, "sb")
    patient = patient_register(
        clinic=sandbox, mrn="SB-2", given_name="Kim", family_name="Clock", time_zone="UTC"
    )
    physician = client_for(staff["physician"])
    response = physician.post(
        f"/api/v1/patients/{patient.pk}/enrolments", {"definition_key": PATHWAY}, format="json",
        **new_key(),
    )  # fmt: skip
    assert response.status_code == 201, response.content
    enrolment = Enrolment.objects.get(patient=patient)
    assert enrolment.started_at == sandbox.test_clock_at
    assert Patient.objects.get(pk=patient.pk).clinic_id == sandbox.pk


def test_a_sandbox_s_webhooks_go_when_its_clock_passes_them(sandbox: Clinic) -> None:
    """The wall clock's sender leaves a sandbox's deliveries; an advance sends them."""
    from carehub.integrations.models import ChangeType, WebhookSubscription
    from carehub.integrations.sender import webhooks_send
    from carehub.sandbox.services import sandbox_clock_advance, sandbox_clock_advance_run
    from carehub.worklists.services import flag_raise
    from tests.support.webhook_receiver import Receiver, webhook_receiver

    purge_queue()
    patient = patient_register(
        clinic=sandbox, mrn="SB-3", given_name="Wes", family_name="Hook", time_zone="UTC"
    )
    with webhook_receiver(Receiver()) as receiver:
        subscription = WebhookSubscription.objects.create(
            clinic=sandbox, url=receiver.url, event_types=[ChangeType.FLAG_RAISED]
        )
        receiver.secret = subscription.secret
        with clinic_time(sandbox):
            flag_raise(
                enrolment=None, patient=patient, code="check", severity="warning",
                message="A flag", raised_at=clock.now(),
            )  # fmt: skip
        assert webhooks_send() == 0
        assert receiver.accepted_ids() == []
        sandbox_clock_advance(clinic_id=sandbox.pk, user=None, by=timedelta(hours=1))
        assert sandbox_clock_advance_run(clinic_id=sandbox.pk) >= 1
        assert len(receiver.accepted_ids()) == 1
        # Signed at the machine's time (the receiver's replay check allows five minutes), the
        # event itself at the test clock's (the sandbox started yesterday).
        assert all(item.verified for item in receiver.received)
        event_at = datetime.fromisoformat(receiver.received[0].body["timestamp"])
        assert event_at == sandbox.test_clock_at
        assert event_at < clock.now() - timedelta(hours=12)
    purge_queue()
