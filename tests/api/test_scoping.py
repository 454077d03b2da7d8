"""Scoping: staff see their clinic only; therapists, psychologists and pharmacists only the
patients whose care team includes them. Outside the scope is 404, and absent from lists."""

from __future__ import annotations

import re

import pytest
from django.urls import resolve
from django.utils import timezone

from carehub.accounts.models import User
from carehub.care_access import OPERATIONS, Operation, can
from carehub.checkins.models import Checkin
from carehub.messaging.models import Message
from carehub.observations.models import Observation
from carehub.pathways.models import Enrolment, Proposal
from carehub.patients.models import CareTeamMembership, Patient
from carehub.patients.services import care_team_end
from carehub.worklists.models import CareTask, Flag
from tests.api.conftest import assert_problem

pytestmark = pytest.mark.django_db


# What the scoping tests below cover (tests/api/test_scope_coverage.py checks it against the
# OpenAPI schema, so a new operation needs its scoping test).
OBJECT_OPERATIONS = {
    ("get", "/api/v1/patients/{id}"),
    ("get", "/api/v1/patients/{id}/enrolments"),
    ("get", "/api/v1/enrolments/{id}"),
    ("get", "/api/v1/enrolments/{id}/timeline"),
    ("post", "/api/v1/enrolments/{id}/events"),
    ("post", "/api/v1/proposals/{id}/approve"),
    ("post", "/api/v1/proposals/{id}/reject"),
    ("post", "/api/v1/tasks/{id}/complete"),
    ("post", "/api/v1/flags/{id}/acknowledge"),
    ("post", "/api/v1/flags/{id}/resolve"),
    ("post", "/api/v1/patients/{id}/enrolments"),
    ("post", "/api/v1/enrolments/{id}/pause"),
    ("post", "/api/v1/enrolments/{id}/resume"),
    ("post", "/api/v1/enrolments/{id}/discharge"),
    ("post", "/api/v1/enrolments/{id}/migration/rollback"),
    ("get", "/api/v1/patients/{id}/checkins"),
    ("get", "/api/v1/checkins/{id}"),
    ("post", "/api/v1/checkins/{id}/answers"),
    ("get", "/api/v1/patients/{id}/observations"),
    ("post", "/api/v1/patients/{id}/procedures"),
    ("post", "/api/v1/patients/{id}/sessions"),
    ("post", "/api/v1/patients/{id}/scores"),
    ("post", "/api/v1/observations/{id}/result"),
    ("get", "/api/v1/patients/{id}/messages"),
    ("post", "/api/v1/messages/{id}/resend"),
    # Connecting a clinic's systems.
    ("patch", "/api/v1/patients/{id}"),
    ("post", "/api/v1/patients/{id}/deactivate"),
    ("put", "/api/v1/patients/{id}/care-team"),
    ("post", "/api/v1/patients/{id}/pain-onset"),
    ("post", "/api/v1/patients/{id}/conservative-care-start"),
    ("post", "/api/v1/patients/{id}/failed-treatments"),
    ("post", "/api/v1/patients/{id}/psych-evaluations"),
    ("post", "/api/v1/patients/{id}/statuses"),
    ("get", "/api/v1/patients/{id}/medications"),
    ("post", "/api/v1/patients/{id}/medications"),
    ("post", "/api/v1/observations/{id}/withdraw"),
    ("get", "/api/v1/enrolments/{id}/facts"),
    ("get", "/api/v1/enrolments/{id}/timers"),
    ("get", "/api/v1/enrolments/{id}/next-due"),
    ("post", "/api/v1/patients/{id}/tasks"),
    ("post", "/api/v1/tasks/{id}/assign"),
    ("post", "/api/v1/tasks/{id}/cancel"),
    ("post", "/api/v1/checkins/{id}/open"),
}
LIST_OPERATIONS = {
    ("get", "/api/v1/patients"),
    ("get", "/api/v1/proposals"),
    ("get", "/api/v1/tasks"),
    ("get", "/api/v1/flags"),
    ("get", "/api/v1/messages/dead"),
}
# Clinic configuration: no patient, but another clinic's rows are neither listed nor changed
# (test_thresholds.py).
CLINIC_OPERATIONS = {
    # The change feed and webhook receivers: tests/api/test_integrations.py.
    ("get", "/api/v1/events"),
    ("get", "/api/v1/webhooks"),
    ("post", "/api/v1/webhooks"),
    ("get", "/api/v1/webhooks/{id}"),
    ("patch", "/api/v1/webhooks/{id}"),
    ("get", "/api/v1/webhooks/{id}/deliveries"),
    ("post", "/api/v1/webhook-deliveries/{id}/resend"),
    ("get", "/api/v1/thresholds"),
    ("put", "/api/v1/thresholds/{id}/{id}"),
    # A patient is registered in the caller's own clinic, whatever the body says
    # (test_registration.py).
    ("post", "/api/v1/patients"),
    # The clinic's staff: another clinic's are not listed (test_registration.py).
    ("get", "/api/v1/staff"),
    # The caller's own clinic's test clock, never another's: a production clinic's admin gets
    # not_a_sandbox, a sandbox's advance leaves every other clinic alone (test_test_clock.py).
    ("get", "/api/v1/clinic/test-clock"),
    ("post", "/api/v1/clinic/test-clock/advance"),
    # Migrations report and apply the caller's clinic's enrolments only, even when another
    # clinic's are listed (test_migrations_api.py).
    ("get", "/api/v1/pathways/{id}/migrations/{id}/{id}"),
    ("post", "/api/v1/pathways/{id}/migrations/{id}/{id}/apply"),
}


