"""Patient accounts: a patient sees only their own record, never anyone else's nor the clinic's
worklists, and the account can be created only once, with a valid password."""

from __future__ import annotations

import pytest
from django.utils import timezone

from carehub.accounts.models import Role, User
from carehub.care_access import OPERATIONS, Operation, can, patients_visible_to
from carehub.core.exceptions import InvalidInput
from carehub.observations.services import score_record
from carehub.pathways.models import Enrolment, Proposal
from carehub.patients.models import Patient
from carehub.patients.services import care_team_add, patient_account_create
from tests.api.conftest import PASSWORD, assert_problem, new_key, register

pytestmark = pytest.mark.django_db


@pytest.fixture
def patient_user(patient: Patient) -> User:
    return patient_account_create(patient=patient, username="alice", password=PASSWORD)


def test_the_account_is_a_patient_of_the_patients_clinic(
    patient: Patient, patient_user: User
) -> None:
    patient.refresh_from_db()
    assert patient.user == patient_user
    assert patient_user.role == Role.PATIENT
    assert patient_user.clinic_id == patient.clinic_id
    assert not patient_user.is_staff
    assert patient_user.check_password(PASSWORD)


def test_a_patient_sees_only_themselves(client_for, patient: Patient, patient_user: User) -> None:  # type: ignore[no-untyped-def]
    neighbour = register(patient.clinic, "T-2", "Bob", "Brown")
    assert list(patients_visible_to(patient_user)) == [patient]

    client = client_for(patient_user)
    listed = client.get("/api/v1/patients").json()["results"]
    assert [row["id"] for row in listed] == [patient.pk]
    assert client.get(f"/api/v1/patients/{patient.pk}").status_code == 200
    assert_problem(client.get(f"/api/v1/patients/{neighbour.pk}"), 404, "not_found")


def test_a_patient_sees_their_enrolment_but_not_another_patients(  # type: ignore[no-untyped-def]
    client_for, enrolment: Enrolment, patient_user: User, foreign_enrolment: Enrolment
) -> None:
    client = client_for(patient_user)
    assert client.get(f"/api/v1/enrolments/{enrolment.public_id}").status_code == 200
    assert_problem(
        client.get(f"/api/v1/enrolments/{foreign_enrolment.public_id}"), 404, "not_found"
    )


def test_a_patient_cannot_act_on_the_pathway_nor_see_worklists(  # type: ignore[no-untyped-def]
    client_for, proposal: Proposal, patient_user: User
) -> None:
    client = client_for(patient_user)
    for url in ("/api/v1/proposals", "/api/v1/tasks", "/api/v1/flags"):
        assert_problem(client.get(url), 403, "not_permitted")
    assert_problem(
        client.post(
            f"/api/v1/proposals/{proposal.pk}/approve", {"reason": "me"}, format="json", **new_key()
        ),
        403,
        "not_permitted",
    )
    assert_problem(
        client.post(
            f"/api/v1/enrolments/{proposal.enrolment.public_id}/events",
            {"event": "esi_requested"},
            format="json",
            HTTP_IDEMPOTENCY_KEY="k1",
        ),
        403,
        "not_permitted",
    )
    clinical_acts = {
        Operation.ENROLMENT_EVENT_SEND,
        Operation.PROPOSAL_DECIDE,
        Operation.PROPOSAL_LIST,
        Operation.TASK_LIST,
        Operation.TASK_COMPLETE,
        Operation.FLAG_LIST,
        Operation.FLAG_UPDATE,
    }
    assert not any(can(patient_user, op) for op in clinical_acts)
    assert all(Role.PATIENT not in OPERATIONS[op] for op in clinical_acts)


def test_a_patient_account_without_a_record_sees_nothing(client_for, patient: Patient) -> None:  # type: ignore[no-untyped-def]
    stray = User.objects.create_user(
        "stray", password=PASSWORD, role=Role.PATIENT, clinic=patient.clinic
    )
    assert client_for(stray).get("/api/v1/patients").json()["results"] == []


