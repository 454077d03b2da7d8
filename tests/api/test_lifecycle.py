"""An enrolment's life over the API: start, pause, resume, discharge; conflicts answer 409 with
the current state."""

from __future__ import annotations

from uuid import uuid4

import pytest

from carehub.accounts.models import User
from carehub.audit.models import AuditEvent
from carehub.checkins.models import Checkin, CheckinStatus
from carehub.pathways.models import Enrolment, PathwayStep, PathwayTimer, TimerStatus
from carehub.patients.models import Patient
from tests.api.conftest import assert_problem, open_checkin, to_conventional

pytestmark = pytest.mark.django_db


def start(client, patient: Patient, body: dict):  # type: ignore[no-untyped-def,type-arg]
    return client.post(
        f"/api/v1/patients/{patient.pk}/enrolments",
        body,
        format="json",
        HTTP_IDEMPOTENCY_KEY=uuid4().hex,
    )


def post(client, enrolment: Enrolment, action: str, body: dict | None = None, key: str = ""):  # type: ignore[no-untyped-def,type-arg]
    """A write with a new Idempotency-Key unless `key` names one."""
    return client.post(
        f"/api/v1/enrolments/{enrolment.public_id}/{action}",
        body or {},
        format="json",
        HTTP_IDEMPOTENCY_KEY=key or uuid4().hex,
    )


def test_a_coordinator_starts_a_patient_on_the_latest_version(
    client_for, staff: dict[str, User], patient: Patient
) -> None:  # type: ignore[no-untyped-def]
    response = start(
        client_for(staff["coordinator"]), patient, {"definition_key": "intractable-pain"}
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["definition_key"], body["definition_version"], body["status"]) == (
        "intractable-pain", 2, "active",
    )  # fmt: skip
    enrolment = Enrolment.objects.get(public_id=body["public_id"])
    assert enrolment.started_by == staff["coordinator"]
    assert {t["track"] for t in body["tracks"]} >= {"ladder", "physical_therapy"}
    assert AuditEvent.objects.filter(action="enrolment.start", patient=patient).count() == 1
    listed = client_for(staff["coordinator"]).get(f"/api/v1/patients/{patient.pk}/enrolments")
    assert [row["public_id"] for row in listed.json()["results"]] == [body["public_id"]]


def test_starting_twice_is_a_conflict_naming_the_open_enrolment(
    client_for, staff: dict[str, User], enrolment: Enrolment
) -> None:  # type: ignore[no-untyped-def]
    response = start(
        client_for(staff["physician"]),
        enrolment.patient,
        {"definition_key": enrolment.definition_key},
    )
    body = assert_problem(response, 409, "conflict")
    assert body["current"]["enrolment"] == str(enrolment.public_id)
    assert Enrolment.objects.filter(patient=enrolment.patient).count() == 1


def test_an_unknown_pathway_or_version_is_a_400_naming_the_field(
    client_for, staff: dict[str, User], patient: Patient
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["coordinator"])
    body = assert_problem(start(client, patient, {"definition_key": "nope"}), 400, "invalid_input")
    assert "definition_key" in body["errors"]
    body = assert_problem(
        start(client, patient, {"definition_key": "intractable-pain", "definition_version": 9}),
        400,
        "invalid_input",
    )
    assert "definition_key" in body["errors"]
    assert not Enrolment.objects.filter(patient=patient).exists()


def test_only_the_coordinator_and_physician_start_pause_and_discharge(
    client_for, staff: dict[str, User], enrolment: Enrolment
) -> None:  # type: ignore[no-untyped-def]
    for role in ("physical_therapist", "clinic_admin"):
        client = client_for(staff[role])
        assert_problem(
            start(client, enrolment.patient, {"definition_key": "intractable-pain"}),
            403,
            "not_permitted",
        )
        assert_problem(post(client, enrolment, "pause", {"reason": "x"}), 403, "not_permitted")
        assert_problem(post(client, enrolment, "discharge", {"reason": "x"}), 403, "not_permitted")
    # The role refused is still audited as denied, with the patient in the user's scope.
    denied = AuditEvent.objects.filter(action="enrolment.pause", outcome="denied")
    assert denied.filter(patient=enrolment.patient).count() == 2


