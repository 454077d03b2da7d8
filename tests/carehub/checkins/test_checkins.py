"""Check-ins on PostgreSQL: series from pathway effects, occurrences opened and closed by the
scheduler, the patient's link (hashed, single-use, never consumed by reading), red flags."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from django.utils import timezone

from carehub.accounts.models import Role, User
from carehub.accounts.services import staff_create
from carehub.checkins.models import Checkin, CheckinLink, CheckinSeries, CheckinStatus
from carehub.checkins.services import (
    checkin_series_start,
    checkin_series_stop,
    checkin_submit,
    checkins_close_expired,
    checkins_open_due,
)
from carehub.clinics.services import clinic_create
from carehub.core.logging import RedactLinkTokens
from carehub.messaging.delivery import message_send
from carehub.messaging.models import Message, MessageStatus, RecordedMessage
from carehub.observations.models import Observation
from carehub.pathways import lifecycle
from carehub.pathways.models import Enrolment
from carehub.pathways.services import enrolment_pause, enrolment_resume, enrolment_start
from carehub.patients.services import care_team_add, patient_register
from carehub.worklists.models import CareTask, Flag
from carehub.worklists.services import care_task_complete
from tests.support.gateways import link_token, patients_phone

pytestmark = pytest.mark.django_db
NY = ZoneInfo("America/New_York")


@pytest.fixture(autouse=True)
def afternoon_in_new_york() -> Iterator[None]:
    """Inside the patient's send window, whatever the time the suite runs."""
    with time_machine.travel(datetime(2026, 6, 2, 14, 0, tzinfo=NY), tick=True):
        yield


@pytest.fixture
def enrolment() -> Enrolment:
    clinic = clinic_create(name="Check-in Clinic", slug="ci", time_zone="America/New_York")
    patient = patient_register(
        clinic=clinic, mrn="CI-1", given_name="Ivy", family_name="Check",
        time_zone="America/New_York", phone="+15555550111", email="ivy@example.org",
        send_window_start=time(8), send_window_end=time(21),
    )  # fmt: skip
    for role in (Role.COORDINATOR, Role.PHYSICIAN, Role.PSYCHOLOGIST):
        user = staff_create(
            clinic=clinic,
            username=role.value,
            role=role,
            password=None,
            email=f"{role.value}@clinic.example",
        )
        care_team_add(patient=patient, staff=user)
    return enrolment_start(patient=patient, definition_key="intractable-pain")


def start(enrolment: Enrolment, instrument: str, every: timedelta, at: datetime) -> CheckinSeries:
    return checkin_series_start(
        enrolment=enrolment, series=instrument, instrument=instrument, every=every, at=at
    )


def open_one(enrolment: Enrolment, instrument: str = "peg") -> tuple[Checkin, str]:
    """A series started a week ago, its first check-in opened now; returns the link token."""
    series = start(
        enrolment,
        instrument,
        timedelta(days=14 if instrument == "phq9" else 7),
        timezone.now() - timedelta(days=15),
    )
    checkin = series.checkins.get()
    Checkin.objects.filter(pk=checkin.pk).update(
        due_at=timezone.now() - timedelta(minutes=1), closes_at=timezone.now() + timedelta(days=2)
    )
    assert checkins_open_due() == 1
    request = Message.objects.get(purpose="checkin_request", subject_key=f"checkin:{checkin.pk}")
    with patients_phone() as phone:
        assert message_send(message_id=request.pk) == "sent"
    token = link_token(phone[request.idempotency_key])
    checkin.refresh_from_db()
    return checkin, token


def test_a_series_schedules_its_first_checkin_one_interval_later_at_the_local_send_time(
    enrolment: Enrolment,
) -> None:
    started = datetime(2026, 3, 2, 15, 0, tzinfo=NY)  # a Monday afternoon
    series = start(enrolment, "peg", timedelta(weeks=1), started)
    first = series.checkins.get()
    assert first.sequence == 1
    assert first.due_at.astimezone(NY) == datetime(2026, 3, 9, 10, 0, tzinfo=NY)  # after DST
    assert first.closes_at - first.due_at == timedelta(hours=72)
    assert first.status == CheckinStatus.SCHEDULED


