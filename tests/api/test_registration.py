"""Registering and keeping patients, their care teams, tasks people create, assign and cancel, a
check-in opened early, and the rules behind them (the services every door calls)."""

from __future__ import annotations

from datetime import time, timedelta
from typing import Any
from uuid import uuid4

import pytest
from django.utils import timezone

from carehub.accounts.models import User
from carehub.checkins.models import Checkin, CheckinStatus
from carehub.checkins.services import checkin_series_start
from carehub.clinics.models import Clinic
from carehub.core.exceptions import Conflict, InvalidInput
from carehub.messaging.delivery import message_send
from carehub.messaging.models import Message, MessageStatus
from carehub.messaging.selectors import message_history
from carehub.messaging.services import PATIENT, message_enqueue
from carehub.pathways.models import Enrolment, PathwayTimer
from carehub.pathways.services import enrolment_discharge, enrolment_pause, enrolment_start
from carehub.patients.models import CareTeamMembership, Patient
from carehub.patients.services import patient_deactivate, patient_update
from carehub.worklists.models import CareTask
from carehub.worklists.services import care_task_add, care_task_assign, care_task_cancel
from tests.api.conftest import EXAMPLE_KEY, assert_problem, register

pytestmark = pytest.mark.django_db

NEW = {"mrn": "N-1", "given_name": "Nora", "family_name": "New", "time_zone": "Europe/Madrid"}


def post(client, url: str, body: dict[str, Any] | None = None, method: str = "post"):  # type: ignore[no-untyped-def]
    return getattr(client, method)(url, body or {}, format="json", HTTP_IDEMPOTENCY_KEY=uuid4().hex)


# --- registering ---------------------------------------------------------------------------------


def test_a_patient_is_registered_in_the_callers_clinic_only(
    client_for, staff: dict[str, User], outsider: User, other_clinic: Clinic
) -> None:  # type: ignore[no-untyped-def]
    response = post(client_for(staff["clinic_admin"]), "/api/v1/patients", {**NEW, "clinic": 999})
    assert response.status_code == 201, response.content
    patient = Patient.objects.get(pk=response.json()["id"])
    assert patient.clinic_id == staff["clinic_admin"].clinic_id
    assert (patient.language, patient.preferred_channel, patient.active) == ("en", "sms", True)
    # The other clinic's coordinator neither lists nor reaches her; the same MRN is free there.
    other = client_for(outsider)
    assert other.get("/api/v1/patients").json()["results"] == []
    assert_problem(other.get(f"/api/v1/patients/{patient.pk}"), 404, "not_found")
    assert post(other, "/api/v1/patients", NEW).status_code == 201
    assert Patient.objects.filter(mrn="N-1").count() == 2


@pytest.mark.parametrize("role", ["physician", "physical_therapist", "pharmacist"])
def test_only_the_front_office_registers_changes_and_deactivates(
    client_for, staff: dict[str, User], patient: Patient, role: str
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff[role])
    body = assert_problem(post(client, "/api/v1/patients", NEW), 403, "not_permitted")
    assert body["roles"] == ["clinic_admin", "coordinator"]
    url = f"/api/v1/patients/{patient.pk}"
    assert_problem(post(client, url, {"language": "es"}, "patch"), 403, "not_permitted")
    assert_problem(post(client, f"{url}/deactivate", {"reason": "x"}), 403, "not_permitted")
    patient.refresh_from_db()
    assert (patient.language, patient.active, Patient.objects.count()) == ("en", True, 1)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"phone": "07700 900123"}, "phone"),
        ({"language": "fr"}, "language"),
        ({"send_window_start": "21:00", "send_window_end": "08:00"}, "send_window_end"),
        ({"preferred_channel": "fax"}, "preferred_channel"),
    ],
)
def test_invalid_details_are_refused_naming_the_field_and_change_nothing(
    client_for, staff: dict[str, User], patient: Patient, changes: dict[str, str], field: str
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["coordinator"])
    before = Patient.objects.values().get(pk=patient.pk)
    body = assert_problem(
        post(client, f"/api/v1/patients/{patient.pk}", changes, "patch"), 400, "invalid_input"
    )
    assert field in body["errors"]
    assert Patient.objects.values().get(pk=patient.pk) == before
    body = assert_problem(
        post(client, "/api/v1/patients", {**NEW, **changes}), 400, "invalid_input"
    )
    assert field in body["errors"]
    assert Patient.objects.count() == 1