def templated(url: str) -> str:
    return re.sub(r"/(\d+|[0-9a-f-]{36})(?=/|$)", "/{id}", url)


def detail_requests(
    enrolment: Enrolment,
    proposal: Proposal,
    task: CareTask,
    flag: Flag,
    checkin: Checkin,
    procedure: Observation,
    message: Message,
) -> list[tuple[str, str, dict]]:  # type: ignore[type-arg]
    patient_id = enrolment.patient_id
    public_id = enrolment.public_id
    now = timezone.now().isoformat()
    return [
        ("get", f"/api/v1/patients/{patient_id}", {}),
        ("get", f"/api/v1/patients/{patient_id}/enrolments", {}),
        ("get", f"/api/v1/enrolments/{public_id}", {}),
        ("get", f"/api/v1/enrolments/{public_id}/timeline", {}),
        ("post", f"/api/v1/enrolments/{public_id}/events", {"event": "discharge"}),
        ("post", f"/api/v1/proposals/{proposal.pk}/approve", {}),
        ("post", f"/api/v1/proposals/{proposal.pk}/reject", {"reason": "No"}),
        ("post", f"/api/v1/tasks/{task.pk}/complete", {}),
        ("post", f"/api/v1/flags/{flag.pk}/acknowledge", {}),
        ("post", f"/api/v1/flags/{flag.pk}/resolve", {"outcome": "Seen"}),
        (
            "post",
            f"/api/v1/patients/{patient_id}/enrolments",
            {"definition_key": "intractable-pain"},
        ),
        ("post", f"/api/v1/enrolments/{public_id}/pause", {"reason": "Hospital stay"}),
        ("post", f"/api/v1/enrolments/{public_id}/resume", {}),
        ("post", f"/api/v1/enrolments/{public_id}/discharge", {"reason": "Moved away"}),
        ("post", f"/api/v1/enrolments/{public_id}/migration/rollback", {}),
        ("get", f"/api/v1/patients/{patient_id}/checkins", {}),
        ("get", f"/api/v1/checkins/{checkin.pk}", {}),
        (
            "post",
            f"/api/v1/checkins/{checkin.pk}/answers",
            {"answers": {"pain": 5, "enjoyment": 5, "activity": 5}},
        ),
        ("get", f"/api/v1/patients/{patient_id}/observations", {}),
        (
            "post",
            f"/api/v1/patients/{patient_id}/procedures",
            {"procedure": "esi", "performed_at": now},
        ),
        (
            "post",
            f"/api/v1/patients/{patient_id}/sessions",
            {"discipline": "pt", "attended": True, "observed_at": now},
        ),
        (
            "post",
            f"/api/v1/patients/{patient_id}/scores",
            {"instrument": "odi", "score": 40, "observed_at": now},
        ),
        (
            "post",
            f"/api/v1/observations/{procedure.pk}/result",
            {"relief_pct": 80, "assessed_at": now},
        ),
        ("get", f"/api/v1/patients/{patient_id}/messages", {}),
        ("post", f"/api/v1/messages/{message.pk}/resend", {}),
        ("patch", f"/api/v1/patients/{patient_id}", {"time_zone": "Europe/Paris"}),
        ("post", f"/api/v1/patients/{patient_id}/deactivate", {"reason": "Moved"}),
        ("put", f"/api/v1/patients/{patient_id}/care-team", {"members": []}),
        ("post", f"/api/v1/patients/{patient_id}/pain-onset", {"onset": "2024-01-01"}),
        (
            "post",
            f"/api/v1/patients/{patient_id}/conservative-care-start",
            {"started": "2024-01-01"},
        ),
        (
            "post",
            f"/api/v1/patients/{patient_id}/failed-treatments",
            {"treatment_class": "nsaid", "reason": "adverse_effect", "observed_at": now},
        ),
        (
            "post",
            f"/api/v1/patients/{patient_id}/psych-evaluations",
            {"outcome": "cleared", "observed_at": now},
        ),
        (
            "post",
            f"/api/v1/patients/{patient_id}/statuses",
            {"code": "naloxone_offered", "value": True, "observed_at": now},
        ),
        ("get", f"/api/v1/patients/{patient_id}/medications", {}),
        (
            "post",
            f"/api/v1/patients/{patient_id}/medications",
            {"drug": "oxycodone", "daily_dose": 10, "unit": "mg", "observed_at": now},
        ),
        ("post", f"/api/v1/observations/{procedure.pk}/withdraw", {"reason": "Wrong patient"}),
        ("get", f"/api/v1/enrolments/{public_id}/facts", {}),
        ("get", f"/api/v1/enrolments/{public_id}/timers", {}),
        ("get", f"/api/v1/enrolments/{public_id}/next-due", {}),
        (
            "post",
            f"/api/v1/patients/{patient_id}/tasks",
            {"discipline": "coordinator", "title": "Call"},
        ),
        ("post", f"/api/v1/tasks/{task.pk}/assign", {"staff_id": None}),
        ("post", f"/api/v1/tasks/{task.pk}/cancel", {"reason": "Not needed"}),
        ("post", f"/api/v1/checkins/{checkin.pk}/open", {}),
    ]