def test_never_more_often_than_the_recall_period(enrolment: Enrolment) -> None:
    series = start(enrolment, "phq9", timedelta(days=1), timezone.now())
    assert series.every == timedelta(days=14)


def test_opening_sends_the_request_and_plans_reminders_once(enrolment: Enrolment) -> None:
    checkin, _ = open_one(enrolment)
    assert checkin.status == CheckinStatus.OPEN
    reminders = Message.objects.filter(
        purpose="checkin_reminder", subject_key=f"checkin:{checkin.pk}"
    )
    assert reminders.count() >= 1
    assert all(r.not_before is not None and r.not_before < checkin.closes_at for r in reminders)
    assert checkins_open_due() == 0
    # The stored message holds a placeholder; the token exists only in what was sent.
    assert all(
        "{link}" in m.body for m in Message.objects.filter(subject_key=f"checkin:{checkin.pk}")
    )


def test_the_link_shows_the_form_any_number_of_times_then_submits_once(
    enrolment: Enrolment,
) -> None:
    checkin, token = open_one(enrolment)
    link = CheckinLink.objects.get(checkin=checkin)
    assert link.token_hash != token
    assert len(token) >= 43  # 32 random bytes, URL-safe
    client = Client()
    for _ in range(2):
        page = client.get(f"/c/{token}")
        assert page.status_code == 200
        assert "What number best describes your pain" in page.content.decode()
        assert page["Cache-Control"].startswith("no-store") or "no-store" in page["Cache-Control"]

    missing = client.post(f"/c/{token}", {"pain": "6", "enjoyment": ""})
    assert missing.status_code == 400
    assert "Please answer this question." in missing.content.decode()
    checkin.refresh_from_db()
    assert checkin.status == CheckinStatus.OPEN

    done = client.post(f"/c/{token}", {"pain": "6", "enjoyment": "5", "activity": "4"})
    assert done.status_code == 200
    assert "Thank you" in done.content.decode()
    checkin.refresh_from_db()
    assert (checkin.status, checkin.score) == (CheckinStatus.ANSWERED, 5.0)
    observation = Observation.objects.get(pk=checkin.observation_id)
    assert (observation.code, observation.value_number, observation.source) == (
        "peg",
        5.0,
        "patient",
    )
    # The next check-in of the series is planned.
    assert checkin.series.checkins.filter(sequence=2, status=CheckinStatus.SCHEDULED).exists()

    again = client.post(f"/c/{token}", {"pain": "1", "enjoyment": "1", "activity": "1"})
    assert again.status_code == 410
    assert "already been sent" in again.content.decode()
    assert client.get(f"/c/{token}").status_code == 410
    checkin.refresh_from_db()
    assert checkin.score == 5.0


def test_reminders_after_an_answer_are_suppressed_with_a_reason(enrolment: Enrolment) -> None:
    _checkin, token = open_one(enrolment)
    Client().post(f"/c/{token}", {"pain": "3", "enjoyment": "3", "activity": "3"})
    reminder = Message.objects.filter(purpose="checkin_reminder").first()
    assert reminder is not None
    Message.objects.filter(pk=reminder.pk).update(not_before=timezone.now())
    message_send(message_id=reminder.pk)
    reminder.refresh_from_db()
    assert reminder.status == MessageStatus.SUPPRESSED
    assert "already answered" in reminder.events.latest("id").reason


def test_unknown_and_expired_links(enrolment: Enrolment) -> None:
    client = Client()
    assert client.get("/c/not-a-real-token-but-long-enough").status_code == 404
    checkin, token = open_one(enrolment)
    Checkin.objects.filter(pk=checkin.pk).update(closes_at=timezone.now() - timedelta(seconds=1))
    assert client.get(f"/c/{token}").status_code == 410
    assert client.post(f"/c/{token}", {"pain": "1"}).status_code == 410


