"""Sending in batches: one send task takes up to MESSAGING_SEND_BATCH_SIZE ids, claims them in
one transaction with a constant number of queries, then sends and marks each on its own. The
policy, exactly-once and failure isolation hold inside a batch as they do for one message."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import time, timedelta

import pytest
import time_machine
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from carehub.accounts.models import Role, User
from carehub.accounts.services import staff_create
from carehub.checkins.models import CheckinLink
from carehub.checkins.services import checkins_open_due
from carehub.clinics.models import Clinic
from carehub.clinics.services import clinic_create
from carehub.messaging import registry
from carehub.messaging.delivery import messages_send, publish_after_commit
from carehub.messaging.models import DeliveryEvent, Message, MessageStatus, RecordedMessage
from carehub.messaging.services import PATIENT, contact_preference_set, message_enqueue
from carehub.patients.models import Patient
from carehub.patients.services import care_team_add, patient_register
from tests.carehub.checkins.test_open_batch import due_checkins
from tests.carehub.messaging.conftest import WEEKDAY_AFTERNOON
from tests.carehub.messaging.support import POISON_GATEWAY, POISON_PHONE
from tests.support.celery_worker import purge_queue

pytestmark = pytest.mark.django_db


@pytest.fixture
def clinic() -> Clinic:
    clinic = clinic_create(name="Batch Clinic", slug="batch", time_zone="America/New_York")
    staff_create(clinic=clinic, username="coord", role=Role.COORDINATOR, password=None)
    return clinic


def register(clinic: Clinic, n: int, first: int) -> list[Patient]:
    coordinator = User.objects.get(clinic=clinic, username="coord")
    people = []
    for i in range(first, first + n):
        patient = patient_register(
            clinic=clinic, mrn=f"S-{i}", given_name="Sam", family_name=f"Send{i}",
            time_zone="America/New_York", phone=f"+1555066{i:04d}",
            send_window_start=time(0), send_window_end=time(23, 59, 59),
        )  # fmt: skip
        care_team_add(patient=patient, staff=coordinator)
        people.append(patient)
    return people


def opened_requests(clinic: Clinic, n: int, first: int) -> list[int]:
    """n patients whose first PEG check-in opens now; the ids of their request messages."""
    checkins = due_checkins(clinic, n, first)
    assert checkins_open_due() == n
    keys = [f"checkin:{c.pk}:request" for c in checkins]
    return list(Message.objects.filter(idempotency_key__in=keys).values_list("pk", flat=True))


def enqueue(patient: Patient, key: str, purpose: str = "appointment_reminder") -> Message:
    return message_enqueue(
        patient=patient, recipient=PATIENT, purpose=purpose, body="Hello", idempotency_key=key,
        why="test", not_before=timezone.now() - timedelta(minutes=1),
    )  # fmt: skip


def send_queries(ids: list[int]) -> tuple[dict[int, str], int]:
    with CaptureQueriesContext(connection) as queries:
        outcomes = messages_send(message_ids=ids)
    return outcomes, len(queries)


@time_machine.travel(WEEKDAY_AFTERNOON, tick=True)
def test_a_batch_costs_a_constant_claim_plus_three_statements_per_message(clinic: Clinic) -> None:
    """Per message: the check-in link, the provider's record, and marking it sent (one statement
    with its event). Everything else (claim, policy facts, the check-ins) is per batch."""
    small = opened_requests(clinic, 2, first=0)
    large = opened_requests(clinic, 12, first=100)
    small_outcomes, small_queries = send_queries(small)
    large_outcomes, large_queries = send_queries(large)
    assert set(small_outcomes.values()) == set(large_outcomes.values()) == {MessageStatus.SENT}
    assert large_queries - small_queries == 3 * (12 - 2)
    keys = Message.objects.filter(pk__in=small + large).values_list("idempotency_key", flat=True)
    recorded = RecordedMessage.objects.filter(idempotency_key__in=list(keys))
    assert recorded.count() == 14
    assert all("/c/" in body for body in recorded.values_list("body", flat=True))
    assert CheckinLink.objects.count() == 14
    history = Counter(
        DeliveryEvent.objects.filter(message_id__in=small + large).values_list("status", flat=True)
    )
    assert history == {"queued": 14, "sending": 14, "sent": 14}


@time_machine.travel(WEEKDAY_AFTERNOON, tick=False)
def test_the_daily_budget_holds_inside_one_batch(clinic: Clinic) -> None:
    patient, other = register(clinic, 2, first=0)
    contact_preference_set(patient=patient, daily_budget=2)
    ids = [enqueue(patient, f"mine-{n}").pk for n in range(4)] + [enqueue(other, "other").pk]
    outcomes = messages_send(message_ids=ids)
    assert Counter(outcomes[pk] for pk in ids[:4]) == {"sent": 2, "over_budget": 2}
    assert outcomes[ids[4]] == MessageStatus.SENT
    over = Message.objects.filter(status=MessageStatus.OVER_BUDGET).first()
    assert over is not None
    reason = DeliveryEvent.objects.filter(message=over).latest("pk").reason
    assert "2 of 2 messages already sent today" in reason


@time_machine.travel(WEEKDAY_AFTERNOON, tick=False)
def test_a_failing_send_or_render_fails_only_its_own_message(clinic: Clinic, settings) -> None:  # type: ignore[no-untyped-def]
    settings.MESSAGING_SMS_GATEWAY = POISON_GATEWAY
    poisoned, fine, rendered_badly = register(clinic, 3, first=0)
    Patient.objects.filter(pk=poisoned.pk).update(phone=POISON_PHONE)

    def broken(message: Message, channel: str) -> str:
        raise ValueError("template error")

    registry.add_renderer("test_broken", broken)
    try:
        ids = [
            enqueue(poisoned, "poisoned").pk,
            enqueue(fine, "fine").pk,
            enqueue(rendered_badly, "badly", purpose="test_broken").pk,
        ]
        outcomes = messages_send(message_ids=ids)
    finally:
        registry._renderers.pop("test_broken")
    assert [outcomes[pk] for pk in ids] == ["retry", "sent", "retry"]
    errors = dict(Message.objects.filter(pk__in=ids).values_list("idempotency_key", "last_error"))
    assert "provider error 503" in errors["poisoned"]
    assert "ValueError: template error" in errors["badly"]
    assert list(RecordedMessage.objects.values_list("idempotency_key", flat=True)) == ["fine"]


@time_machine.travel(WEEKDAY_AFTERNOON, tick=False)
def test_a_batch_out_of_time_releases_its_unsent_claims(
    clinic: Clinic, settings, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    people = register(clinic, 3, first=0)
    ids = [enqueue(patient, f"slow-{n}").pk for n, patient in enumerate(people)]
    settings.MESSAGING_SEND_BATCH_SECONDS = 0  # as if the provider had used up the batch's time
    with django_capture_on_commit_callbacks() as published:
        outcomes = messages_send(message_ids=ids)
    assert set(outcomes.values()) == {MessageStatus.QUEUED}
    assert len(published) == 1  # published again, after the release commits
    released = Message.objects.filter(pk__in=ids)
    assert {(m.status, m.attempts) for m in released} == {(MessageStatus.QUEUED, 0)}
    assert RecordedMessage.objects.count() == 0
    last = DeliveryEvent.objects.filter(message_id=ids[0]).latest("pk")
    assert last.reason.startswith("Released unsent: its batch ran out of time")
    settings.MESSAGING_SEND_BATCH_SECONDS = 60
    assert set(messages_send(message_ids=ids).values()) == {MessageStatus.SENT}
    assert {m.attempts for m in Message.objects.filter(pk__in=ids)} == {1}


@pytest.mark.django_db(transaction=True)
def test_two_workers_sending_overlapping_batches_send_each_message_once(clinic: Clinic) -> None:
    people = register(clinic, 40, first=0)
    ids = [enqueue(patient, f"both-{n}").pk for n, patient in enumerate(people)]
    barrier = threading.Barrier(2)
    results: list[dict[int, str]] = []
    errors: list[BaseException] = []

    def worker(batch: list[int]) -> None:
        try:
            barrier.wait()
            results.append(messages_send(message_ids=batch))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    with time_machine.travel(WEEKDAY_AFTERNOON, tick=True):
        for patient in people:  # due before the travelled-to time
            Message.objects.filter(patient=patient).update(
                not_before=WEEKDAY_AFTERNOON - timedelta(minutes=1)
            )
        threads = [
            threading.Thread(target=worker, args=(ids,)),
            threading.Thread(target=worker, args=(list(reversed(ids)),)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    purge_queue()
    assert errors == []
    sent = Counter(pk for outcome in results for pk, status in outcome.items() if status == "sent")
    assert sent == dict.fromkeys(ids, 1)  # each sent by exactly one of the two
    assert RecordedMessage.objects.count() == 40
    assert sum(RecordedMessage.objects.values_list("duplicate_requests", flat=True)) == 0


def test_send_tasks_carry_batches_of_ids(
    settings, published_batches: list[list[int]], django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    settings.MESSAGING_SEND_BATCH_SIZE = 50
    with django_capture_on_commit_callbacks(execute=True):
        publish_after_commit(list(range(1, 121)))
        assert published_batches == []  # nothing before commit
    assert [len(batch) for batch in published_batches] == [50, 50, 20]
    assert [pk for batch in published_batches for pk in batch] == list(range(1, 121))


def test_due_now_messages_are_sent_by_one_task_per_batch(
    clinic: Clinic, published_batches: list[list[int]], django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    (patient,) = register(clinic, 1, first=0)
    with django_capture_on_commit_callbacks(execute=True):
        message = enqueue(patient, "now")
    assert published_batches == [[message.pk]]  # a single message due now: a batch of one
