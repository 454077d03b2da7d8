"""Webhook deliveries against a real local receiver: signed (Standard Webhooks), in order per
patient, retried through a receiver that is down, slow, failing and whose answer is lost,
dead after the attempts and resent; a real Celery worker sends them."""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import timedelta

import pytest
from django.db import transaction
from django.test import override_settings

from carehub.accounts.models import User
from carehub.core import clock
from carehub.integrations.models import (
    ChangeEvent,
    ChangeType,
    DeliveryStatus,
    WebhookDelivery,
    WebhookSubscription,
)
from carehub.integrations.sender import webhooks_send
from carehub.integrations.services import change_record, webhook_delivery_resend
from carehub.patients.models import Patient
from carehub.worklists.models import FlagStatus
from carehub.worklists.services import (
    care_task_complete,
    care_task_create,
    flag_raise,
    flag_set_status,
)
from tests.api.conftest import register
from tests.support.celery_worker import running_worker
from tests.support.webhook_receiver import Receiver, closed_port_url, webhook_receiver

FAST_RETRIES = {"WEBHOOK_RETRY_BASE_SECONDS": 0.01, "WEBHOOK_RETRY_MAX_SECONDS": 0.05}
TYPES = [
    ChangeType.FLAG_RAISED, ChangeType.FLAG_ACKNOWLEDGED, ChangeType.FLAG_RESOLVED,
    ChangeType.TASK_OPENED, ChangeType.TASK_CLOSED,
]  # fmt: skip


def subscribe(clinic, url: str) -> WebhookSubscription:  # type: ignore[no-untyped-def]
    return WebhookSubscription.objects.create(clinic=clinic, url=url, event_types=list(TYPES))


def history(patient: Patient, user: User, enrolment) -> None:  # type: ignore[no-untyped-def]
    """Five changes of one patient, each in its own transaction: flag raised, acknowledged,
    resolved; a task opened and done."""
    now = clock.now()
    flag = flag_raise(
        enrolment=None, patient=patient, code=f"check-{patient.pk}", severity="warning",
        message="Private words about the patient", raised_at=now,
    )  # fmt: skip
    flag_set_status(flag=flag, status=FlagStatus.ACKNOWLEDGED, user=user)
    flag_set_status(flag=flag, status=FlagStatus.RESOLVED, user=user, outcome="Spoke to her")
    if enrolment is not None:
        task = care_task_create(
            enrolment=enrolment, discipline="coordinator", title="Private task title",
            due_at=now + timedelta(days=1),
        )  # fmt: skip
        care_task_complete(task=task, user=user)


def feed_order() -> dict[int, list[str]]:
    order: dict[int, list[str]] = defaultdict(list)
    for event in ChangeEvent.objects.order_by("txid", "id"):
        order[event.patient_id].append(str(event.public_id))
    return order


def send_until_done(rounds: int = 200) -> None:
    for _ in range(rounds):
        webhooks_send()
        if not WebhookDelivery.objects.exclude(status=DeliveryStatus.DELIVERED).exists():
            return
        time.sleep(0.05)
    raise AssertionError("deliveries still undelivered")