def test_phq9_item9_shows_crisis_resources_and_alerts_the_team_at_once(
    enrolment: Enrolment,
) -> None:
    patient = enrolment.patient
    _checkin, token = open_one(enrolment, "phq9")
    # Now the patient's quiet hours: staff alerts ignore them.
    patient.send_window_start, patient.send_window_end = time(3), time(4)
    patient.save()
    answers = {f"item{n}": "0" for n in range(1, 9)} | {"item9": "1", "difficulty": "1"}
    page = Client().post(f"/c/{token}", answers)
    assert page.status_code == 200
    body = page.content.decode()
    assert "988" in body
    assert "Your care team has been told" in body
    flag = Flag.objects.get(patient=patient)
    assert flag.severity == "urgent"
    alerts = Message.objects.filter(purpose="red_flag_alert")
    assert {m.to_staff.role for m in alerts if m.to_staff} == {
        "coordinator",
        "physician",
        "psychologist",
    }
    assert {m.urgency for m in alerts} == {"urgent"}
    for alert in alerts:
        assert message_send(message_id=alert.pk) == "sent"  # not deferred by quiet hours
    # A re-submission cannot happen, and the flag is not raised twice.
    assert Client().post(f"/c/{token}", answers).status_code == 410
    assert Flag.objects.filter(patient=patient).count() == 1


def test_missed_checkins_and_a_task_after_two_in_a_row(enrolment: Enrolment) -> None:
    series = start(enrolment, "peg", timedelta(weeks=1), timezone.now() - timedelta(weeks=4))
    for _ in range(3):
        checkin = series.checkins.filter(status=CheckinStatus.SCHEDULED).get()
        now = checkin.closes_at + timedelta(seconds=1)
        checkins_open_due(now=checkin.due_at)
        checkins_close_expired(now=now)
        checkin.refresh_from_db()
        assert checkin.status == CheckinStatus.MISSED
    tasks = CareTask.objects.filter(enrolment=enrolment, title__contains="missed in a row")
    assert tasks.count() == 1  # one per streak, not one per miss
    assert tasks.get().discipline == "coordinator"


def test_another_streak_of_misses_while_the_task_is_open_opens_no_second_task(
    enrolment: Enrolment,
) -> None:
    series = start(enrolment, "peg", timedelta(weeks=1), timezone.now() - timedelta(weeks=10))

    def due() -> Checkin:
        checkin = series.checkins.filter(status=CheckinStatus.SCHEDULED).get()
        checkins_open_due(now=checkin.due_at)
        return checkin

    def miss() -> None:
        checkins_close_expired(now=due().closes_at + timedelta(seconds=1))

    def answer() -> None:
        checkin = due()
        answers = {"pain": 5, "enjoyment": 5, "activity": 5}
        checkin_submit(checkin_id=checkin.pk, answers=answers, at=checkin.due_at)

    tasks = CareTask.objects.filter(enrolment=enrolment, title__contains="missed in a row")
    for outcome in (miss, miss, answer, miss, miss):  # two streaks, the first task still open
        outcome()
    [task] = tasks
    assert task.status == "open"
    care_task_complete(task=task, user=User.objects.get(role=Role.COORDINATOR))
    for outcome in (answer, miss, miss):  # a done task does not count
        outcome()
    assert sorted(tasks.values_list("status", flat=True)) == ["done", "open"]


def test_a_red_flag_already_raised_still_alerts_the_team_for_each_answer(
    enrolment: Enrolment,
) -> None:
    patient = enrolment.patient
    answers = {f"item{n}": 0 for n in range(1, 9)} | {"item9": 1, "difficulty": 1}
    first, _ = open_one(enrolment, "phq9")
    checkin_submit(checkin_id=first.pk, answers=answers)
    second = checkin_series_start(
        enrolment=enrolment, series="phq9_again", instrument="phq9", every=timedelta(days=14),
        at=timezone.now() - timedelta(days=15),
    ).checkins.get()  # fmt: skip
    Checkin.objects.filter(pk=second.pk).update(
        due_at=timezone.now() - timedelta(minutes=1), closes_at=timezone.now() + timedelta(days=2)
    )
    checkins_open_due()
    checkin_submit(checkin_id=second.pk, answers=answers)

    [flag] = Flag.objects.filter(patient=patient)  # the flag is raised once while unresolved
    assert (flag.code, flag.status, flag.severity) == ("phq9_item9_positive", "open", "urgent")
    alerts = Message.objects.filter(purpose="red_flag_alert")
    sent_for = {(m.subject_key, m.to_staff.role) for m in alerts if m.to_staff}
    assert sent_for == {
        (f"checkin:{checkin.pk}", role)
        for checkin in (first, second)
        for role in ("coordinator", "physician", "psychologist")
    }
    assert {m.urgency for m in alerts} == {"urgent"}