def test_details_change_and_the_change_is_audited(
    client_for, staff: dict[str, User], patient: Patient
) -> None:  # type: ignore[no-untyped-def]
    response = post(
        client_for(staff["coordinator"]),
        f"/api/v1/patients/{patient.pk}",
        {"language": "es", "phone": "+34600123456", "send_window_start": "10:00"},
        "patch",
    )
    assert response.status_code == 200, response.content
    assert response.json()["language"] == "es"
    patient.refresh_from_db()
    assert (patient.language, patient.phone, patient.send_window_start) == (
        "es", "+34600123456", time(10, 0),
    )  # fmt: skip
    assert patient.mrn == "T-1"
    from carehub.audit.models import AuditEvent

    event = AuditEvent.objects.filter(action="patient.update").get()
    assert (event.patient_id, event.outcome) == (patient.pk, "ok")
    assert event.detail["fields"] == ["language", "phone", "send_window_start"]


def test_the_staff_list_is_the_callers_clinic(
    client_for, staff: dict[str, User], outsider: User
) -> None:  # type: ignore[no-untyped-def]
    listed = client_for(staff["physician"]).get("/api/v1/staff").json()["results"]
    assert {row["id"] for row in listed} == {user.pk for user in staff.values()}
    physios = client_for(staff["coordinator"]).get("/api/v1/staff?role=physical_therapist")
    assert [row["id"] for row in physios.json()["results"]] == [staff["physical_therapist"].pk]
    assert [row["id"] for row in client_for(outsider).get("/api/v1/staff").json()["results"]] == [
        outsider.pk
    ]


# --- deactivating --------------------------------------------------------------------------------


def test_deactivation_is_refused_while_on_a_pathway_running_or_paused(
    staff: dict[str, User], patient: Patient
) -> None:
    enrolment = enrolment_start(patient=patient, definition_key=EXAMPLE_KEY)
    enrolment_pause(enrolment_id=enrolment.pk, reason="Hospital stay")
    with pytest.raises(Conflict) as refused:
        patient_deactivate(patient=patient, reason="Moved away")
    assert refused.value.extra["current"]["enrolments"] == [
        {"public_id": str(enrolment.public_id), "definition_key": EXAMPLE_KEY, "status": "paused"}
    ]
    patient.refresh_from_db()
    assert patient.active is True


