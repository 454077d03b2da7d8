"""The opening sweep works batch by batch: its queries do not grow with the number of check-ins
opened, and every request and reminder is written once, however often the sweep runs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from carehub.accounts.models import Role, User
from carehub.accounts.services import staff_create
from carehub.checkins.models import Checkin, CheckinStatus
from carehub.checkins.services import checkin_series_start, checkins_open_due
from carehub.clinics.models import Clinic
from carehub.clinics.services import clinic_create
from carehub.messaging.models import DeliveryEvent, Message, MessageStatus
from carehub.pathways.services import enrolment_start
from carehub.patients.services import care_team_add, patient_register

pytestmark = pytest.mark.django_db
NY = ZoneInfo("America/New_York")


@pytest.fixture(autouse=True)
def afternoon_in_new_york() -> Iterator[None]:
    with time_machine.travel(datetime(2026, 6, 2, 14, 0, tzinfo=NY), tick=True):
        yield


@pytest.fixture
def clinic() -> Clinic:
    clinic = clinic_create(name="Batch Clinic", slug="batch", time_zone="America/New_York")
    staff_create(clinic=clinic, username="coord", role=Role.COORDINATOR, password=None)
    return clinic


def due_checkins(clinic: Clinic, n: int, first: int) -> list[Checkin]:
    """n patients, each with a PEG series whose first check-in is due now."""
    coordinator = User.objects.get(clinic=clinic, username="coord")
    checkins = []
    for i in range(first, first + n):
        patient = patient_register(
            clinic=clinic, mrn=f"B-{i}", given_name="Bo", family_name=f"Batch{i}",
            time_zone="America/New_York", phone=f"+1555055{i:04d}",
            send_window_start=time(8), send_window_end=time(21),
        )  # fmt: skip
        care_team_add(patient=patient, staff=coordinator)
        enrolment = enrolment_start(patient=patient, definition_key="intractable-pain")
        series = checkin_series_start(
            enrolment=enrolment, series="peg-batch", instrument="peg", every=timedelta(days=7),
            at=timezone.now() - timedelta(days=15),
        )  # fmt: skip
        checkins.append(series.checkins.get())
    Checkin.objects.filter(pk__in=[c.pk for c in checkins]).update(
        due_at=timezone.now() - timedelta(minutes=1), closes_at=timezone.now() + timedelta(days=2)
    )
    return checkins


def sweep_queries() -> tuple[int, int]:
    with CaptureQueriesContext(connection) as queries:
        opened = checkins_open_due()
    return opened, len(queries)


def test_opening_a_batch_costs_the_same_queries_for_2_or_12_checkins(clinic: Clinic) -> None:
    due_checkins(clinic, 2, first=0)
    small = sweep_queries()
    due_checkins(clinic, 12, first=100)
    large = sweep_queries()
    assert small[0] == 2
    assert large[0] == 12
    assert large[1] == small[1]


def test_every_request_and_reminder_is_written_once(clinic: Clinic) -> None:
    checkins = due_checkins(clinic, 3, first=0)
    assert checkins_open_due() == 3
    messages = Message.objects.filter(subject_key__in=[f"checkin:{c.pk}" for c in checkins])
    before = sorted(messages.values_list("idempotency_key", flat=True))
    assert len([key for key in before if key.endswith(":request")]) == 3
    assert all(key.count(":reminder:") == 1 for key in before if not key.endswith(":request"))
    for checkin in Checkin.objects.filter(pk__in=[c.pk for c in checkins]):
        assert checkin.status == CheckinStatus.OPEN
        assert checkin.opened_at is not None
    requests = messages.filter(idempotency_key__endswith=":request")
    assert set(requests.values_list("status", flat=True)) == {MessageStatus.QUEUED}
    events = DeliveryEvent.objects.count()
    # A sweep that runs again (or a check-in put back to scheduled and claimed again, as a
    # redelivered sweep would) writes nothing more: the keys hold.
    Checkin.objects.filter(pk=checkins[0].pk).update(status=CheckinStatus.SCHEDULED)
    assert checkins_open_due() == 1
    assert checkins_open_due() == 0
    assert sorted(messages.values_list("idempotency_key", flat=True)) == before
    assert DeliveryEvent.objects.count() == events