def snapshot(enrolment: Enrolment) -> tuple[int, int, int, int]:
    enrolment.refresh_from_db()
    patient_id = enrolment.patient_id
    return (
        enrolment.version,
        Observation.objects.filter(patient_id=patient_id).count(),
        CareTeamMembership.objects.filter(patient_id=patient_id, ended_at__isnull=True).count(),
        CareTask.objects.filter(patient_id=patient_id).count(),
    )


def unchanged(
    enrolment: Enrolment,
    before: tuple[int, int, int, int],
    checkin: Checkin,
    procedure: Observation,
    message: Message,
) -> None:
    """Nothing the refused requests named was changed, and nothing was recorded."""
    enrolment.refresh_from_db()
    assert (enrolment.status, enrolment.version) == ("active", before[0])
    assert Enrolment.objects.filter(patient_id=enrolment.patient_id).count() == 1
    checkin.refresh_from_db()
    assert checkin.status == "open"
    assert Observation.objects.filter(patient_id=enrolment.patient_id).count() == before[1]
    assert not Observation.objects.filter(corrects=procedure).exists()
    message.refresh_from_db()
    assert message.status == "dead"
    patient = Patient.objects.get(pk=enrolment.patient_id)
    assert (patient.active, patient.time_zone) == (True, "Europe/London")
    assert patient.care_team.filter(ended_at__isnull=True).count() == before[2]
    assert CareTask.objects.filter(patient=patient).count() == before[3]
    assert not CareTask.objects.filter(patient=patient).exclude(status="open").exists()