@pytest.mark.django_db(transaction=True)
def test_every_event_arrives_signed_in_order_per_patient_through_every_fault(
    clinic, staff, enrolment, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.WEBHOOK_TIMEOUT_SECONDS = 8.0
    settings.WEBHOOK_MAX_ATTEMPTS = 20

    def behaviour(n: int) -> tuple[int, float]:
        if n == 1:
            return 500, 0.0  # failing
        if n == 2:
            return 200, 5.0  # slow (within the timeout)
        if n == 3:
            return 200, 9.0  # accepted, but the answer arrives after the sender gave up
        return 200, 0.0

    subscription = subscribe(clinic, closed_port_url())  # the receiver is down at first
    others = [register(clinic, f"W-{n}") for n in range(2)]
    history(enrolment.patient, staff["coordinator"], enrolment)
    for patient in others:
        history(patient, staff["coordinator"], None)
    webhooks_send()
    assert not WebhookDelivery.objects.filter(status=DeliveryStatus.DELIVERED).exists()
    down = WebhookDelivery.objects.filter(attempts__gt=0)
    assert down.count() == 3  # the first event of each patient; the rest wait behind it
    assert all("ConnectionError" in d.last_error for d in down)

    # The receiver comes up; retries from now on are quick (and the waiting ones due now).
    settings.WEBHOOK_RETRY_BASE_SECONDS = 0.01
    settings.WEBHOOK_RETRY_MAX_SECONDS = 0.05
    WebhookDelivery.objects.update(next_attempt_at=clock.now())
    with webhook_receiver(Receiver(secret=subscription.secret, behaviour=behaviour)) as receiver:
        WebhookSubscription.objects.filter(pk=subscription.pk).update(url=receiver.url)
        send_until_done()

    events = ChangeEvent.objects.count()
    assert events == 5 + 3 * 2 == WebhookDelivery.objects.count()
    assert all(item.verified for item in receiver.received)
    accepted = receiver.accepted_ids()
    assert len(accepted) == events  # none lost
    ids = [item.webhook_id for item in receiver.delivered()]
    lost_answer = receiver.received[2]
    assert (lost_answer.answered, ids.count(lost_answer.webhook_id)) == (200, 2)  # same id twice
    assert [item.answered for item in receiver.received].count(500) == 1
    for patient_id, expected in feed_order().items():
        assert [i for i in accepted if i in expected] == expected, patient_id
    bodies = [item.body for item in receiver.received]
    assert {body["type"] for body in bodies} == set(TYPES)
    text = str(bodies)
    assert "Private" not in text  # ids and codes only: no flag message, no task title
    assert "Spoke to her" not in text


@pytest.mark.django_db(transaction=True)
@override_settings(WEBHOOK_MAX_ATTEMPTS=2, **FAST_RETRIES)
def test_a_dead_delivery_stops_holding_back_later_ones_and_can_be_resent(clinic, staff) -> None:  # type: ignore[no-untyped-def]
    patient = register(clinic, "D-1")

    def behaviour(n: int) -> tuple[int, float]:
        return (500, 0.0) if n <= 2 else (200, 0.0)  # the first two requests fail

    with webhook_receiver(Receiver(behaviour=behaviour)) as receiver:
        subscription = subscribe(clinic, receiver.url)
        receiver.secret = subscription.secret
        with transaction.atomic():
            first = change_record(
                clinic_id=clinic.pk, patient_id=patient.pk, type=ChangeType.FLAG_RAISED,
                subject_id=1,
            )  # fmt: skip
        with transaction.atomic():
            second = change_record(
                clinic_id=clinic.pk, patient_id=patient.pk, type=ChangeType.FLAG_RESOLVED,
                subject_id=1,
            )  # fmt: skip
        send_until(lambda: delivered(second))
        dead = WebhookDelivery.objects.get(event=first)
        assert (dead.status, dead.attempts) == (DeliveryStatus.DEAD, 2)
        assert "HTTP 500" in dead.last_error
        # The second waited while the first was retried, and went once the first was dead.
        arrivals = [r.webhook_id for r in receiver.received]
        assert arrivals == [str(first.public_id)] * 2 + [str(second.public_id)]
        webhook_delivery_resend(delivery_id=dead.pk)
        send_until(lambda: delivered(first))
    assert receiver.accepted_ids() == [str(second.public_id), str(first.public_id)]


def delivered(event: ChangeEvent) -> bool:
    return WebhookDelivery.objects.filter(event=event, status=DeliveryStatus.DELIVERED).exists()


def send_until(done, rounds: int = 100) -> None:  # type: ignore[no-untyped-def]
    for _ in range(rounds):
        webhooks_send()
        if done():
            return
        time.sleep(0.05)
    raise AssertionError("not delivered")


@pytest.mark.django_db(transaction=True)
@override_settings(WEBHOOK_LEASE_SECONDS=60, **FAST_RETRIES)
def test_a_delivery_whose_sender_died_mid_send_goes_again_after_the_lease(clinic) -> None:  # type: ignore[no-untyped-def]
    with webhook_receiver(Receiver()) as receiver:
        subscription = subscribe(clinic, receiver.url)
        receiver.secret = subscription.secret
        with transaction.atomic():
            event = change_record(clinic_id=clinic.pk, type=ChangeType.TASK_OPENED, subject_id=7)
        claimed = clock.now() - timedelta(seconds=30)  # within the lease: still its sender's
        WebhookDelivery.objects.filter(event=event).update(
            status=DeliveryStatus.SENDING, claimed_at=claimed, attempts=1
        )
        assert webhooks_send() == 0
        WebhookDelivery.objects.filter(event=event).update(
            claimed_at=clock.now() - timedelta(seconds=61)  # the lease ran out: its sender died
        )
        send_until(lambda: delivered(event))
    delivery = WebhookDelivery.objects.get(event=event)
    assert delivery.attempts == 2
    assert "worker lost mid-send" in delivery.last_error
    assert receiver.accepted_ids() == [str(event.public_id)]


@pytest.mark.django_db(transaction=True)
def test_a_change_rolled_back_leaves_no_event_and_no_delivery(clinic) -> None:  # type: ignore[no-untyped-def]
    subscribe(clinic, "https://receiver.example/h")
    seen = []

    def change_then_fail() -> None:
        with transaction.atomic():
            change_record(clinic_id=clinic.pk, type=ChangeType.FLAG_RAISED, subject_id=1)
            seen.append(WebhookDelivery.objects.count())  # the trigger, same transaction
            raise RuntimeError

    with pytest.raises(RuntimeError):
        change_then_fail()
    assert seen == [1]
    assert (ChangeEvent.objects.count(), WebhookDelivery.objects.count()) == (0, 0)


@pytest.mark.django_db(transaction=True)
def test_only_active_subscriptions_of_the_clinic_and_the_type_get_a_delivery(
    clinic, other_clinic
) -> None:  # type: ignore[no-untyped-def]
    wanted = subscribe(clinic, "https://a.example/h")
    WebhookSubscription.objects.create(
        clinic=clinic, url="https://b.example/h", event_types=["message.dead"]
    )
    WebhookSubscription.objects.create(
        clinic=clinic, url="https://c.example/h", event_types=list(TYPES), active=False
    )
    subscribe(other_clinic, "https://d.example/h")
    with transaction.atomic():
        event = change_record(clinic_id=clinic.pk, type=ChangeType.FLAG_RAISED, subject_id=1)
    assert list(WebhookDelivery.objects.values_list("subscription_id", "event_id")) == [
        (wanted.pk, event.pk)
    ]


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_celery_worker_sends_the_deliveries(clinic, staff, enrolment) -> None:  # type: ignore[no-untyped-def]
    from config.celery_app import app

    with webhook_receiver(Receiver()) as receiver:
        subscription = subscribe(clinic, receiver.url)
        receiver.secret = subscription.secret
        history(enrolment.patient, staff["coordinator"], enrolment)
        with running_worker("webhooks"):
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and len(receiver.accepted_ids()) < 5:
                app.send_task("carehub.integrations.webhooks_send")
                time.sleep(1.0)
    assert receiver.accepted_ids() == feed_order()[enrolment.patient_id]
    assert all(item.verified for item in receiver.received)
