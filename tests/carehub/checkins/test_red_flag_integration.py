"""PHQ-9 item 9 with a real worker: the care team is alerted within 60 s, during the patient's
quiet hours, and the patient sees crisis resources at once."""

from __future__ import annotations

import time as wallclock
from datetime import time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.utils import timezone

from carehub.checkins.models import Checkin
from carehub.checkins.services import checkin_link_mint, checkins_open_due
from carehub.messaging.models import Message, MessageStatus
from tests.carehub.checkins.test_checkins import enrolment, start  # noqa: F401 - fixture
from tests.support.celery_worker import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_item9_alerts_the_team_within_60_seconds_in_quiet_hours(
    celery_worker_process: str,
    enrolment,  # noqa: F811
) -> None:  # type: ignore[no-untyped-def]
    patient = enrolment.patient
    series = start(enrolment, "phq9", timedelta(days=14), timezone.now() - timedelta(days=15))
    Checkin.objects.filter(series=series).update(
        due_at=timezone.now() - timedelta(minutes=1), closes_at=timezone.now() + timedelta(days=2)
    )
    checkins_open_due()
    checkin = series.checkins.get()
    token = checkin_link_mint(checkin=checkin)
    # Every hour is quiet for the patient now, whatever the time the suite runs.
    now_local = timezone.now().astimezone(ZoneInfo(patient.time_zone))
    quiet_start = (now_local + timedelta(hours=2)).time().replace(minute=0, second=0, microsecond=0)
    patient.send_window_start = quiet_start
    patient.send_window_end = time(min(quiet_start.hour + 1, 23), 30)
    patient.save()

    answers = {f"item{n}": "0" for n in range(1, 9)} | {"item9": "2"}
    submitted = wallclock.monotonic()
    page = Client().post(f"/c/{token}", answers)
    assert page.status_code == 200
    assert "988" in page.content.decode()  # crisis resources at once, on the same page

    def all_sent() -> bool:
        statuses = list(
            Message.objects.filter(purpose="red_flag_alert").values_list("status", flat=True)
        )
        return bool(statuses) and all(status == MessageStatus.SENT for status in statuses)

    wait_until(all_sent, timeout=60)
    alerts = Message.objects.filter(purpose="red_flag_alert")
    assert wallclock.monotonic() - submitted < 60
    assert {m.to_staff.role for m in alerts} == {"coordinator", "physician", "psychologist"}
    # The patient's own messages wait for their window; the staff alerts did not.
    assert not Message.objects.filter(
        purpose="red_flag_alert", status=MessageStatus.DEFERRED
    ).exists()