def test_pause_suspends_and_resume_shifts_checkins(enrolment: Enrolment) -> None:
    series = start(enrolment, "peg", timedelta(weeks=1), timezone.now())
    checkin = series.checkins.get()
    due = checkin.due_at
    t0 = timezone.now()
    enrolment_pause(enrolment_id=enrolment.pk, reason="Surgery", at=t0)
    checkin.refresh_from_db()
    assert checkin.status == CheckinStatus.SUSPENDED
    assert checkins_open_due(now=due + timedelta(days=30)) == 0
    enrolment_resume(enrolment_id=enrolment.pk, at=t0 + timedelta(days=5))
    checkin.refresh_from_db()
    assert checkin.status == CheckinStatus.SCHEDULED
    assert checkin.due_at == due + timedelta(days=5)


def test_a_pause_without_hooks_is_refused_and_writes_nothing(
    enrolment: Enrolment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Check-ins are suspended by the hooks they register with pathways; without any, pausing
    would leave them running, so it is refused."""
    series = start(enrolment, "peg", timedelta(weeks=1), timezone.now())
    monkeypatch.setattr(lifecycle, "PAUSE_HOOKS", {})
    with pytest.raises(ImproperlyConfigured, match="pause hook"):
        enrolment_pause(enrolment_id=enrolment.pk, reason="Surgery")
    enrolment.refresh_from_db()
    assert enrolment.status == "active"
    assert series.checkins.get().status == CheckinStatus.SCHEDULED


def test_stopping_a_series_cancels_what_is_not_answered(enrolment: Enrolment) -> None:
    series = start(enrolment, "peg", timedelta(weeks=1), timezone.now())
    checkin_series_stop(enrolment=enrolment, series="peg", at=timezone.now())
    assert series.checkins.get().status == CheckinStatus.CANCELLED
    series.refresh_from_db()
    assert series.stopped_at is not None


def test_link_tokens_never_reach_the_logs(enrolment: Enrolment) -> None:
    _, token = open_one(enrolment)
    line = f"GET /c/{token} HTTP/1.1"
    record = logging.LogRecord(
        "django.server", logging.INFO, __file__, 1, '"%s" %s %s', (line, 200, 512), None
    )
    RedactLinkTokens().filter(record)
    assert token not in record.getMessage()
    assert "/c/[redacted]" in record.getMessage()
    # Through the configured handler, as Django logs a 404 ("Not Found: <path>").
    [handler] = [
        h for h in logging.getLogger("django").handlers
        if any(isinstance(f, RedactLinkTokens) for f in h.filters)
    ]  # fmt: skip
    buffer = io.StringIO()
    previous = handler.setStream(buffer)  # type: ignore[attr-defined]
    try:
        Client().get(f"/c/{token}x")
        Client().get(f"/c/{token}")
    finally:
        handler.setStream(previous)  # type: ignore[attr-defined]
    assert "Not Found: /c/[redacted]" in buffer.getvalue()
    assert token not in buffer.getvalue()


def test_no_token_is_stored_in_plain_text(enrolment: Enrolment) -> None:
    _checkin, token = open_one(enrolment)
    assert not Message.objects.filter(body__contains=token).exists()
    assert not CheckinLink.objects.filter(token_hash=token).exists()
    # Only the patient's phone saw the link: the development SMS backend's row keeps it redacted.
    assert not RecordedMessage.objects.filter(body__contains=token).exists()
    assert RecordedMessage.objects.filter(body__contains="/c/[redacted]").count() == 1
    assert User.objects.filter(username="coordinator").exists()


def test_a_checkin_whose_window_passed_unopened_is_missed_without_a_message(
    enrolment: Enrolment,
) -> None:
    series = start(enrolment, "peg", timedelta(weeks=1), timezone.now() - timedelta(weeks=3))
    first = series.checkins.get()
    assert first.closes_at < timezone.now()
    assert checkins_open_due() == 1
    first.refresh_from_db()
    assert first.status == CheckinStatus.MISSED
    assert not Message.objects.filter(subject_key=f"checkin:{first.pk}").exists()
    upcoming = series.checkins.get(sequence=2)
    assert upcoming.due_at > timezone.now()
