"""Flags inbox, task worklist and dead messages: scope, order, actions once, htmx rows."""

from __future__ import annotations

import re

import pytest

from carehub.accounts.models import User
from carehub.audit.models import AuditEvent
from carehub.core import clock
from carehub.messaging.models import DeliveryEvent, Message, MessageStatus
from carehub.messaging.services import message_enqueue
from carehub.patients.models import Patient
from carehub.worklists.models import CareTask, Flag
from carehub.worklists.services import care_task_create, flag_raise

pytestmark = pytest.mark.django_db


def raise_flag(patient: Patient, severity: str, message: str) -> Flag:
    return flag_raise(
        enrolment=patient.enrolments.get(), code=f"test_{severity}", severity=severity,
        message=message, raised_at=clock.now(),
    )  # fmt: skip


def key_for(html: str, url: str) -> str:
    start = html.index(f'action="{url}"')
    return re.search(r'name="form_key" value="([^"]+)"', html[start:]).group(1)  # type: ignore[union-attr]


# --- flags -----------------------------------------------------------------------------------


def test_flags_are_listed_urgent_first(
    patient: Patient, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    raise_flag(patient, "info", "FYI flag")
    raise_flag(patient, "urgent", "Urgent flag")
    raise_flag(patient, "warning", "Warning flag")
    html = client_for(staff["coordinator"]).get("/flags/").content.decode()
    order = [html.index(text) for text in ("Urgent flag", "Warning flag", "FYI flag")]
    assert order == sorted(order)


def test_acknowledge_then_resolve_once_each(
    patient: Patient, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    flag = raise_flag(patient, "urgent", "Urgent flag")
    client = client_for(staff["coordinator"])
    html = client.get("/flags/").content.decode()
    url = f"/flags/{flag.pk}/acknowledge"
    data = {"form_key": key_for(html, url), "note": "Called the patient"}
    assert client.post(url, data).status_code == 302
    assert client.post(url, data).status_code == 302  # the same form again: acts once
    flag.refresh_from_db()
    assert flag.status == "acknowledged"
    assert AuditEvent.objects.filter(action="flag.acknowledge", patient=patient).count() == 2
    html = client.get("/flags/?show=unresolved").content.decode()
    url = f"/flags/{flag.pk}/resolve"
    response = client.post(
        url, {"form_key": key_for(html, url), "outcome": "Seen today"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert f'id="flag-{flag.pk}"' in response.content.decode()
    assert "Resolved:" in response.content.decode()
    flag.refresh_from_db()
    assert flag.status == "resolved"


def test_resolving_a_resolved_flag_says_so_and_changes_nothing(
    patient: Patient, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    flag = raise_flag(patient, "urgent", "Urgent flag")
    client = client_for(staff["coordinator"])
    resolve = {"form_key": "a" * 32, "outcome": "Seen"}
    assert client.post(f"/flags/{flag.pk}/resolve", resolve).status_code == 302
    response = client.post(
        f"/flags/{flag.pk}/acknowledge",
        {"form_key": "b" * 32, "note": "Called"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 409
    assert "Someone else changed this" in response.content.decode()
    flag.refresh_from_db()
    assert flag.status == "resolved"


def test_another_clinics_flag_is_not_found(
    foreign_patient: Patient, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    flag = raise_flag(foreign_patient, "urgent", "Theirs")
    client = client_for(staff["coordinator"])
    assert "Theirs" not in client.get("/flags/").content.decode()
    assert client.post(f"/flags/{flag.pk}/resolve", {"form_key": "a" * 32}).status_code == 404
    flag.refresh_from_db()
    assert flag.status == "open"


def test_flags_are_for_clinicians_not_the_clinic_admin_or_patients(
    staff: dict[str, User], patient_user: User, client_for
) -> None:  # type: ignore[no-untyped-def]
    assert client_for(staff["clinic_admin"]).get("/flags/").status_code == 403
    assert client_for(patient_user).get("/flags/").status_code == 403


# --- tasks -----------------------------------------------------------------------------------


def test_the_worklist_is_per_discipline_and_completes_once(
    patient: Patient, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    enrolment = patient.enrolments.get()
    CareTask.objects.filter(patient=patient).delete()
    mine = care_task_create(enrolment=enrolment, discipline="coordinator", title="Call patient",
                            due_at=None)  # fmt: skip
    care_task_create(enrolment=enrolment, discipline="pharmacist", title="Review MME", due_at=None)
    client = client_for(staff["coordinator"])
    html = client.get("/tasks/").content.decode()
    assert "Call patient" in html
    assert "Review MME" not in html
    assert "Review MME" in client.get("/tasks/?discipline=all").content.decode()
    url = f"/tasks/{mine.pk}/complete"
    data = {"form_key": key_for(html, url)}
    assert client.post(url, data).status_code == 302
    assert client.post(url, data).status_code == 302
    mine.refresh_from_db()
    assert (mine.status, mine.completed_by) == ("done", staff["coordinator"])


def test_a_therapist_cannot_complete_a_task_of_a_patient_outside_their_team(
    patient: Patient, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    task = care_task_create(
        enrolment=patient.enrolments.get(), discipline="psychologist", title="Eval", due_at=None
    )
    response = client_for(staff["psychologist"]).post(
        f"/tasks/{task.pk}/complete", {"form_key": "a" * 32}
    )
    assert response.status_code == 404
    task.refresh_from_db()
    assert task.status == "open"


# --- dead messages ---------------------------------------------------------------------------


@pytest.fixture
def dead_message(patient: Patient) -> Message:
    message = message_enqueue(
        patient=patient, recipient="patient", purpose="pathway_notice", body="Hello",
        idempotency_key="dead-1", why="test", not_before=clock.now(),
    )  # fmt: skip
    # As the sender leaves it after the last failed attempt.
    Message.objects.filter(pk=message.pk).update(
        status=MessageStatus.DEAD, attempts=5, last_error="SMTP 550 mailbox unavailable"
    )
    return message


def test_dead_messages_are_listed_and_resent_once(
    dead_message: Message, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["coordinator"])
    html = client.get("/messages/dead/").content.decode()
    assert "SMTP 550 mailbox unavailable" in html
    url = f"/messages/{dead_message.pk}/resend"
    data = {"form_key": key_for(html, url)}
    assert client.post(url, data).status_code == 302
    assert client.post(url, data).status_code == 302
    dead_message.refresh_from_db()
    assert dead_message.status != MessageStatus.DEAD
    assert (
        DeliveryEvent.objects.filter(message=dead_message, reason__startswith="Resent").count() == 1
    )


def test_dead_messages_are_for_coordinators_and_admins(
    dead_message: Message, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    assert client_for(staff["clinic_admin"]).get("/messages/dead/").status_code == 200
    for role in ("physician", "physical_therapist"):
        client = client_for(staff[role])
        assert client.get("/messages/dead/").status_code == 403
        assert (
            client.post(f"/messages/{dead_message.pk}/resend", {"form_key": "a" * 32}).status_code
            == 403
        )
    dead_message.refresh_from_db()
    assert dead_message.status == MessageStatus.DEAD


def test_another_clinics_dead_message_is_not_found(
    foreign_patient: Patient, outsider: User, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    message = message_enqueue(
        patient=foreign_patient, recipient="patient", purpose="pathway_notice", body="Hi",
        idempotency_key="dead-2", why="test",
    )  # fmt: skip
    Message.objects.filter(pk=message.pk).update(status=MessageStatus.DEAD)
    client = client_for(staff["coordinator"])
    assert f"message-{message.pk}" not in client.get("/messages/dead/").content.decode()
    assert client.post(f"/messages/{message.pk}/resend", {"form_key": "a" * 32}).status_code == 404
