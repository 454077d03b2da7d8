"""Every patient page passes axe-core's WCAG 2.1 A/AA and best-practice rules without a single
violation, in English and in Spanish, on a 1280x800 window, a 390x844 phone and at 200 % zoom:
the link's check-in page (with its error summary, the "continue" page Enter gives, the thank-you
page with crisis resources, the closed and unknown link pages) and every portal page.

axe-core (MPL-2.0, vendored in `vendor/axe.min.js`) is evaluated through the browser's debugging
protocol, which the pages' Content Security Policy does not apply to."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, Page

from carehub.clinics.models import Clinic
from carehub.observations.services import score_record
from carehub.pathways.models import Enrolment
from carehub.patients.models import Patient
from tests.support.browser import PHONE, log_in, screenshot_path
from tests.support.patients import (
    clinic_with_team,
    enrolled_patient,
    open_checkin,
    patient_user,
    send_link,
)

pytestmark = pytest.mark.django_db(transaction=True)
AXE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text()
IMPACTS = {"minor", "moderate", "serious", "critical"}
VIEWPORTS = {
    "desktop": {"viewport": {"width": 1280, "height": 800}},
    "phone": PHONE,
    "zoom200": {"viewport": {"width": 640, "height": 400}, "device_scale_factor": 2},
}


def violations(page: Page) -> list[str]:
    page.evaluate(AXE)
    result = page.evaluate(
        """() => axe.run(document, {runOnly: {type: 'tag',
              values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}})"""
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in IMPACTS
    ]


def submit(page: Page, step: str) -> None:
    """Send the form with one of its buttons ("send" or "continue", the one Enter presses),
    whichever the screen shows."""
    with page.expect_navigation():
        page.evaluate(
            """(step) => { const form = document.querySelector('form.checkin-form');
                 form.requestSubmit(form.querySelector(`button[name=step][value=${step}]`)); }""",
            step,
        )


def answer_all(page: Page, keys: list[str], value: int = 1) -> None:
    """Tick answers, on the questions the phone's one-per-screen form hides too."""
    page.evaluate(
        """([keys, value]) => keys.forEach((key) => {
             document.querySelector(`#q-${key} input[value='${value}']`).checked = true; })""",
        [keys, value],
    )


@pytest.fixture
def enrolment() -> Enrolment:
    team = clinic_with_team("ax")
    Clinic.objects.filter(pk=team.clinic.pk).update(
        name="Riverside Pain Clinic", phone="+16175550142"
    )
    enrolment = enrolled_patient(team, "AX-1", username="axe-patient")
    start = timezone.now() - timedelta(weeks=14)
    for week, value in enumerate([7.3, 7.1, 6.6, 6.0, 5.6, 5.1]):
        score_record(
            patient=enrolment.patient, instrument="peg", score=value,
            observed_at=start + timedelta(weeks=week * 2 + 1), source="patient",
            is_baseline=week == 0,
        )  # fmt: skip
    score_record(
        patient=enrolment.patient, instrument="phq9", score=9,
        observed_at=start + timedelta(weeks=1), source="patient",
    )  # fmt: skip
    return enrolment


@pytest.mark.parametrize("language", ["en", "es"])
@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_patient_pages_have_no_accessibility_violations(
    browser: Browser, live_server, enrolment: Enrolment, viewport: str, language: str
) -> None:  # type: ignore[no-untyped-def]
    Patient.objects.filter(pk=enrolment.patient_id).update(language=language)
    found: dict[str, list[str]] = {}

    # The link, without an account.
    link = browser.new_context(**VIEWPORTS[viewport], base_url=live_server.url)
    page = link.new_page()
    checkin = open_checkin(enrolment, "phq9")
    token = send_link(checkin)
    page.goto(f"/c/{token}")
    found["link form"] = violations(page)
    page.screenshot(path=screenshot_path(f"a11y-link-form-{viewport}-{language}"), full_page=True)
    answer_all(page, ["item1"])
    submit(page, "continue")
    found["link form after Enter"] = violations(page)
    submit(page, "send")
    found["link form with errors"] = violations(page)
    answer_all(page, [f"item{n}" for n in range(1, 10)] + ["difficulty"])
    submit(page, "send")
    assert page.locator(".crisis").count() == 1  # item 9 answered: crisis resources
    found["link thank-you with crisis resources"] = violations(page)
    page.screenshot(path=screenshot_path(f"a11y-link-thanks-{viewport}-{language}"), full_page=True)
    page.goto(f"/c/{token}")
    found["link closed (410)"] = violations(page)
    page.goto("/c/no-such-link")
    found["link unknown (404)"] = violations(page)
    link.close()

    # The portal.
    portal = browser.new_context(**VIEWPORTS[viewport], base_url=live_server.url)
    log_in(portal, patient_user(enrolment), live_server.url)
    page = portal.new_page()
    peg = open_checkin(enrolment, "peg")
    for path in ("/me/", "/me/progress/", "/me/next/", f"/me/checkins/{peg.pk}/"):
        page.goto(path)
        found[f"portal {path}"] = violations(page)
        name = path.strip("/").replace("/", "-") or "me"
        page.screenshot(path=screenshot_path(f"a11y-{name}-{viewport}-{language}"), full_page=True)
    answer_all(page, ["pain", "enjoyment", "activity"], value=5)
    submit(page, "send")
    found["portal thank-you"] = violations(page)
    page.goto(f"/me/checkins/{peg.pk}/")
    found["portal check-in closed (410)"] = violations(page)
    page.goto("/me/checkins/999999/")
    found["portal not found (404)"] = violations(page)
    page.goto("/me/")
    with page.expect_navigation():
        page.locator(".logout-button").click()
    found["portal logged out"] = violations(page)
    portal.close()

    assert {where: problems for where, problems in found.items() if problems} == {}
