"""`message_enqueue_many`: a batch of messages in a constant number of queries, with the
guarantees of `message_enqueue` (one row per key, conflicts refused, due ones published once)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from carehub.accounts.models import User
from carehub.core.exceptions import Conflict
from carehub.messaging.models import DeliveryEvent, Message, MessageStatus
from carehub.messaging.services import PATIENT, MessageRequest, message_enqueue_many
from carehub.patients.models import Patient

pytestmark = pytest.mark.django_db


def requests_for(patient: Patient, prefix: str, n: int) -> list[MessageRequest]:
    """n due-now messages and n for in two days."""
    later = timezone.now() + timedelta(days=2)
    return [
        MessageRequest(
            patient=patient,
            recipient=PATIENT,
            purpose="checkin_request",
            body="Ready: {link}",
            idempotency_key=f"{prefix}:{i}:{kind}",
            why=f"test {i}",
            not_before=later if kind == "later" else None,
        )
        for i in range(n)
        for kind in ("now", "later")
    ]


def queries_for(patient: Patient, prefix: str, n: int) -> int:
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        message_enqueue_many(requests_for(patient, prefix, n))
    return len(queries)


def test_the_number_of_queries_does_not_grow_with_the_batch(patient: Patient) -> None:
    small = queries_for(patient, "small", 2)
    large = queries_for(patient, "large", 40)
    assert large == small
    assert small <= 6  # savepoint, INSERT messages, INSERT events, release (+ the transaction)
    assert Message.objects.count() == 84
    assert DeliveryEvent.objects.count() == 84


def test_a_repeated_batch_changes_nothing_and_publishes_nothing_more(
    patient: Patient, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as first_publish:
        first = message_enqueue_many(requests_for(patient, "redelivered", 5))
    with django_capture_on_commit_callbacks(execute=False) as second_publish:
        again = message_enqueue_many(requests_for(patient, "redelivered", 5))
    assert [m.pk for m in again] == [m.pk for m in first]
    assert Message.objects.count() == 10
    assert DeliveryEvent.objects.count() == 10
    assert len(first_publish) == 1  # one publish for the batch's 5 due-now messages
    assert second_publish == []
    due_now = [m for m in first if m.status == MessageStatus.QUEUED]
    assert len(due_now) == 5
    assert all(m.claimed_at is not None for m in due_now)
    pending = [m for m in first if m.status == MessageStatus.PENDING]
    assert len(pending) == 5
    assert all(m.claimed_at is None for m in pending)


def test_a_key_twice_in_one_batch_is_one_message(patient: Patient) -> None:
    [one] = requests_for(patient, "twice", 1)[:1]
    first, second = message_enqueue_many([one, one])
    assert first.pk == second.pk
    assert Message.objects.filter(idempotency_key=one.idempotency_key).count() == 1
    assert DeliveryEvent.objects.filter(message_id=first.pk).count() == 1


def test_a_conflict_undoes_the_whole_batch_and_leaves_the_transaction_usable(
    patient: Patient, staff: dict[str, User]
) -> None:
    message_enqueue_many(requests_for(patient, "taken", 1)[:1])
    mixed = [
        *requests_for(patient, "fresh", 2),
        MessageRequest(
            patient=patient,
            recipient=staff["physician"],
            purpose="checkin_request",
            body="x",
            idempotency_key="taken:0:now",
            why="another recipient",
        ),
    ]
    with transaction.atomic():
        with pytest.raises(Conflict):
            message_enqueue_many(mixed)
        assert Message.objects.count() == 1  # the caller's transaction goes on
    assert not Message.objects.filter(idempotency_key__startswith="fresh:").exists()