def operation_of(method: str, url: str) -> Operation:
    view = resolve(url).func.view_class  # type: ignore[attr-defined]
    by_method = getattr(view, "method_operations", {})
    return by_method[method.upper()][0] if method.upper() in by_method else view.operation


def assert_refused(user: User, response, method: str, url: str) -> None:  # type: ignore[no-untyped-def]
    """Outside the scope: 404. A role the matrix refuses is told so first (403), before any
    lookup, so that answer says nothing about the object either."""
    if can(user, operation_of(method, url)):
        assert_problem(response, 404, "not_found")
    else:
        assert_problem(response, 403, "not_permitted")


def call(client, method: str, url: str, data: dict):  # type: ignore[no-untyped-def,type-arg]
    if method == "get":
        return client.get(url)
    return getattr(client, method)(url, data, format="json", HTTP_IDEMPOTENCY_KEY="scope-test")


@pytest.mark.parametrize("role", ["coordinator", "physician"])
def test_another_clinics_objects_are_not_found(
    client_for,
    staff: dict[str, User],
    foreign_enrolment: Enrolment,
    foreign_task: CareTask,
    foreign_flag: Flag,
    foreign_checkin: Checkin,
    foreign_procedure: Observation,
    foreign_message: Message,
    role: str,
) -> None:  # type: ignore[no-untyped-def]
    proposal = Proposal.objects.get(enrolment=foreign_enrolment)
    version = snapshot(foreign_enrolment)
    client = client_for(staff[role])
    for method, url, data in detail_requests(
        foreign_enrolment,
        proposal,
        foreign_task,
        foreign_flag,
        foreign_checkin,
        foreign_procedure,
        foreign_message,
    ):
        assert_refused(staff[role], call(client, method, url, data), method, url)
    unchanged(foreign_enrolment, version, foreign_checkin, foreign_procedure, foreign_message)
    foreign_enrolment.refresh_from_db()
    assert foreign_enrolment.state_of("ladder") == "conventional"
    proposal.refresh_from_db()
    assert proposal.status == "pending"
    foreign_task.refresh_from_db()
    assert foreign_task.status == "open"
    foreign_flag.refresh_from_db()
    assert foreign_flag.status == "open"


def test_another_clinics_rows_are_absent_from_lists(
    client_for,
    staff: dict[str, User],
    patient: Patient,
    proposal: Proposal,
    task: CareTask,
    flag: Flag,
    foreign_task: CareTask,
    foreign_flag: Flag,
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["coordinator"])
    patients = client.get("/api/v1/patients").json()["results"]
    assert [p["id"] for p in patients] == [patient.pk]
    proposals = client.get("/api/v1/proposals?status=pending").json()["results"]
    assert [p["id"] for p in proposals] == [proposal.pk]
    assert client.get("/api/v1/patients?search=Oscar").json()["results"] == []
    # The foreign task is on the coordinator's worklist of the other clinic.
    assert client.get("/api/v1/tasks").json()["results"] == []
    tasks = client.get("/api/v1/tasks?discipline=all&status=all").json()["results"]
    assert [t["id"] for t in tasks] == [task.pk]
    flags = client.get("/api/v1/flags").json()["results"]
    assert [f["id"] for f in flags] == [flag.pk]


def test_another_clinics_dead_messages_are_absent(
    client_for, staff: dict[str, User], message: Message, foreign_message: Message
) -> None:  # type: ignore[no-untyped-def]
    for role in ("coordinator", "clinic_admin"):
        dead = client_for(staff[role]).get("/api/v1/messages/dead").json()["results"]
        assert [m["id"] for m in dead] == [message.pk]


