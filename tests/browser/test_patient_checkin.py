"""A patient answers a check-in from the link in their message: one question per screen on a
phone, the whole form on a wide screen, and crisis resources at once for PHQ-9 item 9."""

from __future__ import annotations

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from carehub.checkins.models import CheckinStatus
from carehub.messaging.models import Message
from carehub.pathways.models import Enrolment
from carehub.worklists.models import Flag
from tests.support.browser import screenshot_path
from tests.support.patients import clinic_with_team, enrolled_patient, open_checkin, send_link

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def enrolment() -> Enrolment:
    return enrolled_patient(clinic_with_team("bl"), "BL-1")


def choose(page: Page, key: str, value: int) -> None:
    page.locator(f"#q-{key} input[value='{value}']").check()


def visible_questions(page: Page) -> int:
    return page.locator("fieldset.question:visible").count()


def test_a_phone_shows_one_question_per_screen_with_progress(
    phone: BrowserContext, enrolment: Enrolment
) -> None:
    checkin = open_checkin(enrolment)
    token = send_link(checkin)
    page = phone.new_page()
    page.goto(f"/c/{token}")
    expect(page.locator(".stepper-count")).to_have_text("Question 1 of 3")
    assert visible_questions(page) == 1
    expect(page.locator("#q-pain")).to_be_visible()
    expect(page.get_by_role("button", name="Send my answers")).to_be_hidden()
    page.screenshot(path=screenshot_path("checkin-link-phone"), full_page=True)

    # Next without an answer: the question says what is missing, and stays.
    page.get_by_role("button", name="Next").click()
    expect(page.locator("#step-err-pain")).to_be_visible()
    expect(page.locator(".stepper-count")).to_have_text("Question 1 of 3")

    choose(page, "pain", 6)
    page.get_by_role("button", name="Next").click()
    expect(page.locator(".stepper-count")).to_have_text("Question 2 of 3")
    expect(page.locator("#q-enjoyment")).to_be_visible()
    expect(page.locator("#q-pain")).to_be_hidden()
    choose(page, "enjoyment", 5)
    page.get_by_role("button", name="Back").click()
    expect(page.locator(".stepper-count")).to_have_text("Question 1 of 3")
    page.get_by_role("button", name="Next").click()
    page.get_by_role("button", name="Next").click()
    expect(page.locator(".stepper-count")).to_have_text("Question 3 of 3")
    choose(page, "activity", 4)
    page.get_by_role("button", name="Send my answers").click()

    expect(
        page.get_by_role("heading", name="Thank you: your answers have been sent")
    ).to_be_visible()
    page.screenshot(path=screenshot_path("checkin-confirmation-phone"), full_page=True)
    checkin.refresh_from_db()
    assert (checkin.status, checkin.score) == (CheckinStatus.ANSWERED, 5.0)


def test_phq9_item9_shows_crisis_resources_at_once_and_raises_an_urgent_flag(
    phone: BrowserContext, enrolment: Enrolment
) -> None:
    checkin = open_checkin(enrolment, "phq9")
    token = send_link(checkin)
    page = phone.new_page()
    page.goto(f"/c/{token}")
    for n in range(1, 9):
        choose(page, f"item{n}", 0)
        page.get_by_role("button", name="Next").click()
    expect(page.locator(".stepper-count")).to_have_text("Question 9 of 10")
    help_now = page.locator("#help-phq9_item9_positive")
    expect(help_now).to_be_hidden()
    choose(page, "item9", 1)
    # Before anything is sent: the crisis resources are on the screen.
    expect(help_now).to_be_visible()
    expect(help_now).to_contain_text("988")
    page.screenshot(path=screenshot_path("checkin-crisis-resources-phone"), full_page=True)

    page.get_by_role("button", name="Next").click()
    choose(page, "difficulty", 1)
    page.get_by_role("button", name="Send my answers").click()
    expect(page.locator(".crisis")).to_contain_text("988")
    expect(page.locator(".crisis")).to_contain_text("Your care team has been told")
    page.screenshot(path=screenshot_path("checkin-crisis-confirmation-phone"), full_page=True)

    flag = Flag.objects.get(patient_id=enrolment.patient_id, code="phq9_item9_positive")
    assert flag.severity == "urgent"
    alerts = Message.objects.filter(
        patient_id=enrolment.patient_id, purpose="red_flag_alert", urgency="urgent",
        to_staff__isnull=False,
    )  # fmt: skip
    assert {m.to_staff.role for m in alerts if m.to_staff} == {
        "coordinator",
        "physician",
        "psychologist",
    }


def test_a_wide_screen_shows_the_whole_form(desktop: BrowserContext, enrolment: Enrolment) -> None:
    checkin = open_checkin(enrolment, "phq9")
    token = send_link(checkin)
    page = desktop.new_page()
    page.goto(f"/c/{token}")
    assert visible_questions(page) == 10
    expect(page.get_by_role("button", name="Next")).to_be_hidden()
    expect(page.locator(".stepper-progress")).to_be_hidden()
    expect(page.get_by_role("button", name="Send my answers")).to_be_visible()
    page.screenshot(path=screenshot_path("checkin-link-desktop"), full_page=True)

    # A missing answer: the summary names the question; nothing is saved.
    for n in range(1, 9):
        choose(page, f"item{n}", 1)
    page.get_by_role("button", name="Send my answers").click()
    summary = page.locator("#error-summary")
    expect(summary).to_contain_text("Question 9")
    expect(summary).to_be_focused()
    expect(page.locator("#q-item1 input[value='1']")).to_be_checked()  # answers kept
    page.screenshot(path=screenshot_path("checkin-errors-desktop"), full_page=True)
    checkin.refresh_from_db()
    assert checkin.status == CheckinStatus.OPEN

    choose(page, "item9", 0)
    page.get_by_role("button", name="Send my answers").click()
    expect(
        page.get_by_role("heading", name="Thank you: your answers have been sent")
    ).to_be_visible()
    page.screenshot(path=screenshot_path("checkin-confirmation-desktop"), full_page=True)
    checkin.refresh_from_db()
    assert (checkin.status, checkin.score) == (CheckinStatus.ANSWERED, 8.0)
