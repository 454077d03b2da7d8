"""The public API: idempotent enqueue, recipients by role, publishing after commit, and the
pathway effects that use it."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
from django.db import connections
from django.utils import timezone

from carehub.accounts.models import Role, User
from carehub.accounts.services import staff_create
from carehub.clinics.services import clinic_create
from carehub.core.exceptions import Conflict, InvalidInput
from carehub.messaging.models import DeliveryEvent, Message, MessageStatus
from carehub.messaging.services import (
    PATIENT,
    message_enqueue,
    message_enqueue_for_roles,
)
from carehub.patients.models import CareTeamMembership, Patient
from carehub.patients.services import care_team_end

pytestmark = pytest.mark.django_db


def enqueue(patient: Patient, key: str, **kwargs: object) -> Message:
    values: dict[str, object] = {
        "recipient": PATIENT, "purpose": "appointment_reminder", "body": "Your check-in is ready.",
        "why": "weekly PEG",
    }  # fmt: skip
    return message_enqueue(patient=patient, idempotency_key=key, **{**values, **kwargs})  # type: ignore[arg-type]


def test_enqueue_is_idempotent_on_its_key(patient: Patient, staff: dict[str, User]) -> None:
    first = enqueue(patient, "checkin:1:request")
    again = enqueue(patient, "checkin:1:request", body="Another text")
    assert again.pk == first.pk
    assert again.body == "Your check-in is ready."
    assert Message.objects.count() == 1
    assert DeliveryEvent.objects.filter(message=first).count() == 1
    # The same key for another recipient is a mistake, not a duplicate.
    with pytest.raises(Conflict):
        enqueue(patient, "checkin:1:request", recipient=staff["physician"])


def test_a_message_due_now_is_queued_and_published_after_commit(
    patient: Patient, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    with django_capture_on_commit_callbacks() as published:
        now = enqueue(patient, "now")
        later = enqueue(patient, "later", not_before=timezone.now() + timedelta(days=2))
        enqueue(patient, "now")  # a repeat publishes nothing more
    assert len(published) == 1
    assert (now.status, now.claimed_at is not None) == (MessageStatus.QUEUED, True)
    assert (later.status, later.claimed_at) == (MessageStatus.PENDING, None)
    assert now.to_patient
    assert now.clinic_id == patient.clinic_id


def test_enqueue_refuses_what_it_cannot_send(patient: Patient) -> None:
    with pytest.raises(InvalidInput, match="aware"):
        enqueue(patient, "naive", not_before=datetime(2026, 1, 1, 9, 0))
    with pytest.raises(InvalidInput, match="urgency"):
        enqueue(patient, "u", urgency="soon")
    other_clinic = clinic_create(name="Elsewhere", slug="elsewhere")
    outsider = staff_create(
        clinic=other_clinic, username="outsider", role=Role.PHYSICIAN, password=None
    )
    with pytest.raises(InvalidInput, match="own clinic"):
        enqueue(patient, "x", recipient=outsider)


def test_enqueue_for_roles_one_message_per_recipient(
    patient: Patient, staff: dict[str, User]
) -> None:
    messages = message_enqueue_for_roles(
        patient=patient, roles=["physician", "patient", "pharmacist"], purpose="pathway_notice",
        body="Plan changed", idempotency_key_prefix="effect-9", why="pathway",
    )  # fmt: skip
    # The pharmacist is not on this patient's care team.
    assert sorted(m.idempotency_key for m in messages) == [
        "effect-9:patient",
        f"effect-9:staff:{staff['physician'].pk}",
    ]
    care_team_end(
        membership=CareTeamMembership.objects.get(patient=patient, staff=staff["psychologist"])
    )
    team = message_enqueue_for_roles(
        patient=patient, roles=["care_team"], purpose="pathway_notice", body="Plan changed",
        idempotency_key_prefix="effect-10", why="pathway", urgency="urgent",
    )  # fmt: skip
    assert {m.to_staff.role for m in team if m.to_staff} == {
        "coordinator", "physician", "physical_therapist",
    }  # fmt: skip
    assert all(m.urgency == "urgent" for m in team)


@pytest.mark.django_db(transaction=True)
def test_concurrent_enqueues_of_one_key_make_one_row(patient: Patient) -> None:
    barrier = threading.Barrier(4)
    ids: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            ids.append(enqueue(patient, "race", not_before=timezone.now() + timedelta(hours=1)).pk)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(set(ids)) == 1
    assert Message.objects.filter(idempotency_key="race").count() == 1
