"""The patient portal: a patient sees only themselves, staff are refused, answers go through the
same submission as the link, and every page that shows patient data is audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client, override_settings
from django.utils import timezone

from carehub.audit.models import AuditEvent
from carehub.checkins.models import Checkin, CheckinStatus
from carehub.messaging.models import Message
from carehub.observations.models import Observation
from carehub.observations.services import score_record
from carehub.pathways.models import Enrolment
from carehub.worklists.models import Flag
from tests.support.patients import Clinicians, open_checkin, patient_user

pytestmark = pytest.mark.django_db

PEG = {"pain": "6", "enjoyment": "5", "activity": "4"}


def client_for(user) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    return client


def test_logged_out_visitors_go_to_the_login_page(enrolment: Enrolment) -> None:
    response = Client().get("/me/")
    assert response.status_code == 302
    assert "next=/me/" in response["Location"]


@pytest.mark.parametrize("page", ["/me/", "/me/progress/", "/me/next/"])
def test_staff_are_refused(team: Clinicians, enrolment: Enrolment, page: str) -> None:
    response = client_for(team.coordinator).get(page)
    assert response.status_code == 403
    assert "Pat1" not in response.content.decode()
    denied = AuditEvent.objects.get(actor=team.coordinator, action="portal.view")
    assert (denied.outcome, denied.patient_id) == ("denied", None)


def test_home_shows_only_the_patients_own_open_checkins(
    enrolment: Enrolment, other_enrolment: Enrolment
) -> None:
    mine = open_checkin(enrolment)
    theirs = open_checkin(other_enrolment)
    page = client_for(patient_user(enrolment)).get("/me/")
    body = page.content.decode()
    assert page.status_code == 200
    assert f"/me/checkins/{mine.pk}/" in body
    assert f"/me/checkins/{theirs.pk}/" not in body
    assert "Pat2" not in body
    assert page["Cache-Control"].startswith("no-store") or "no-store" in page["Cache-Control"]


def test_another_patients_checkin_is_not_found_and_nothing_changes(
    enrolment: Enrolment, other_enrolment: Enrolment
) -> None:
    theirs = open_checkin(other_enrolment)
    client = client_for(patient_user(enrolment))
    assert client.get(f"/me/checkins/{theirs.pk}/").status_code == 404
    assert client.post(f"/me/checkins/{theirs.pk}/", PEG).status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == CheckinStatus.OPEN
    denied = AuditEvent.objects.filter(action="portal.view", outcome="denied")
    assert denied.count() == 2
    assert set(denied.values_list("patient_id", flat=True)) == {None}


def test_answering_in_the_portal_scores_like_the_link_and_is_audited(
    enrolment: Enrolment,
) -> None:
    checkin = open_checkin(enrolment)
    user = patient_user(enrolment)
    client = client_for(user)
    form = client.get(f"/me/checkins/{checkin.pk}/")
    assert form.status_code == 200
    body = form.content.decode()
    assert "Question 1 of 3" in body
    assert "Question 3 of 3" in body

    done = client.post(f"/me/checkins/{checkin.pk}/", PEG)
    assert done.status_code == 200
    assert "your answers have been sent" in done.content.decode()
    checkin.refresh_from_db()
    assert (checkin.status, checkin.score) == (CheckinStatus.ANSWERED, 5.0)
    observation = Observation.objects.get(pk=checkin.observation_id)
    assert (observation.code, observation.value_number, observation.source) == (
        "peg",
        5.0,
        "patient",
    )
    answered = AuditEvent.objects.get(action="checkin.submit")
    assert (answered.actor_id, answered.patient_id, answered.detail["via"]) == (
        user.pk,
        enrolment.patient_id,
        "portal",
    )
    assert AuditEvent.objects.filter(
        action="portal.view", patient_id=enrolment.patient_id, detail__page="checkin"
    ).exists()


def test_a_second_submission_is_gone(enrolment: Enrolment) -> None:
    checkin = open_checkin(enrolment)
    client = client_for(patient_user(enrolment))
    assert client.post(f"/me/checkins/{checkin.pk}/", PEG).status_code == 200
    again = client.post(
        f"/me/checkins/{checkin.pk}/", {"pain": "1", "enjoyment": "1", "activity": "1"}
    )
    assert again.status_code == 410
    assert "already been sent" in again.content.decode()
    checkin.refresh_from_db()
    assert checkin.score == 5.0


@pytest.mark.parametrize(
    ("answers", "question", "message"),
    [
        ({"pain": "6", "enjoyment": "", "activity": "4"}, 2, "Please answer this question."),
        ({"pain": "6", "enjoyment": "x", "activity": "4"}, 2, "Please give a number."),
        ({"pain": "6", "enjoyment": "5", "activity": "11"}, 3, ""),
    ],
)
def test_bad_input_names_the_question_and_changes_nothing(
    enrolment: Enrolment, answers: dict[str, str], question: int, message: str
) -> None:
    checkin = open_checkin(enrolment)
    observations = Observation.objects.count()
    response = client_for(patient_user(enrolment)).post(f"/me/checkins/{checkin.pk}/", answers)
    assert response.status_code == 400
    body = response.content.decode()
    assert "Nothing has been sent yet" in body
    assert 'href="#q-' in body
    assert f"Question {question}</a>" in body
    assert message in body
    checkin.refresh_from_db()
    assert (checkin.status, checkin.answers, checkin.score) == (CheckinStatus.OPEN, {}, None)
    assert Observation.objects.count() == observations
    assert not AuditEvent.objects.filter(action="checkin.submit").exists()


def test_phq9_item9_in_the_portal_shows_crisis_resources_and_alerts_the_team(
    enrolment: Enrolment,
) -> None:
    checkin = open_checkin(enrolment, "phq9")
    client = client_for(patient_user(enrolment))
    form = client.get(f"/me/checkins/{checkin.pk}/").content.decode()
    # The help shown at once (by the page's script) is in the form, hidden until needed.
    assert 'id="help-phq9_item9_positive"' in form
    assert 'data-at-least="1' in form
    answers = {f"item{n}": "0" for n in range(1, 9)} | {"item9": "2", "difficulty": "1"}
    done = client.post(f"/me/checkins/{checkin.pk}/", answers)
    assert done.status_code == 200
    assert "988" in done.content.decode()
    flag = Flag.objects.get(patient_id=enrolment.patient_id, code="phq9_item9_positive")
    assert flag.severity == "urgent"
    assert Message.objects.filter(
        patient_id=enrolment.patient_id, purpose="red_flag_alert", urgency="urgent"
    ).exists()


def test_a_closed_checkin_is_gone(enrolment: Enrolment) -> None:
    checkin = open_checkin(enrolment)
    Checkin.objects.filter(pk=checkin.pk).update(closes_at=timezone.now() - timedelta(seconds=1))
    response = client_for(patient_user(enrolment)).get(f"/me/checkins/{checkin.pk}/")
    assert response.status_code == 410


def test_progress_in_plain_words_with_a_chart(enrolment: Enrolment) -> None:
    patient = enrolment.patient
    start = timezone.now() - timedelta(weeks=12)
    for week, value in enumerate([7.3, 7.0, 6.2, 5.8, 5.1]):
        score_record(
            patient=patient, instrument="peg", score=value,
            observed_at=start + timedelta(weeks=week * 3), source="patient",
            is_baseline=week == 0,
        )  # fmt: skip
    page = client_for(patient_user(enrolment)).get("/me/progress/")
    body = page.content.decode()
    assert page.status_code == 200
    assert "went from 7.3 to 5.1 since March" in body
    assert "meaningful improvement" in body
    assert "<svg" in body
    assert 'role="img"' in body
    assert "dateline-graph" in body
    assert AuditEvent.objects.filter(
        action="portal.view", patient=patient, detail__page="progress"
    ).exists()


def test_a_worse_score_is_said_plainly(enrolment: Enrolment) -> None:
    patient = enrolment.patient
    start = timezone.now() - timedelta(weeks=8)
    for week, value in enumerate([6, 9, 13]):
        score_record(
            patient=patient, instrument="phq9", score=value,
            observed_at=start + timedelta(weeks=week * 4), source="patient",
        )  # fmt: skip
    body = client_for(patient_user(enrolment)).get("/me/progress/").content.decode()
    assert "went from 6 to 13" in body
    assert "wrong direction" in body


def test_what_comes_next_in_plain_words(enrolment: Enrolment) -> None:
    page = client_for(patient_user(enrolment)).get("/me/next/")
    body = page.content.decode()
    assert page.status_code == 200
    assert "Getting started" in body  # the intake state, in the patient's words
    assert "Physical therapy" in body
    assert "Intake" not in body  # not the clinicians' title
    assert AuditEvent.objects.filter(
        action="portal.view", patient_id=enrolment.patient_id, detail__page="what_next"
    ).exists()


@override_settings(LOGIN_URL="/login/")
def test_login_url_comes_from_the_settings(enrolment: Enrolment) -> None:
    response = Client().get("/me/progress/")
    assert response["Location"].startswith("/login/?next=")


def test_the_same_score_as_shown_is_about_the_same(enrolment: Enrolment) -> None:
    patient = enrolment.patient
    start = timezone.now() - timedelta(weeks=4)
    for week, value in enumerate([6.67, 6.7]):
        score_record(
            patient=patient, instrument="peg", score=value,
            observed_at=start + timedelta(weeks=week * 2), source="patient",
        )  # fmt: skip
    body = client_for(patient_user(enrolment)).get("/me/progress/").content.decode()
    assert "went from 6.7 to 6.7" in body
    assert "about the same" in body
