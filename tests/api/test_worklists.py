"""Worklists: tasks per discipline and flags, completed / acknowledged / resolved through the
worklist services, every answer audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from carehub.accounts.models import User
from carehub.audit.models import AuditEvent
from carehub.pathways.models import Enrolment
from carehub.worklists.models import CareTask, Flag
from carehub.worklists.services import care_task_create, flag_raise
from tests.api.conftest import assert_problem, new_key

pytestmark = pytest.mark.django_db


def test_the_task_list_defaults_to_open_tasks_of_the_callers_role(
    client_for, staff: dict[str, User], enrolment: Enrolment, task: CareTask
) -> None:  # type: ignore[no-untyped-def]
    mine = care_task_create(
        enrolment=enrolment, discipline="coordinator", title="Book the review", due_at=None
    )
    done = care_task_create(enrolment=enrolment, discipline="coordinator", title="Old", due_at=None)
    client_for(staff["coordinator"]).post(f"/api/v1/tasks/{done.pk}/complete", **new_key())
    client = client_for(staff["coordinator"])
    rows = client.get("/api/v1/tasks").json()["results"]
    assert [r["id"] for r in rows] == [mine.pk]
    assert rows[0]["patient_mrn"] == "T-1"
    assert rows[0]["patient_name"] == "Alice Adams"
    assert rows[0]["enrolment"] == str(enrolment.public_id)
    therapist = client.get("/api/v1/tasks?discipline=physical_therapist").json()["results"]
    assert [r["id"] for r in therapist] == [task.pk]
    every = client.get("/api/v1/tasks?discipline=all&status=all").json()["results"]
    assert [r["id"] for r in every] == [done.pk, mine.pk, task.pk]
    finished = client.get("/api/v1/tasks?status=done").json()["results"]
    assert [r["id"] for r in finished] == [done.pk]
    assert_problem(client.get("/api/v1/tasks?status=later"), 400, "invalid_input")


def test_completing_a_task_records_who_and_when_once(
    client_for, staff: dict[str, User], task: CareTask
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["physical_therapist"])
    response = client.post(f"/api/v1/tasks/{task.pk}/complete", **new_key())
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "done"
    assert body["completed_by_id"] == staff["physical_therapist"].pk
    assert body["completed_at"]
    again = assert_problem(
        client.post(f"/api/v1/tasks/{task.pk}/complete", **new_key()), 409, "conflict"
    )
    assert again["current"] == {"id": task.pk, "status": "done"}
    rows = AuditEvent.objects.filter(action="task.complete").order_by("id")
    assert [(r.outcome, r.patient_id, r.object_id) for r in rows] == [
        ("ok", task.patient_id, str(task.pk)),
        ("error", task.patient_id, str(task.pk)),
    ]


def test_the_clinic_admin_may_not_work_the_worklists(
    client_for, staff: dict[str, User], task: CareTask, flag: Flag
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["clinic_admin"])
    assert_problem(client.get("/api/v1/tasks"), 403, "not_permitted")
    assert_problem(client.get("/api/v1/flags"), 403, "not_permitted")
    assert_problem(
        client.post(f"/api/v1/tasks/{task.pk}/complete", **new_key()), 403, "not_permitted"
    )
    assert_problem(
        client.post(f"/api/v1/flags/{flag.pk}/resolve", **new_key()), 403, "not_permitted"
    )
    task.refresh_from_db()
    flag.refresh_from_db()
    assert (task.status, flag.status) == ("open", "open")
    denied = AuditEvent.objects.get(action="task.complete")
    assert (denied.outcome, denied.patient_id) == ("denied", task.patient_id)


def test_flags_list_urgent_first_then_newest(
    client_for, staff: dict[str, User], enrolment: Enrolment, flag: Flag
) -> None:  # type: ignore[no-untyped-def]
    now = timezone.now()

    def raise_flag(severity: str, minutes: int) -> Flag:
        return flag_raise(
            enrolment=enrolment,
            code=f"check_{minutes}",  # one flag per code while unresolved: a code each
            severity=severity,
            message=f"{severity} {minutes}",
            raised_at=now + timedelta(minutes=minutes),
        )

    urgent_old = raise_flag("urgent", 1)
    info = raise_flag("info", 2)
    urgent_new = raise_flag("urgent", 3)
    client = client_for(staff["physician"])
    rows = client.get("/api/v1/flags?status=open").json()["results"]
    assert [r["id"] for r in rows] == [urgent_new.pk, urgent_old.pk, info.pk, flag.pk]
    # The order holds across cursor pages.
    first = client.get("/api/v1/flags?page_size=3").json()
    second = client.get(first["next"]).json()
    ids = [r["id"] for r in first["results"] + second["results"]]
    assert ids == [urgent_new.pk, urgent_old.pk, info.pk, flag.pk]


def test_acknowledging_then_resolving_a_flag(
    client_for, staff: dict[str, User], flag: Flag
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["coordinator"])
    acknowledged = client.post(f"/api/v1/flags/{flag.pk}/acknowledge", **new_key())
    assert acknowledged.status_code == 200, acknowledged.content
    assert acknowledged.json()["status"] == "acknowledged"
    assert_problem(
        client.post(f"/api/v1/flags/{flag.pk}/acknowledge", **new_key()), 409, "conflict"
    )
    assert client.get("/api/v1/flags?status=open").json()["results"] == []
    resolved = client.post(
        f"/api/v1/flags/{flag.pk}/resolve", {"outcome": "Seen"}, format="json", **new_key()
    )
    assert resolved.json()["status"] == "resolved"
    assert_problem(
        client.post(
            f"/api/v1/flags/{flag.pk}/resolve", {"outcome": "Seen"}, format="json", **new_key()
        ),
        409,
        "conflict",
    )
    assert_problem(
        client.post(f"/api/v1/flags/{flag.pk}/acknowledge", **new_key()), 409, "conflict"
    )
    flag.refresh_from_db()
    assert flag.status == "resolved"
    ok = AuditEvent.objects.filter(outcome="ok", patient_id=flag.patient_id)
    # The empty list named no patient: no row for this one.
    assert sorted(ok.values_list("action", flat=True)) == ["flag.acknowledge", "flag.resolve"]


def test_acknowledging_an_urgent_flag_needs_a_note_and_resolving_an_outcome(
    client_for, staff: dict[str, User], enrolment: Enrolment
) -> None:  # type: ignore[no-untyped-def]
    flag = flag_raise(
        enrolment=enrolment, code="phq9_item9", severity="urgent",
        message="PHQ-9 item 9 answered 2", raised_at=timezone.now(),
    )  # fmt: skip
    client = client_for(staff["coordinator"])
    url = f"/api/v1/flags/{flag.pk}"
    for body in (None, {"note": ""}, {"note": "   "}):
        refused = assert_problem(
            client.post(f"{url}/acknowledge", body, format="json", **new_key()),
            400,
            "invalid_input",
        )
        assert list(refused["errors"]) == ["note"]
    too_long = client.post(f"{url}/acknowledge", {"note": "x" * 2001}, format="json", **new_key())
    assert list(assert_problem(too_long, 400, "invalid_input")["errors"]) == ["note"]
    flag.refresh_from_db()
    assert (flag.status, flag.acknowledged_at, flag.acknowledged_by_id) == ("open", None, None)

    note = "Called the patient, safety plan reviewed"
    acknowledged = client.post(f"{url}/acknowledge", {"note": note}, format="json", **new_key())
    assert acknowledged.status_code == 200, acknowledged.content
    body = acknowledged.json()
    assert body["status"] == "acknowledged"
    assert body["acknowledged_by_id"] == staff["coordinator"].pk
    assert body["acknowledged_at"]
    assert body["acknowledged_note"] == note
    assert (body["resolved_at"], body["resolved_by_id"], body["resolved_outcome"]) == (
        None,
        None,
        "",
    )
    # Acknowledged is still unresolved: listed with the unresolved ones.
    listed = client.get("/api/v1/flags?status=acknowledged").json()["results"]
    assert [(r["id"], r["acknowledged_note"]) for r in listed] == [(flag.pk, note)]

    physician = client_for(staff["physician"])
    refused = assert_problem(
        physician.post(f"{url}/resolve", {"outcome": ""}, format="json", **new_key()),
        400,
        "invalid_input",
    )
    assert list(refused["errors"]) == ["outcome"]
    flag.refresh_from_db()
    assert (flag.status, flag.resolved_at) == ("acknowledged", None)
    resolved = physician.post(
        f"{url}/resolve", {"outcome": "Seen in clinic, safe"}, format="json", **new_key()
    )
    assert resolved.status_code == 200, resolved.content
    body = resolved.json()
    assert body["status"] == "resolved"
    assert body["resolved_by_id"] == staff["physician"].pk
    assert body["resolved_at"]
    assert body["resolved_outcome"] == "Seen in clinic, safe"
    assert body["acknowledged_note"] == note  # the acknowledgement is kept


def test_a_warning_may_be_acknowledged_without_a_note(
    client_for, staff: dict[str, User], flag: Flag
) -> None:  # type: ignore[no-untyped-def]
    response = client_for(staff["coordinator"]).post(
        f"/api/v1/flags/{flag.pk}/acknowledge", **new_key()
    )
    assert response.status_code == 200, response.content
    assert (response.json()["acknowledged_by_id"], response.json()["acknowledged_note"]) == (
        staff["coordinator"].pk, ""
    )  # fmt: skip