def test_a_deactivated_patient_gets_no_message_and_is_not_enrolled(
    client_for, staff: dict[str, User], patient: Patient
) -> None:  # type: ignore[no-untyped-def]
    patient_update(patient=patient, send_window_start=time(0, 0), send_window_end=time(23, 59))
    enrolment = enrolment_start(patient=patient, definition_key=EXAMPLE_KEY)
    waiting = message_enqueue(
        patient=patient, recipient=PATIENT, purpose="pathway_notice", body="Your plan moved on.",
        idempotency_key="notice-1", why="test",
    )  # fmt: skip
    enrolment_discharge(
        enrolment=enrolment, reason="Moved away", idempotency_key="d", user=staff["physician"]
    )
    enrolment.refresh_from_db()
    assert enrolment.status == "completed"
    response = post(
        client_for(staff["coordinator"]),
        f"/api/v1/patients/{patient.pk}/deactivate",
        {"reason": "Care transferred"},
    )
    assert response.status_code == 200, response.content
    assert (response.json()["active"], response.json()["deactivation_reason"]) == (
        False, "Care transferred",
    )  # fmt: skip
    # What was still waiting is suppressed at its send time, saying why.
    assert message_send(message_id=waiting.pk) == MessageStatus.SUPPRESSED
    assert "deactivated" in message_history(message_id=waiting.pk)[-1].reason
    assert not Message.objects.filter(pk=waiting.pk, status=MessageStatus.SENT).exists()
    # Not enrolled again; deactivating again is a conflict; lists filter on it.
    with pytest.raises(Conflict):
        enrolment_start(patient=patient, definition_key=EXAMPLE_KEY)
    assert_problem(
        post(
            client_for(staff["coordinator"]),
            f"/api/v1/patients/{patient.pk}/deactivate",
            {"reason": "Again"},
        ),
        409,
        "conflict",
    )
    client = client_for(staff["coordinator"])
    assert client.get("/api/v1/patients?active=true").json()["results"] == []
    assert [p["id"] for p in client.get("/api/v1/patients?active=false").json()["results"]] == [
        patient.pk
    ]
    assert_problem(client.get("/api/v1/patients?active=maybe"), 400, "invalid_input")


def test_a_message_to_an_active_patient_is_still_sent(patient: Patient) -> None:
    """The control for the suppression above: the same message goes out while she is active."""
    patient_update(patient=patient, send_window_start=time(0, 0), send_window_end=time(23, 59))
    message = message_enqueue(
        patient=patient, recipient=PATIENT, purpose="pathway_notice", body="Your plan moved on.",
        idempotency_key="notice-1", why="test",
    )  # fmt: skip
    assert message_send(message_id=message.pk) == MessageStatus.SENT


# --- care teams ----------------------------------------------------------------------------------


def test_setting_the_care_team_ends_starts_and_marks_memberships(
    client_for, staff: dict[str, User], patient: Patient
) -> None:  # type: ignore[no-untyped-def]
    before = set(CareTeamMembership.objects.values_list("pk", flat=True))
    response = post(
        client_for(staff["physician"]),
        f"/api/v1/patients/{patient.pk}/care-team",
        {
            "members": [
                {"staff_id": staff["physician"].pk, "is_primary": True},
                {"staff_id": staff["pharmacist"].pk},
            ]
        },
        "put",
    )
    assert response.status_code == 200, response.content
    team = {(m["role"], m["is_primary"]) for m in response.json()["care_team"]}
    assert team == {("physician", True), ("pharmacist", False)}
    active = CareTeamMembership.objects.filter(patient=patient, ended_at__isnull=True)
    assert {m.staff.role for m in active} == {"physician", "pharmacist"}
    # The coordinator's and physio's memberships ended (kept), the physician's stayed the same row.
    ended = CareTeamMembership.objects.filter(patient=patient, ended_at__isnull=False)
    assert {m.staff.role for m in ended} == {"coordinator", "physical_therapist"}
    assert active.get(staff=staff["physician"]).pk in before
    # The pharmacist now sees her; the physio no longer does.
    assert client_for(staff["pharmacist"]).get(f"/api/v1/patients/{patient.pk}").status_code == 200
    assert_problem(
        client_for(staff["physical_therapist"]).get(f"/api/v1/patients/{patient.pk}"),
        404,
        "not_found",
    )


