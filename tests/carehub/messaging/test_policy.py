"""The delivery policy: the pure rules (local time across DST, channel choice) and each outcome
as a real send records it, with its reason in the delivery log."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail
from django.db import connections

from carehub.accounts.models import User
from carehub.messaging import registry
from carehub.messaging.delivery import message_send, messages_dispatch_due
from carehub.messaging.models import DeliveryChannel, Message, MessageStatus, RecordedMessage
from carehub.messaging.policy import (
    SEND,
    PatientContact,
    StaffContact,
    choose_patient_channel,
    decide_for_staff,
    local_day_bounds,
    local_instants,
    next_window_opening,
)
from carehub.messaging.selectors import message_history
from carehub.messaging.services import (
    PATIENT,
    contact_preference_set,
    message_enqueue,
    register_suppressor,
    staff_notification_preference_set,
)
from carehub.patients.models import Patient
from carehub.patients.services import patient_update
from tests.carehub.messaging.conftest import WEEKDAY_AFTERNOON
from tests.support.celery_worker import purge_queue

NEW_YORK = ZoneInfo("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- local time, pure ---------------------------------------------------------------------------


def test_a_wall_clock_time_in_the_spring_forward_gap_is_the_first_minute_after_it() -> None:
    # 2026-03-08: New York clocks jump from 02:00 EST to 03:00 EDT; 02:30 never shows.
    assert local_instants(date(2026, 3, 8), time(2, 30), NEW_YORK) == [utc(2026, 3, 8, 7, 0)]


def test_a_wall_clock_time_in_the_fall_back_fold_happens_twice() -> None:
    # 2026-11-01: 01:30 EDT (05:30 UTC), then again 01:30 EST (06:30 UTC).
    assert local_instants(date(2026, 11, 1), time(1, 30), NEW_YORK) == [
        utc(2026, 11, 1, 5, 30),
        utc(2026, 11, 1, 6, 30),
    ]


def test_next_window_opening_is_local_nine_on_both_sides_of_the_dst_changes() -> None:
    # Saturday 21:00 EST → Sunday 09:00 EDT, which is 13:00 UTC (not 14:00).
    assert next_window_opening(utc(2026, 3, 8, 2, 0), NEW_YORK, time(9, 0)) == utc(
        2026, 3, 8, 13, 0
    )
    # Saturday 21:00 EDT → Sunday 09:00 EST, which is 14:00 UTC (not 13:00).
    assert next_window_opening(utc(2026, 11, 1, 1, 0), NEW_YORK, time(9, 0)) == utc(
        2026, 11, 1, 14, 0
    )
    # A window opening inside the gap opens at the end of the gap.
    assert next_window_opening(utc(2026, 3, 8, 6, 0), NEW_YORK, time(2, 30)) == utc(
        2026, 3, 8, 7, 0
    )
    # Just after the first 01:15 of the fold, the next 01:15 is the second one, an hour later.
    assert next_window_opening(utc(2026, 11, 1, 5, 20), NEW_YORK, time(1, 15)) == utc(
        2026, 11, 1, 6, 15
    )


def test_the_local_day_is_23_or_25_hours_on_dst_days() -> None:
    start, end = local_day_bounds(utc(2026, 3, 8, 15, 0), NEW_YORK)
    assert (start, end - start) == (utc(2026, 3, 8, 5, 0), timedelta(hours=23))
    start, end = local_day_bounds(utc(2026, 11, 1, 15, 0), NEW_YORK)
    assert (start, end - start) == (utc(2026, 11, 1, 4, 0), timedelta(hours=25))


def contact(**changes: object) -> PatientContact:
    values: dict[str, object] = {
        "time_zone": "America/New_York", "window_start": time(9), "window_end": time(20),
        "preferred_channel": "sms", "fallback_channel": "email", "phone": "+15550100001",
        "email": "a@example.org",
    }  # fmt: skip
    return PatientContact(**{**values, **changes})  # type: ignore[arg-type]


def test_channel_is_the_preferred_one_when_usable_else_the_fallback_else_in_app() -> None:
    assert choose_patient_channel(contact()) == ("sms", "SMS, the patient's preferred channel")
    channel, reason = choose_patient_channel(contact(phone=""))
    assert (channel, reason) == ("email", "e-mail (fallback): SMS: no phone number")
    channel, reason = choose_patient_channel(contact(phone="", email=""))
    assert channel == "in_app"
    assert "SMS: no phone number" in reason
    assert "e-mail: no e-mail address" in reason
    channel, reason = choose_patient_channel(
        contact(opted_out_channels=frozenset({"sms", "email", "in_app"}))
    )
    assert channel is None
    assert reason.startswith("no usable channel: SMS: opted out")
    # An attempted message keeps its channel, even if the preference changed since.
    assert choose_patient_channel(contact(preferred_channel="email"), pinned="sms")[0] == "sms"


def test_staff_urgent_goes_now_routine_waits_for_the_digest_if_wanted() -> None:
    reader = StaffContact(daily_digest=True, digest_hour=time(8), channel="in_app", email="")
    urgent = decide_for_staff(
        purpose="red_flag_alert", urgency="urgent", contact=reader, suppressed_because=None
    )
    assert (urgent.outcome, urgent.channel) == (SEND, "in_app")
    routine = decide_for_staff(
        purpose="task_reminder", urgency="routine", contact=reader, suppressed_because=None
    )
    assert routine.outcome == MessageStatus.HELD_FOR_DIGEST
    assert routine.reason == "Routine: held for the daily digest at 08:00"


# --- outcomes of real sends, with their reasons -------------------------------------------------


def enqueue(patient: Patient, key: str, **kwargs: object) -> Message:
    values: dict[str, object] = {
        "recipient": PATIENT, "purpose": "pathway_notice", "body": "Your plan has moved on.",
        "why": "test",
    }  # fmt: skip
    return message_enqueue(patient=patient, idempotency_key=key, **{**values, **kwargs})  # type: ignore[arg-type]


def last_reason(message: Message) -> str:
    return message_history(message_id=message.pk)[-1].reason


def send(message: Message) -> Message:
    message_send(message_id=message.pk)
    message.refresh_from_db()
    return message


@pytest.fixture
def clean_registry() -> Iterator[None]:
    saved = {purpose: list(fns) for purpose, fns in registry._suppressors.items()}
    yield
    registry._suppressors.clear()
    registry._suppressors.update(saved)


pytestmark = pytest.mark.django_db


def test_quiet_hours_defer_to_the_next_local_opening_across_the_dst_change(
    patient: Patient,
) -> None:
    # Saturday 2026-03-07 21:00 EST: after the 09:00-20:00 window; Sunday the clocks go forward.
    with time_machine.travel(utc(2026, 3, 8, 2, 0), tick=False):
        message = send(enqueue(patient, "quiet"))
    assert message.status == MessageStatus.DEFERRED
    assert message.not_before == utc(2026, 3, 8, 13, 0)  # 09:00 EDT
    assert last_reason(message) == (
        "Deferred by quiet hours: outside the patient's send window 09:00-20:00 "
        "(America/New_York); until 2026-03-08 09:00 EDT (2026-03-08 13:00 UTC)"
    )
    with time_machine.travel(utc(2026, 3, 8, 12, 59), tick=False):
        assert messages_dispatch_due() == 0  # not before its time
    with time_machine.travel(utc(2026, 3, 8, 13, 0), tick=False):
        assert messages_dispatch_due() == 1
        message = send(message)
    assert (message.status, message.channel) == (MessageStatus.SENT, DeliveryChannel.SMS)
    assert RecordedMessage.objects.get(idempotency_key="quiet").to == "+15550100001"


@time_machine.travel(WEEKDAY_AFTERNOON, tick=False)
def test_fallback_channel_when_the_preferred_one_is_unusable(patient: Patient) -> None:
    patient_update(patient=patient, phone="")
    message = send(enqueue(patient, "fallback"))
    assert (message.status, message.channel) == (MessageStatus.SENT, DeliveryChannel.EMAIL)
    [email] = mail.outbox
    assert email.to == ["ada@example.org"]
    assert email.extra_headers["X-Idempotency-Key"] == "fallback"
    sending = [e for e in message_history(message_id=message.pk) if e.status == "sending"]
    assert sending[0].reason == "Sending by e-mail (fallback): SMS: no phone number (attempt 1/5)"


@time_machine.travel(WEEKDAY_AFTERNOON, tick=False)
def test_opted_out_of_everything_or_of_one_channel(patient: Patient) -> None:
    contact_preference_set(patient=patient, opted_out_sms=True)
    message = send(enqueue(patient, "no-sms"))
    assert (message.status, message.channel) == (MessageStatus.SENT, DeliveryChannel.EMAIL)
    contact_preference_set(patient=patient, opted_out=True)
    message = send(enqueue(patient, "none"))
    assert message.status == MessageStatus.OPTED_OUT
    assert last_reason(message) == "Not sent: the patient opted out of all messages"
    assert not RecordedMessage.objects.filter(idempotency_key="none").exists()


def test_daily_budget_counts_the_patients_local_day_urgent_is_exempt(patient: Patient) -> None:
    contact_preference_set(patient=patient, daily_budget=2)
    with time_machine.travel(WEEKDAY_AFTERNOON, tick=False):
        assert [send(enqueue(patient, f"b{n}")).status for n in range(2)] == ["sent", "sent"]
        over = send(enqueue(patient, "b2"))
        urgent = send(enqueue(patient, "u", urgency="urgent"))
        crisis = send(enqueue(patient, "c", purpose="checkin_crisis"))
    assert over.status == MessageStatus.OVER_BUDGET
    assert last_reason(over) == (
        "Not sent: over the daily budget (2 of 2 messages already sent today, 2026-02-10 in "
        "America/New_York)"
    )
    assert (urgent.status, crisis.status) == ("sent", "sent")
    # 19:30 New York is still the same local day, although UTC has moved on to the 11th.
    with time_machine.travel(utc(2026, 2, 11, 0, 30), tick=False):
        assert send(enqueue(patient, "b3")).status == MessageStatus.OVER_BUDGET
    # The next local day starts afresh.
    with time_machine.travel(WEEKDAY_AFTERNOON + timedelta(days=1), tick=False):
        assert send(enqueue(patient, "b4")).status == MessageStatus.SENT


@time_machine.travel(WEEKDAY_AFTERNOON, tick=False)
def test_a_suppressor_drops_a_message_right_before_sending(
    patient: Patient, clean_registry: None
) -> None:
    answered: set[str] = set()
    register_suppressor(
        "survey_reminder",
        lambda m: "already answered" if m.subject_key in answered else None,
    )
    first = enqueue(patient, "r1", purpose="survey_reminder", subject_key="checkin:7")
    second = enqueue(patient, "r2", purpose="survey_reminder", subject_key="checkin:7")
    assert send(first).status == MessageStatus.SENT
    answered.add("checkin:7")
    second = send(second)
    assert second.status == MessageStatus.SUPPRESSED
    assert last_reason(second) == "Suppressed: already answered"


@time_machine.travel(WEEKDAY_AFTERNOON, tick=False)
def test_routine_staff_messages_wait_for_the_digest_urgent_ones_do_not(
    patient: Patient, staff: dict[str, User]
) -> None:
    physician = staff["physician"]
    staff_notification_preference_set(staff=physician, daily_digest=True)
    routine = send(enqueue(patient, "s1", recipient=physician))
    urgent = send(enqueue(patient, "s2", recipient=physician, urgency="urgent"))
    assert routine.status == MessageStatus.HELD_FOR_DIGEST
    assert last_reason(routine) == "Routine: held for the daily digest at 08:00"
    assert (urgent.status, urgent.channel) == (MessageStatus.SENT, DeliveryChannel.IN_APP)
    assert physician.in_app_notifications.get().message == urgent


def test_an_urgent_staff_alert_in_the_patients_quiet_hours_goes_at_once(
    patient: Patient, staff: dict[str, User]
) -> None:
    # 03:00 in New York: the patient's quiet hours.
    with time_machine.travel(utc(2026, 2, 10, 8, 0), tick=False):
        alert = send(
            enqueue(patient, "alert", recipient=staff["coordinator"], urgency="urgent",
                    purpose="red_flag_alert")
        )  # fmt: skip
        to_patient = send(enqueue(patient, "p", urgency="urgent"))
        crisis = send(enqueue(patient, "crisis", purpose="checkin_crisis"))
    assert alert.status == MessageStatus.SENT
    assert last_reason(alert).startswith("Sent by in_app")
    assert "Urgent staff alert: sent at once" in message_history(message_id=alert.pk)[-2].reason
    assert to_patient.status == MessageStatus.DEFERRED  # quiet hours protect the patient
    assert crisis.status == MessageStatus.SENT  # crisis resources go whatever the hour


@time_machine.travel(WEEKDAY_AFTERNOON, tick=False)
def test_staff_email_preference_and_the_explanation_of_a_message(
    patient: Patient, staff: dict[str, User], settings
) -> None:  # type: ignore[no-untyped-def]
    settings.EMAIL_BACKEND = "carehub.messaging.channels.RecordingEmailBackend"
    staff_notification_preference_set(staff=staff["physician"], channel="email")
    message = send(enqueue(patient, "mail", recipient=staff["physician"]))
    assert message.channel == DeliveryChannel.EMAIL
    recorded = RecordedMessage.objects.get(idempotency_key="mail")
    assert (recorded.channel, recorded.to) == ("email", "physician@harbour.example")
    assert recorded.subject == "carehub: pathway notice"
    statuses = [e.status for e in message_history(message_id=message.pk)]
    assert statuses == ["queued", "sending", "sent"]


@pytest.mark.django_db(transaction=True)
def test_two_workers_cannot_both_take_the_last_message_of_the_budget(patient: Patient) -> None:
    contact_preference_set(patient=patient, daily_budget=1)
    outcomes: list[str] = []
    errors: list[BaseException] = []
    with time_machine.travel(WEEKDAY_AFTERNOON, tick=False):
        messages = [
            message_enqueue(
                patient=patient, recipient=PATIENT, purpose="pathway_notice", body="Hello",
                idempotency_key=f"race-{n}", why="test",
                not_before=WEEKDAY_AFTERNOON - timedelta(minutes=1),
            )
            for n in range(2)
        ]  # fmt: skip
        barrier = threading.Barrier(2)

        def worker(message: Message) -> None:
            try:
                barrier.wait()
                outcomes.append(message_send(message_id=message.pk))
            except BaseException as exc:
                errors.append(exc)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=worker, args=(m,)) for m in messages]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    purge_queue()  # the enqueues published to the test queue; no worker runs here
    assert errors == []
    assert sorted(outcomes) == ["over_budget", "sent"]