def test_therapist_not_on_the_care_team_gets_not_found(
    client_for,
    staff: dict[str, User],
    proposal: Proposal,
    task: CareTask,
    flag: Flag,
    checkin: Checkin,
    procedure: Observation,
    message: Message,
) -> None:  # type: ignore[no-untyped-def]
    enrolment = proposal.enrolment
    version = snapshot(enrolment)
    for role in ("psychologist", "pharmacist"):
        client = client_for(staff[role])
        for method, url, data in detail_requests(
            enrolment, proposal, task, flag, checkin, procedure, message
        ):
            assert_refused(staff[role], call(client, method, url, data), method, url)
        assert client.get("/api/v1/messages/dead").status_code == 403  # not their job
        assert client.get("/api/v1/patients").json()["results"] == []
        assert client.get("/api/v1/proposals").json()["results"] == []
        assert client.get("/api/v1/tasks?discipline=all&status=all").json()["results"] == []
        assert client.get("/api/v1/flags").json()["results"] == []
    unchanged(enrolment, version, checkin, procedure, message)


def test_therapist_on_the_care_team_sees_the_patient_until_the_membership_ends(
    client_for, staff: dict[str, User], enrolment: Enrolment
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["physical_therapist"])
    patient_id = enrolment.patient_id
    assert client.get(f"/api/v1/patients/{patient_id}").status_code == 200
    assert client.get(f"/api/v1/enrolments/{enrolment.public_id}").status_code == 200
    membership = enrolment.patient.care_team.get(staff=staff["physical_therapist"])
    care_team_end(membership=membership)
    assert_problem(client.get(f"/api/v1/patients/{patient_id}"), 404, "not_found")
    assert client.get("/api/v1/patients").json()["results"] == []


def test_clinic_wide_roles_see_patients_they_are_not_on_the_team_of(
    client_for, staff: dict[str, User], patient: Patient
) -> None:  # type: ignore[no-untyped-def]
    # The clinic admin is on no care team.
    response = client_for(staff["clinic_admin"]).get(f"/api/v1/patients/{patient.pk}")
    assert response.status_code == 200
    assert {m["role"] for m in response.json()["care_team"]} == {
        "coordinator", "physician", "physical_therapist",
    }  # fmt: skip


def test_the_matrix_covers_every_operation_and_keeps_clinical_acts_from_the_admin(
    staff: dict[str, User],
) -> None:
    assert set(OPERATIONS) == set(Operation)
    assert not can(staff["clinic_admin"], Operation.ENROLMENT_EVENT_SEND)
    assert not can(staff["clinic_admin"], Operation.PROPOSAL_DECIDE)
    assert not can(staff["clinic_admin"], Operation.TASK_COMPLETE)
    assert not can(staff["clinic_admin"], Operation.FLAG_UPDATE)
    assert can(staff["pharmacist"], Operation.TASK_LIST)
    assert can(staff["clinic_admin"], Operation.PATHWAY_VIEW)
    assert can(staff["physician"], Operation.PROPOSAL_DECIDE)
    assert can(staff["pharmacist"], Operation.PATIENT_LIST)


def test_staff_without_a_clinic_role_see_nothing(client_for, patient: Patient) -> None:  # type: ignore[no-untyped-def]
    operator = User.objects.create_superuser("operator", password=None)
    client = client_for(operator)
    assert_problem(client.get("/api/v1/patients"), 403, "not_permitted")
    assert_problem(client.get(f"/api/v1/patients/{patient.pk}"), 403, "not_permitted")


def test_the_object_requests_are_the_declared_operations(
    proposal: Proposal,
    task: CareTask,
    flag: Flag,
    checkin: Checkin,
    procedure: Observation,
    message: Message,
) -> None:
    requests = detail_requests(
        proposal.enrolment, proposal, task, flag, checkin, procedure, message
    )
    assert {(method, templated(url)) for method, url, _ in requests} == OBJECT_OPERATIONS
