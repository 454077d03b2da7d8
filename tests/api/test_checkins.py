"""Check-ins over the API: listed with their status and score, answered once through the same
service as the link page (scores, red flags, the next check-in), by the patient or on their
behalf by a clinician."""

from __future__ import annotations

import pytest

from carehub.accounts.models import User
from carehub.audit.models import AuditEvent
from carehub.checkins.models import Checkin, CheckinStatus
from carehub.checkins.services import checkins_close_expired
from carehub.messaging.models import Message
from carehub.observations.models import Observation
from carehub.pathways.models import Enrolment
from carehub.patients.models import Patient
from carehub.patients.services import patient_account_create
from carehub.worklists.models import Flag
from tests.api.conftest import PASSWORD, assert_problem, new_key, open_checkin

pytestmark = pytest.mark.django_db
PEG = {"pain": 6, "enjoyment": 5, "activity": 7}
PHQ9_ITEM9 = {f"item{n}": 1 for n in range(1, 10)}


@pytest.fixture
def patient_user(patient: Patient) -> User:
    return patient_account_create(patient=patient, username="alice", password=PASSWORD)


def submit(client, checkin: Checkin, answers: dict):  # type: ignore[no-untyped-def,type-arg]
    return client.post(
        f"/api/v1/checkins/{checkin.pk}/answers", {"answers": answers}, format="json", **new_key()
    )


def test_the_patient_answers_their_open_checkin_once(
    client_for, patient_user: User, checkin: Checkin
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(patient_user)
    response = submit(client, checkin, PEG)
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["score"], body["checkin"]["status"]) == (6.0, "answered")
    assert body["checkin"]["answers"] == PEG
    observation = Observation.objects.get(pk=body["checkin"]["observation_id"])
    assert (observation.code, observation.value_number, observation.source) == (
        "peg",
        6.0,
        "patient",
    )
    # The series moves on, as after the link page.
    assert Checkin.objects.filter(series=checkin.series, status=CheckinStatus.SCHEDULED).exists()

    again = assert_problem(submit(client, checkin, PEG), 410, "gone")
    assert "already been answered" in again["detail"]


def test_a_clinician_may_enter_the_answers_on_the_patients_behalf(
    client_for, staff: dict[str, User], checkin: Checkin
) -> None:  # type: ignore[no-untyped-def]
    response = submit(client_for(staff["coordinator"]), checkin, PEG)
    assert response.status_code == 201
    observation = Observation.objects.get(pk=response.json()["checkin"]["observation_id"])
    assert observation.source == "staff"
    assert_problem(submit(client_for(staff["clinic_admin"]), checkin, PEG), 403, "not_permitted")


def test_invalid_answers_name_the_item_and_change_nothing(
    client_for, staff: dict[str, User], checkin: Checkin
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["coordinator"])
    body = assert_problem(
        submit(client, checkin, {"pain": 11, "enjoyment": 5}), 400, "invalid_input"
    )
    assert set(body["errors"]) == {"answers.pain"}
    body = assert_problem(submit(client, checkin, {}), 400, "invalid_input")
    assert "answers" in body["errors"]
    body = assert_problem(submit(client, checkin, {**PEG, "mood": 3}), 400, "invalid_input")
    assert "answers.mood" in body["errors"]
    checkin.refresh_from_db()
    assert checkin.status == CheckinStatus.OPEN
    assert not Observation.objects.filter(patient=checkin.patient, kind="score").exists()


def test_a_red_flag_alerts_the_care_team_and_the_patient_sees_crisis_resources(
    client_for, patient_user: User, enrolment: Enrolment
) -> None:  # type: ignore[no-untyped-def]
    checkin = open_checkin(enrolment, "phq9")
    response = submit(client_for(patient_user), checkin, PHQ9_ITEM9)
    assert response.status_code == 201, response.content
    body = response.json()
    assert [f["code"] for f in body["red_flags"]] == ["phq9_item9_positive"]
    assert body["patient_messages"]
    assert "contact you today" in body["patient_messages"][0]
    assert Flag.objects.filter(patient=checkin.patient, code="phq9_item9_positive").exists()
    alerts = Message.objects.filter(purpose="red_flag_alert", patient=checkin.patient)
    assert alerts.exists()
    assert all(m.urgency == "urgent" for m in alerts)


def test_a_closed_checkin_is_gone(client_for, patient_user: User, checkin: Checkin) -> None:  # type: ignore[no-untyped-def]
    checkins_close_expired(now=checkin.closes_at)
    body = assert_problem(submit(client_for(patient_user), checkin, PEG), 410, "gone")
    assert "no longer open" in body["detail"]


def test_list_filters_by_status_and_instrument_and_shows_scores(
    client_for, staff: dict[str, User], enrolment: Enrolment
) -> None:  # type: ignore[no-untyped-def]
    peg = open_checkin(enrolment, "peg")
    phq9 = open_checkin(enrolment, "phq9")
    client = client_for(staff["physician"])
    submit(client, peg, PEG)
    url = f"/api/v1/patients/{enrolment.patient_id}/checkins"
    rows = client.get(url).json()["results"]
    assert {(r["instrument"], r["status"]) for r in rows} >= {("peg", "answered"), ("phq9", "open")}
    answered = client.get(f"{url}?status=answered").json()["results"]
    assert [(r["id"], r["score"]) for r in answered] == [(peg.pk, 6.0)]
    assert [r["id"] for r in client.get(f"{url}?instrument=phq9").json()["results"]] == [phq9.pk]
    assert_problem(client.get(f"{url}?status=late"), 400, "invalid_input")
    detail = client.get(f"/api/v1/checkins/{peg.pk}").json()
    assert (detail["answers"], detail["series"], detail["enrolment"]) == (
        PEG, "peg", str(enrolment.public_id),
    )  # fmt: skip


def test_reads_and_submissions_are_audited_with_the_patient(
    client_for, patient_user: User, checkin: Checkin, foreign_checkin: Checkin
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(patient_user)
    client.get(f"/api/v1/checkins/{checkin.pk}")
    submit(client, checkin, PEG)
    client.get(f"/api/v1/checkins/{foreign_checkin.pk}")
    rows = AuditEvent.objects.filter(actor=patient_user).order_by("id")
    assert [(r.action, r.outcome, r.patient_id) for r in rows] == [
        ("checkin.view", "ok", checkin.patient_id),
        ("checkin.submit", "ok", checkin.patient_id),
        ("checkin.view", "denied", None),  # outside the scope: nothing disclosed
    ]
    assert rows[1].detail["source"] == "patient"