def test_pause_needs_a_reason_suspends_timers_and_checkins_and_resume_restores_them(
    client_for, staff: dict[str, User], enrolment: Enrolment
) -> None:  # type: ignore[no-untyped-def]
    to_conventional(enrolment, staff["coordinator"])
    checkin = open_checkin(enrolment)
    client = client_for(staff["coordinator"])
    body = assert_problem(post(client, enrolment, "pause", {}), 400, "invalid_input")
    assert "reason" in body["errors"]

    paused = post(client, enrolment, "pause", {"reason": "Hospital stay"})
    assert paused.status_code == 200, paused.content
    assert paused.json()["status"] == "paused"
    assert paused.json()["available_events"] == {}
    assert not PathwayTimer.objects.filter(enrolment=enrolment, status=TimerStatus.PENDING).exists()
    checkin.refresh_from_db()
    assert checkin.status == CheckinStatus.SUSPENDED

    # A second pause is a conflict carrying the current state; events are refused while paused.
    again = assert_problem(post(client, enrolment, "pause", {"reason": "again"}), 409, "conflict")
    assert again["current"]["status"] == "paused"
    assert_problem(
        post(client, enrolment, "events", {"event": "intake_complete"}, key="e1"), 409, "conflict"
    )

    resumed = post(client, enrolment, "resume")
    assert resumed.status_code == 200
    assert resumed.json()["status"] == "active"
    assert PathwayTimer.objects.filter(enrolment=enrolment, status=TimerStatus.PENDING).exists()
    checkin.refresh_from_db()
    assert checkin.status == CheckinStatus.OPEN
    not_paused = assert_problem(post(client, enrolment, "resume"), 409, "conflict")
    assert not_paused["current"]["status"] == "active"
    events = [s.event for s in PathwayStep.objects.filter(enrolment=enrolment).order_by("id")]
    assert events[-2:] == ["paused", "resumed"]


def test_discharge_sends_the_pathways_discharge_event_with_the_reason(
    client_for, staff: dict[str, User], enrolment: Enrolment
) -> None:  # type: ignore[no-untyped-def]
    to_conventional(enrolment, staff["coordinator"])
    checkin = open_checkin(enrolment)
    client = client_for(staff["physician"])
    body = assert_problem(post(client, enrolment, "discharge", {}), 400, "invalid_input")
    assert "reason" in body["errors"]
    assert_problem(
        client.post(
            f"/api/v1/enrolments/{enrolment.public_id}/discharge", {"reason": "x"}, format="json"
        ),
        400,
        "invalid_input",
    )  # no Idempotency-Key

    response = post(client, enrolment, "discharge", {"reason": "Moved to another area"}, key="d1")
    assert response.status_code == 200, response.content
    result = response.json()
    assert (result["outcome"], result["step"]["event"]) == ("transitioned", "discharge")
    assert "Discharged: Moved to another area" in result["step"]["explanation"]["summary"]
    assert result["enrolment"]["status"] == "completed"
    enrolment.refresh_from_db()
    assert enrolment.status == "completed"
    step = PathwayStep.objects.filter(enrolment=enrolment).latest("id")
    assert step.actor == staff["physician"]
    assert step.explanation["notes"][0] == "Discharged: Moved to another area"
    # The check-in's outcome comes from the pathway's own effects (stop_checkins) through the
    # outbox; the enrolment no longer takes events.
    assert Checkin.objects.filter(pk=checkin.pk).exists()

    replay = post(client, enrolment, "discharge", {"reason": "Moved to another area"}, key="d1")
    assert replay.status_code == 200
    assert replay["Idempotent-Replayed"] == "true"
    ended = assert_problem(
        post(client, enrolment, "discharge", {"reason": "x"}, key="d2"), 409, "conflict"
    )
    assert ended["current"]["status"] == "completed"


def test_a_stale_expected_version_is_a_conflict(
    client_for, staff: dict[str, User], enrolment: Enrolment
) -> None:  # type: ignore[no-untyped-def]
    body = assert_problem(
        post(
            client_for(staff["coordinator"]),
            enrolment,
            "discharge",
            {"reason": "x", "expected_version": 0},
        ),
        409,
        "conflict",
    )
    assert body["current"]["version"] == enrolment.version