@pytest.mark.parametrize(
    "members",
    [
        "twice",
        "two primaries",
        "outsider",
        "unknown",
        "a patient account",
    ],
)
def test_an_invalid_care_team_is_refused_and_changes_nothing(
    client_for, staff: dict[str, User], patient: Patient, outsider: User, members: str
) -> None:  # type: ignore[no-untyped-def]
    from carehub.patients.services import patient_account_create

    physician, nurse = staff["physician"].pk, staff["coordinator"].pk
    body = {
        "twice": [{"staff_id": physician}, {"staff_id": physician}],
        "two primaries": [
            {"staff_id": physician, "is_primary": True},
            {"staff_id": nurse, "is_primary": True},
        ],
        "outsider": [{"staff_id": outsider.pk}],
        "unknown": [{"staff_id": 987654}],
        "a patient account": [
            {"staff_id": patient_account_create(patient=patient, username="p", password=None).pk}
        ],
    }[members]
    before = list(CareTeamMembership.objects.values())
    response = post(
        client_for(staff["coordinator"]),
        f"/api/v1/patients/{patient.pk}/care-team",
        {"members": body},
        "put",
    )
    assert "members" in assert_problem(response, 400, "invalid_input")["errors"]
    assert list(CareTeamMembership.objects.values()) == before


# --- tasks ---------------------------------------------------------------------------------------


def test_a_task_is_created_assigned_within_its_discipline_and_cancelled(
    staff: dict[str, User], enrolment: Enrolment
) -> None:
    patient = enrolment.patient
    task = care_task_add(
        patient=patient, discipline="pharmacist", title="Review doses", enrolment=enrolment
    )
    with pytest.raises(Conflict):  # an equal open task of the enrolment
        care_task_add(
            patient=patient, discipline="pharmacist", title="Review doses", enrolment=enrolment
        )
    with pytest.raises(InvalidInput) as wrong:
        care_task_assign(task=task, assignee=staff["physician"])
    assert "staff_id" in wrong.value.extra["fields"]
    care_task_assign(task=task, assignee=staff["pharmacist"])
    task.refresh_from_db()
    assert task.assigned_to_id == staff["pharmacist"].pk
    with pytest.raises(InvalidInput):
        care_task_cancel(task=task, reason="  ")
    care_task_cancel(task=task, reason="Reviewed by phone", user=staff["pharmacist"])
    task.refresh_from_db()
    assert (task.status, task.closed_reason, task.completed_by_id) == (
        "cancelled", "Reviewed by phone", staff["pharmacist"].pk,
    )  # fmt: skip
    with pytest.raises(Conflict):
        care_task_cancel(task=task, reason="Again")
    with pytest.raises(Conflict):
        care_task_assign(task=task, assignee=None)
    other = register(enrolment.clinic, "X-1")
    with pytest.raises(InvalidInput):  # another patient's enrolment
        care_task_add(patient=other, discipline="pharmacist", title="T", enrolment=enrolment)
    with pytest.raises(InvalidInput):
        care_task_add(patient=patient, discipline="patient", title="T")


def test_a_task_created_over_the_api_names_a_foreign_enrolment_as_invalid(
    client_for, staff: dict[str, User], patient: Patient, foreign_enrolment: Enrolment
) -> None:  # type: ignore[no-untyped-def]
    response = post(
        client_for(staff["coordinator"]),
        f"/api/v1/patients/{patient.pk}/tasks",
        {
            "discipline": "coordinator",
            "title": "Call",
            "enrolment": str(foreign_enrolment.public_id),
        },
    )
    assert "enrolment" in assert_problem(response, 400, "invalid_input")["errors"]
    assert not CareTask.objects.filter(patient=patient).exists()


# --- opening a check-in now ----------------------------------------------------------------------


def _scheduled(enrolment: Enrolment) -> Checkin:
    series = checkin_series_start(
        enrolment=enrolment,
        series="peg",
        instrument="peg",
        every=timedelta(weeks=1),
        at=timezone.now() + timedelta(days=2),
    )
    checkin = series.checkins.get()
    assert checkin.status == CheckinStatus.SCHEDULED
    return checkin


