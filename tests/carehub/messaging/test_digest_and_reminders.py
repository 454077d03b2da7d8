"""Daily digests for staff who want them, and task reminders for every discipline."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
import time_machine

from carehub.accounts.models import User
from carehub.messaging.delivery import message_send
from carehub.messaging.models import Message, MessageStatus
from carehub.messaging.selectors import message_history
from carehub.messaging.services import (
    digests_compile,
    message_enqueue,
    staff_notification_preference_set,
    task_reminders_send,
)
from carehub.patients.models import Patient
from carehub.worklists.models import CareTask
from carehub.worklists.services import care_task_complete

pytestmark = pytest.mark.django_db


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def held_for(patient: Patient, user: User, count: int, batch: str = "a") -> list[Message]:
    messages = []
    for n in range(count):
        message = message_enqueue(
            patient=patient, recipient=user, purpose="pathway_notice", body=f"Notice {n}",
            idempotency_key=f"held-{user.pk}-{batch}{n}", why="test",
        )  # fmt: skip
        message_send(message_id=message.pk)
        message.refresh_from_db()
        assert message.status == MessageStatus.HELD_FOR_DIGEST
        messages.append(message)
    return messages


def test_held_messages_go_out_once_a_local_day_at_the_digest_hour(
    patient: Patient, staff: dict[str, User]
) -> None:
    physician = staff["physician"]
    staff_notification_preference_set(staff=physician, daily_digest=True, digest_hour=time(8, 0))
    with time_machine.travel(utc(2026, 2, 10, 20, 0), tick=False):  # 15:00 in New York
        held = held_for(patient, physician, 3)
    with time_machine.travel(utc(2026, 2, 11, 12, 59), tick=False):  # 07:59 in New York
        assert digests_compile() == 0
    with time_machine.travel(utc(2026, 2, 11, 13, 0), tick=False):  # 08:00
        assert digests_compile() == 1
        assert digests_compile() == 0  # once per local day
        digest = Message.objects.get(purpose="digest")
        assert digest.idempotency_key == f"digest:{physician.pk}:2026-02-11"
        assert (digest.to_staff, digest.patient) == (physician, None)
        assert message_send(message_id=digest.pk) == MessageStatus.SENT
    text = physician.in_app_notifications.get(message=digest).body
    assert text.splitlines()[0] == "Your daily digest for 2026-02-11: 3 message(s)."
    assert "- pathway notice (H-1): Notice 2" in text
    for message in held:
        message.refresh_from_db()
        assert (message.status, message.digest) == (MessageStatus.SENT, digest)
        last = message_history(message_id=message.pk)[-1]
        assert (last.reason, last.related_message) == (
            f"Sent in the daily digest #{digest.pk}",
            digest,
        )
    # Held after today's digest: waits for tomorrow's.
    with time_machine.travel(utc(2026, 2, 11, 15, 0), tick=False):
        later = held_for(patient, physician, 1, batch="b")[0]
        assert digests_compile() == 0
    with time_machine.travel(utc(2026, 2, 12, 13, 0), tick=False):
        assert digests_compile() == 1
    later.refresh_from_db()
    assert later.digest is not None
    assert later.digest != digest


def test_a_held_task_reminder_for_a_done_task_is_left_out_of_the_digest(
    patient: Patient, staff: dict[str, User]
) -> None:
    coordinator = staff["coordinator"]
    staff_notification_preference_set(staff=coordinator, daily_digest=True)
    task = CareTask.objects.create(
        clinic=patient.clinic, patient=patient, discipline="coordinator", title="Call patient",
        due_at=utc(2026, 2, 10, 22, 0),
    )  # fmt: skip
    with time_machine.travel(utc(2026, 2, 10, 20, 0), tick=False):
        assert task_reminders_send() == 1
        reminder = Message.objects.get(purpose="task_reminder")
        message_send(message_id=reminder.pk)
    care_task_complete(task=task, user=coordinator)
    with time_machine.travel(utc(2026, 2, 11, 13, 0), tick=False):
        assert digests_compile() == 0  # nothing left to carry
    reminder.refresh_from_db()
    assert reminder.status == MessageStatus.SUPPRESSED
    assert message_history(message_id=reminder.pk)[-1].reason == (
        "Suppressed: the task is already done"
    )


def test_turning_the_digest_off_releases_what_was_held(
    patient: Patient, staff: dict[str, User]
) -> None:
    physician = staff["physician"]
    staff_notification_preference_set(staff=physician, daily_digest=True)
    with time_machine.travel(utc(2026, 2, 10, 20, 0), tick=False):
        [message] = held_for(patient, physician, 1)
        staff_notification_preference_set(staff=physician, daily_digest=False)
        digests_compile()
        message.refresh_from_db()
        assert message.status == MessageStatus.PENDING
        assert message_send(message_id=message.pk) == MessageStatus.SENT


def test_task_reminders_for_every_discipline_once_per_local_day(
    patient: Patient, staff: dict[str, User]
) -> None:
    now = utc(2026, 2, 10, 20, 0)  # 15:00 in New York
    soon = CareTask.objects.create(
        clinic=patient.clinic, patient=patient, discipline="physical_therapist",
        title="Review the home programme", due_at=now + timedelta(hours=5),
    )  # fmt: skip
    overdue = CareTask.objects.create(
        clinic=patient.clinic, patient=patient, discipline="psychologist",
        title="CBT session 4 notes", due_at=now - timedelta(days=2), priority="urgent",
    )  # fmt: skip
    CareTask.objects.create(
        clinic=patient.clinic, patient=patient, discipline="physician", title="Later",
        due_at=now + timedelta(days=3),
    )  # fmt: skip
    CareTask.objects.create(
        clinic=patient.clinic, patient=patient, discipline="physician", title="Done",
        due_at=now, status="done",
    )  # fmt: skip
    assert task_reminders_send(now) == 2
    reminders = {m.to_staff.role: m for m in Message.objects.filter(purpose="task_reminder")}  # type: ignore[union-attr]
    assert set(reminders) == {"physical_therapist", "psychologist"}
    pt = reminders["physical_therapist"]
    assert pt.idempotency_key == (
        f"task-reminder:{soon.pk}:2026-02-10:staff:{staff['physical_therapist'].pk}"
    )
    assert (pt.urgency, pt.subject_key) == ("routine", f"task:{soon.pk}")
    assert pt.body == "Task due Tue 10 Feb 20:00: Review the home programme (patient H-1)"
    psych = reminders["psychologist"]
    assert psych.urgency == "urgent"
    assert psych.body.startswith("Task overdue since Sun 08 Feb 15:00: CBT session 4 notes")
    # The same local day: nothing more; 20:00 New York is already the 11th in UTC.
    assert task_reminders_send(now + timedelta(hours=4)) == 0
    # The next local day: reminded again (the task is overdue by then).
    assert task_reminders_send(now + timedelta(hours=10)) == 2
    # A reminder whose task was completed before it went out is suppressed.
    care_task_complete(task=overdue, user=staff["psychologist"])
    latest = Message.objects.filter(purpose="task_reminder", to_staff=staff["psychologist"])
    with time_machine.travel(now + timedelta(hours=10), tick=False):
        assert message_send(message_id=latest.latest("pk").pk) == MessageStatus.SUPPRESSED
