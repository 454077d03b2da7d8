"""The link page's form: progress, the error summary, help shown at once, the audit of answers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.test import Client

from carehub.audit.models import AuditEvent
from carehub.checkins.models import CheckinStatus
from carehub.pathways.models import Enrolment
from tests.support.patients import clinic_with_team, enrolled_patient, open_checkin, send_link

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def afternoon() -> Iterator[None]:
    with time_machine.travel(
        datetime(2026, 6, 2, 14, 0, tzinfo=ZoneInfo("Europe/London")), tick=True
    ):
        yield


@pytest.fixture
def enrolment() -> Enrolment:
    return enrolled_patient(clinic_with_team("lp"), "LP-1")


def test_the_form_numbers_its_questions_and_loads_its_script(enrolment: Enrolment) -> None:
    token = send_link(open_checkin(enrolment, "phq9"))
    body = Client().get(f"/c/{token}").content.decode()
    assert "Question 1 of 10" in body
    assert "Question 9 of 10" in body
    assert "checkins/checkin.js" in body
    assert "<script>" not in body  # no inline code under the CSP
    assert 'style="' not in body
    # Crisis resources are in the page for item 9, shown by the script at once.
    assert 'id="help-phq9_item9_positive" data-item="item9" data-at-least="1' in body
    assert "988" in body


def test_the_token_never_leaves_as_a_referer_and_answers_can_be_posted(
    enrolment: Enrolment,
) -> None:
    token = send_link(open_checkin(enrolment))
    page = Client().get(f"/c/{token}")
    # Not "no-referrer": browsers then send "Origin: null" with the POST, which CSRF refuses.
    assert page["Referrer-Policy"] == "strict-origin"


def test_errors_name_each_question_and_nothing_is_saved(enrolment: Enrolment) -> None:
    checkin = open_checkin(enrolment)
    token = send_link(checkin)
    response = Client().post(f"/c/{token}", {"pain": "", "enjoyment": "abc", "activity": "3"})
    assert response.status_code == 400
    body = response.content.decode()
    assert '<a href="#q-pain">Question 1</a>: Please answer this question.' in body
    assert '<a href="#q-enjoyment">Question 2</a>: Please give a number.' in body
    assert 'aria-invalid="true"' in body
    checkin.refresh_from_db()
    assert checkin.status == CheckinStatus.OPEN
    assert not AuditEvent.objects.filter(action="checkin.submit").exists()


def test_an_answer_by_link_is_audited_without_an_actor(enrolment: Enrolment) -> None:
    checkin = open_checkin(enrolment)
    token = send_link(checkin)
    response = Client().post(f"/c/{token}", {"pain": "3", "enjoyment": "3", "activity": "3"})
    assert response.status_code == 200
    event = AuditEvent.objects.get(action="checkin.submit")
    assert (event.actor_id, event.patient_id, event.detail["via"]) == (
        None,
        enrolment.patient_id,
        "link",
    )
    assert token not in str(event.detail)
