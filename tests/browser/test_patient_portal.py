"""A patient logged into the portal: what is due, My progress, What comes next, answering a
check-in there; and the staff's Sent messages page of the development backends."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import BrowserContext, expect

from carehub.checkins.models import CheckinStatus
from carehub.observations.services import score_record
from carehub.pathways.models import Enrolment
from tests.support.browser import log_in, screenshot_path
from tests.support.patients import (
    PASSWORD,
    Clinicians,
    clinic_with_team,
    enrolled_patient,
    open_checkin,
    patient_user,
    send_link,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def team() -> Clinicians:
    return clinic_with_team("bp")


@pytest.fixture
def enrolment(team: Clinicians) -> Enrolment:
    enrolment = enrolled_patient(team, "BP-1", username="portal-patient")
    start = timezone.now() - timedelta(weeks=14)
    for week, value in enumerate([7.3, 7.1, 6.6, 6.0, 5.6, 5.1]):
        score_record(
            patient=enrolment.patient, instrument="peg", score=value,
            observed_at=start + timedelta(weeks=week * 2 + 1), source="patient",
            is_baseline=week == 0,
        )  # fmt: skip
    for week, value in enumerate([12, 10, 9]):
        score_record(
            patient=enrolment.patient, instrument="phq9", score=value,
            observed_at=start + timedelta(weeks=week * 4 + 1), source="patient",
        )  # fmt: skip
    return enrolment


def test_a_patient_logs_in_on_a_phone_and_lands_in_the_portal(
    phone: BrowserContext,
    enrolment: Enrolment,  # type: ignore[no-untyped-def]
) -> None:
    page = phone.new_page()
    page.goto("/me/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/me/$"))
    page.get_by_label("Username").fill("portal-patient")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_be_visible()  # a clear error, still on the form
    expect(page).to_have_url(re.compile(r"/login/"))
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/me/$"))
    expect(page.get_by_role("link", name="My progress")).to_be_visible()


def test_a_patient_sees_what_is_due_their_progress_and_what_comes_next(
    phone: BrowserContext,
    live_server,
    enrolment: Enrolment,  # type: ignore[no-untyped-def]
) -> None:
    checkin = open_checkin(enrolment)
    log_in(phone, patient_user(enrolment), live_server.url)
    page = phone.new_page()
    page.goto("/me/")
    expect(page.get_by_role("heading", name="To do now")).to_be_visible()
    answer = page.get_by_role("link", name="Answer now: Weekly pain check-in")
    expect(answer).to_be_visible()
    page.screenshot(path=screenshot_path("portal-home-phone"), full_page=True)

    page.get_by_role("link", name="My progress").click()
    expect(page.get_by_role("heading", name="My progress", exact=True)).to_be_visible()
    expect(page.locator("#s-peg")).to_contain_text("went from 7.3 to 5.1")
    expect(page.locator("#s-peg")).to_contain_text("meaningful improvement")
    expect(page.locator("svg.chart").first).to_be_visible()
    page.screenshot(path=screenshot_path("portal-progress-phone"), full_page=True)

    page.get_by_role("link", name="What comes next").click()
    expect(page.get_by_role("heading", name="Getting started")).to_be_visible()
    expect(page.locator(".step-main")).to_contain_text("What usually comes next")
    page.screenshot(path=screenshot_path("portal-what-next-phone"), full_page=True)

    # Answer the open check-in in the portal, one question per screen.
    page.get_by_role("link", name="Home").click()
    page.get_by_role("link", name="Answer now: Weekly pain check-in").click()
    expect(page.locator(".stepper-count")).to_have_text("Question 1 of 3")
    for key, value in (("pain", 4), ("enjoyment", 4), ("activity", 4)):
        page.locator(f"#q-{key} input[value='{value}']").check()
        if key != "activity":
            page.get_by_role("button", name="Next").click()
    page.get_by_role("button", name="Send my answers").click()
    expect(
        page.get_by_role("heading", name="Thank you: your answers have been sent")
    ).to_be_visible()
    page.screenshot(path=screenshot_path("portal-confirmation-phone"), full_page=True)
    checkin.refresh_from_db()
    assert (checkin.status, checkin.score) == (CheckinStatus.ANSWERED, 4.0)
    page.get_by_role("link", name="Back to home").click()
    expect(page.get_by_text("Nothing to answer right now")).to_be_visible()


def test_the_portal_on_a_wide_screen(
    desktop: BrowserContext,
    live_server,
    enrolment: Enrolment,  # type: ignore[no-untyped-def]
) -> None:
    log_in(desktop, patient_user(enrolment), live_server.url)
    page = desktop.new_page()
    page.goto("/me/progress/")
    expect(page.locator("#s-phq9")).to_contain_text("went from 12 to 9")
    page.screenshot(path=screenshot_path("portal-progress-desktop"), full_page=True)
    page.goto("/me/next/")
    page.screenshot(path=screenshot_path("portal-what-next-desktop"), full_page=True)


def test_staff_open_a_patient_link_from_the_sent_messages_page(
    desktop: BrowserContext,
    live_server,
    team: Clinicians,
    settings,  # type: ignore[no-untyped-def]
) -> None:
    settings.PUBLIC_BASE_URL = live_server.url  # links point at this server
    enrolment = enrolled_patient(team, "BP-2")
    token = send_link(open_checkin(enrolment))
    log_in(desktop, team.coordinator, live_server.url)
    page = desktop.new_page()
    page.goto("/dev/sent-messages/")
    expect(page.get_by_role("heading", name="Sent messages")).to_be_visible()
    expect(page.locator("table.sent")).to_contain_text("BP-2")
    expect(page.locator("table.sent")).not_to_contain_text(token)  # stored redacted
    page.screenshot(path=screenshot_path("sent-messages-desktop"), full_page=True)
    page.get_by_role("button", name="Open the check-in").click()
    expect(page).to_have_url(re.compile(r"/c/[A-Za-z0-9_-]{40,}$"))
    expect(page.locator(".stepper-count")).to_be_hidden()  # a wide screen: the whole form
    expect(page.get_by_role("button", name="Send my answers")).to_be_visible()