def test_a_scheduled_checkin_opens_now_and_sends_its_request(
    client_for, staff: dict[str, User], enrolment: Enrolment
) -> None:  # type: ignore[no-untyped-def]
    checkin = _scheduled(enrolment)
    closes_at = checkin.closes_at
    response = post(client_for(staff["physician"]), f"/api/v1/checkins/{checkin.pk}/open")
    assert response.status_code == 200, response.content
    checkin.refresh_from_db()
    assert checkin.status == CheckinStatus.OPEN
    assert checkin.due_at <= timezone.now() < checkin.closes_at == closes_at
    assert Message.objects.filter(patient=enrolment.patient, purpose="checkin_request").exists()
    # Open already: 409 with its state.
    again = post(client_for(staff["physician"]), f"/api/v1/checkins/{checkin.pk}/open")
    assert assert_problem(again, 409, "conflict")["current"]["status"] == "open"


def test_a_checkin_of_a_paused_pathway_does_not_open(
    client_for, staff: dict[str, User], enrolment: Enrolment
) -> None:  # type: ignore[no-untyped-def]
    checkin = _scheduled(enrolment)
    enrolment_pause(enrolment_id=enrolment.pk, reason="Hospital stay")
    response = post(client_for(staff["coordinator"]), f"/api/v1/checkins/{checkin.pk}/open")
    assert_problem(response, 409, "conflict")
    checkin.refresh_from_db()
    assert checkin.status == CheckinStatus.SUSPENDED
    assert not Message.objects.filter(patient=enrolment.patient).exists()


# --- what a pathway waits for --------------------------------------------------------------------


def test_timers_and_next_due_read_in_a_constant_number_of_queries(
    client_for, staff: dict[str, User], enrolment: Enrolment, django_assert_max_num_queries
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["coordinator"])
    url = f"/api/v1/enrolments/{enrolment.public_id}"
    with django_assert_max_num_queries(12):
        few = client.get(f"{url}/next-due").json()["items"]
    for n in range(5):
        care_task_add(patient=enrolment.patient, discipline="coordinator", title=f"T{n}",
                      enrolment=enrolment, due_at=timezone.now() + timedelta(days=n))  # fmt: skip
    _scheduled(enrolment)
    with django_assert_max_num_queries(12):
        many = client.get(f"{url}/next-due").json()["items"]
    assert len(many) == len(few) + 6
    timers = client.get(f"{url}/timers").json()["timers"]
    assert {t["key"] for t in timers} == set(
        PathwayTimer.objects.filter(enrolment=enrolment, status="pending").values_list(
            "key", flat=True
        )
    )
    # A patient may not read them (clinical), nor the facts.
    from carehub.patients.services import patient_account_create

    account = patient_account_create(patient=enrolment.patient, username="pt", password=None)
    for path in ("facts", "timers", "next-due"):
        assert_problem(client_for(account).get(f"{url}/{path}"), 403, "not_permitted")


@pytest.mark.django_db(transaction=True)
def test_an_enrolment_does_not_start_while_the_patient_is_being_deactivated(
    clinic: Clinic,
) -> None:
    """Deactivation and enrolment lock the patient's row: an enrolment starting meanwhile waits
    for the deactivation to commit, then is refused, so no inactive patient runs a pathway."""
    import threading

    from django.db import connection, transaction

    patient = register(clinic, "C-1")
    locked, release = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    def deactivate() -> None:
        try:
            with transaction.atomic():
                patient_deactivate(patient=patient, reason="Moved away")
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    def enrol() -> None:
        try:
            enrolment_start(patient=patient, definition_key=EXAMPLE_KEY)
            outcome["result"] = "enrolled"
        except Conflict:
            outcome["result"] = "refused"
        finally:
            connection.close()

    first = threading.Thread(target=deactivate)
    first.start()
    assert locked.wait(10)
    second = threading.Thread(target=enrol)
    second.start()
    second.join(1.0)
    assert second.is_alive(), "the enrolment did not wait for the deactivation's lock"
    release.set()
    first.join(10)
    second.join(10)
    assert outcome == {"result": "refused"}
    assert not Enrolment.objects.filter(patient=patient).exists()
