"""The change feed records a check-in's end and a dead message whichever door caused it: the
patient's link, the API, the closing sweep and the delivery machinery; tasks whether a
pathway or a person opens or closes them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from carehub.checkins.models import Checkin
from carehub.checkins.services import checkin_link_mint, checkins_close_expired
from carehub.integrations.models import ChangeEvent, ChangeType
from carehub.messaging.channels import PermanentDeliveryError
from carehub.messaging.delivery import message_failed
from carehub.messaging.models import Message, MessageStatus
from carehub.messaging.services import PATIENT, message_enqueue
from tests.api.conftest import new_key, open_checkin

pytestmark = pytest.mark.django_db

PEG = {"pain": "6", "enjoyment": "5", "activity": "4"}


def events(type: ChangeType, subject_id: int) -> list[ChangeEvent]:
    return list(ChangeEvent.objects.filter(type=type, subject_id=subject_id))


def test_an_answer_by_the_link_is_in_the_feed(enrolment) -> None:  # type: ignore[no-untyped-def]
    checkin = open_checkin(enrolment)
    response = Client().post(f"/c/{checkin_link_mint(checkin=checkin)}", PEG)
    assert response.status_code == 200
    [event] = events(ChangeType.CHECKIN_ANSWERED, checkin.pk)
    assert (event.patient_id, event.data["instrument"]) == (enrolment.patient_id, "peg")
    assert event.data["score"] is not None


def test_an_answer_entered_over_the_api_is_in_the_feed(client_for, staff, enrolment) -> None:  # type: ignore[no-untyped-def]
    checkin = open_checkin(enrolment)
    response = client_for(staff["coordinator"]).post(
        f"/api/v1/checkins/{checkin.pk}/answers",
        {"answers": {"pain": 6, "enjoyment": 5, "activity": 4}},
        format="json",
        **new_key(),
    )
    assert response.status_code == 201, response.content
    assert len(events(ChangeType.CHECKIN_ANSWERED, checkin.pk)) == 1


def test_a_missed_checkin_is_in_the_feed(enrolment) -> None:  # type: ignore[no-untyped-def]
    checkin = open_checkin(enrolment)
    Checkin.objects.filter(pk=checkin.pk).update(closes_at=timezone.now() - timedelta(minutes=1))
    assert checkins_close_expired() >= 1
    [event] = events(ChangeType.CHECKIN_MISSED, checkin.pk)
    assert event.data["score"] is None


def test_a_message_that_dies_is_in_the_feed(patient) -> None:  # type: ignore[no-untyped-def]
    message = message_enqueue(
        patient=patient, recipient=PATIENT, purpose="pathway_notice", body="A notice",
        idempotency_key="feed-dead-1", why="test",
    )  # fmt: skip
    Message.objects.filter(pk=message.pk).update(status=MessageStatus.SENDING, attempts=1)
    outcome = message_failed(
        message_id=message.pk, attempt=1, error=PermanentDeliveryError("number not in service")
    )
    assert outcome == MessageStatus.DEAD
    [event] = events(ChangeType.MESSAGE_DEAD, message.pk)
    assert (event.patient_id, event.data["purpose"]) == (patient.pk, "pathway_notice")
    assert "not in service" not in str(event.data)  # codes only, never the reason's text


def test_a_task_a_person_adds_and_cancels_is_in_the_feed(client_for, staff, enrolment) -> None:  # type: ignore[no-untyped-def]
    """Tasks a person opens and cancels (the API) reach the feed like the pathway's own: opened,
    then closed with its status (codes only: not the title, not the reason)."""
    client = client_for(staff["coordinator"])
    response = client.post(
        f"/api/v1/patients/{enrolment.patient_id}/tasks",
        {
            "discipline": "pharmacist",
            "title": "Review doses",
            "enrolment": str(enrolment.public_id),
        },
        format="json",
        **new_key(),
    )
    assert response.status_code == 201, response.content
    task_id = response.json()["id"]
    [opened] = events(ChangeType.TASK_OPENED, task_id)
    assert (opened.enrolment_id, opened.data["status"]) == (enrolment.pk, "open")
    response = client.post(
        f"/api/v1/tasks/{task_id}/cancel", {"reason": "Reviewed by phone"}, format="json",
        **new_key(),
    )  # fmt: skip
    assert response.status_code == 200, response.content
    [closed] = events(ChangeType.TASK_CLOSED, task_id)
    assert closed.data == {"discipline": "pharmacist", "priority": "routine", "status": "cancelled"}