def test_the_account_is_created_once_with_a_valid_password(patient: Patient) -> None:
    with pytest.raises(InvalidInput) as weak:
        patient_account_create(patient=patient, username="alice", password="123")
    assert weak.value.extra["field"] == "password"
    assert not User.objects.filter(username="alice").exists()

    patient_account_create(patient=patient, username="alice", password=None)
    with pytest.raises(InvalidInput):
        patient_account_create(patient=patient, username="alice2", password=PASSWORD)
    assert User.objects.filter(role=Role.PATIENT).count() == 1


def test_a_patient_account_cannot_join_a_care_team(patient: Patient, patient_user: User) -> None:
    other = register(patient.clinic, "T-3", "Carl", "Clark")
    with pytest.raises(InvalidInput):
        care_team_add(patient=other, staff=patient_user)


def test_a_patient_lists_shows_and_answers_their_own_checkins_only(  # type: ignore[no-untyped-def]
    client_for, patient_user: User, checkin, foreign_checkin
) -> None:
    client = client_for(patient_user)
    listed = client.get(f"/api/v1/patients/{checkin.patient_id}/checkins").json()["results"]
    assert [row["id"] for row in listed] == [checkin.pk]
    assert client.get(f"/api/v1/checkins/{checkin.pk}").status_code == 200
    for url in (
        f"/api/v1/checkins/{foreign_checkin.pk}",
        f"/api/v1/patients/{foreign_checkin.patient_id}/checkins",
    ):
        assert_problem(client.get(url), 404, "not_found")
    answers = {"answers": {"pain": 3, "enjoyment": 3, "activity": 3}}
    assert_problem(
        client.post(
            f"/api/v1/checkins/{foreign_checkin.pk}/answers", answers, format="json", **new_key()
        ),
        404,
        "not_found",
    )
    response = client.post(
        f"/api/v1/checkins/{checkin.pk}/answers", answers, format="json", **new_key()
    )
    assert response.status_code == 201


def test_a_patient_sees_the_instruments_and_their_own_scores_only(  # type: ignore[no-untyped-def]
    client_for, patient_user: User, patient: Patient, procedure, staff
) -> None:
    score = score_record(
        patient=patient, instrument="peg", score=6, observed_at=timezone.now(), source="patient"
    )
    client = client_for(patient_user)
    assert client.get("/api/v1/instruments").status_code == 200
    assert client.get("/api/v1/instruments/peg/1").json()["items"]
    rows = client.get(f"/api/v1/patients/{patient.pk}/observations").json()["results"]
    assert [row["id"] for row in rows] == [score.pk]  # not the procedure
    procedures = client.get(f"/api/v1/patients/{patient.pk}/observations?kind=procedure")
    assert procedures.json()["results"] == []
    # The procedure's result cannot be recorded (nor the procedure found) by the patient.
    assert_problem(
        client.post(
            f"/api/v1/observations/{procedure.pk}/result",
            {"relief_pct": 90, "assessed_at": timezone.now().isoformat()},
            format="json",
            HTTP_IDEMPOTENCY_KEY="p",
        ),
        403,
        "not_permitted",
    )


def test_a_patient_sees_nothing_clinical(client_for, patient_user: User, enrolment) -> None:  # type: ignore[no-untyped-def]
    client = client_for(patient_user)
    patient_id = enrolment.patient_id
    for url in (
        f"/api/v1/patients/{patient_id}/messages",
        "/api/v1/messages/dead",
        "/api/v1/thresholds",
    ):
        assert_problem(client.get(url), 403, "not_permitted")
    for url, body in (
        (f"/api/v1/patients/{patient_id}/enrolments", {"definition_key": "intractable-pain"}),
        (f"/api/v1/enrolments/{enrolment.public_id}/pause", {"reason": "me"}),
        (f"/api/v1/enrolments/{enrolment.public_id}/discharge", {"reason": "me"}),
        (f"/api/v1/patients/{patient_id}/sessions", {}),
    ):
        response = client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="p1")
        assert_problem(response, 403, "not_permitted")
    allowed = {op for op in Operation if can(patient_user, op)}
    assert allowed == {
        Operation.PATIENT_LIST,
        Operation.PATIENT_VIEW,
        Operation.ENROLMENT_VIEW,
        Operation.PATHWAY_VIEW,
        Operation.CHECKIN_VIEW,
        Operation.CHECKIN_SUBMIT,
        Operation.INSTRUMENT_VIEW,
        Operation.OBSERVATION_VIEW,
    }
