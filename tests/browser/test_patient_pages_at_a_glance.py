"""The patient pages in a real browser: Enter on a radio button never sends a partial check-in
(with and without JavaScript), the skip link stays hidden at 200 % zoom until it is focused, the
portal logs out, the favicon loads, and a Spanish-speaking patient answers a check-in in Spanish
(screenshots in test-artifacts/screenshots/)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from carehub.checkins.models import CheckinStatus
from carehub.clinics.models import Clinic
from carehub.pathways.models import Enrolment
from carehub.patients.models import Language, Patient
from tests.support.browser import DESKTOP, PHONE, log_in, screenshot_path
from tests.support.patients import (
    clinic_with_team,
    enrolled_patient,
    open_checkin,
    patient_user,
    send_link,
)

pytestmark = pytest.mark.django_db(transaction=True)

PHONE_NUMBER = "+16175550142"
# 200 % zoom of a 1280x800 window: half the CSS pixels, each drawn twice as large.
ZOOM_200 = {"viewport": {"width": 640, "height": 400}, "device_scale_factor": 2}


@pytest.fixture
def enrolment() -> Enrolment:
    team = clinic_with_team("gl")
    Clinic.objects.filter(pk=team.clinic.pk).update(
        name="Riverside Pain Clinic", phone=PHONE_NUMBER
    )
    return enrolled_patient(team, "GL-1", username="glance-patient")


def spanish(enrolment: Enrolment) -> Enrolment:
    Patient.objects.filter(pk=enrolment.patient_id).update(language=Language.SPANISH)
    return enrolment


def choose(page: Page, key: str, value: int) -> None:
    page.locator(f"#q-{key} input[value='{value}']").check()


def test_enter_on_a_radio_button_moves_on_instead_of_sending_a_partial_form(
    desktop: BrowserContext, enrolment: Enrolment
) -> None:
    checkin = open_checkin(enrolment, "phq9")
    page = desktop.new_page()
    page.goto(f"/c/{send_link(checkin)}")
    first = page.locator("#q-item1 input[value='1']")
    first.check()
    first.focus()
    page.keyboard.press("Enter")
    # Still the same form, nothing marked as an error, the next question to answer focused.
    expect(page.locator("#q-item2 input").first).to_be_focused()
    expect(page.locator("#error-summary")).to_have_count(0)
    expect(page.locator("[aria-invalid='true']")).to_have_count(0)
    expect(first).to_be_checked()
    checkin.refresh_from_db()
    assert checkin.status == CheckinStatus.OPEN


def test_enter_on_a_phone_goes_to_the_next_question(
    phone: BrowserContext, enrolment: Enrolment
) -> None:
    page = phone.new_page()
    page.goto(f"/c/{send_link(open_checkin(enrolment, 'phq9'))}")
    choose(page, "item1", 2)
    page.locator("#q-item1 input[value='2']").focus()
    page.keyboard.press("Enter")
    expect(page.locator(".stepper-count")).to_have_text("Question 2 of 10")
    expect(page.locator("[aria-invalid='true']")).to_have_count(0)


def test_without_javascript_enter_keeps_the_answers_and_marks_nothing(
    browser: Browser, live_server, enrolment: Enrolment
) -> None:  # type: ignore[no-untyped-def]
    checkin = open_checkin(enrolment, "phq9")
    context = browser.new_context(**DESKTOP, base_url=live_server.url, java_script_enabled=False)
    page = context.new_page()
    page.goto(f"/c/{send_link(checkin)}")
    first = page.locator("#q-item1 input[value='1']")
    first.check()
    first.focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    summary = page.locator("#continue-summary")
    expect(summary).to_contain_text("Nothing has been sent yet")
    expect(summary.get_by_role("link", name="Question 2")).to_be_visible()
    expect(page.locator("#error-summary")).to_have_count(0)
    expect(page.locator("[aria-invalid='true']")).to_have_count(0)
    expect(page.locator(".has-error")).to_have_count(0)
    expect(page.locator("#q-item1 input[value='1']")).to_be_checked()
    page.screenshot(path=screenshot_path("checkin-enter-without-js-desktop"), full_page=True)
    context.close()
    checkin.refresh_from_db()
    assert checkin.status == CheckinStatus.OPEN


@pytest.mark.parametrize("where", ["link", "portal"])
def test_the_skip_link_stays_hidden_at_200_percent_zoom_until_focused(
    browser: Browser, live_server, enrolment: Enrolment, where: str
) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(**ZOOM_200, base_url=live_server.url)
    if where == "portal":
        log_in(context, patient_user(enrolment), live_server.url)
        path = "/me/"
    else:
        path = f"/c/{send_link(open_checkin(enrolment))}"
    page = context.new_page()
    page.goto(path)
    skip = page.locator(".skip-link")
    box = skip.bounding_box()
    assert box is not None
    assert box["width"] <= 1
    assert box["height"] <= 1
    page.screenshot(path=screenshot_path(f"skip-link-hidden-zoom200-{where}"))
    page.keyboard.press("Tab")
    expect(skip).to_be_focused()
    box = skip.bounding_box()
    assert box is not None
    assert box["width"] > 50
    assert box["x"] >= 0
    assert box["x"] + box["width"] <= 640
    context.close()


def test_a_patient_logs_out_of_the_portal(
    phone: BrowserContext, live_server, enrolment: Enrolment
) -> None:  # type: ignore[no-untyped-def]
    log_in(phone, patient_user(enrolment), live_server.url)
    page = phone.new_page()
    page.goto("/me/")
    expect(page.get_by_role("link", name=PHONE_NUMBER)).to_have_attribute(
        "href", f"tel:{PHONE_NUMBER}"
    )
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="You are logged out")).to_be_visible()
    page.goto("/me/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/me/$"))


def test_the_favicon_loads(desktop: BrowserContext) -> None:
    page = desktop.new_page()
    response = page.goto("/favicon.ico")
    assert response is not None
    assert response.status == 200
    assert response.headers["content-type"] in ("image/x-icon", "image/vnd.microsoft.icon")


def test_a_spanish_speaking_patient_answers_a_checkin_in_spanish(
    browser: Browser, live_server, enrolment: Enrolment
) -> None:  # type: ignore[no-untyped-def]
    checkin = open_checkin(spanish(enrolment), "phq9")
    # A browser set to English: the patient's language decides.
    context = browser.new_context(**PHONE, base_url=live_server.url, locale="en-US")
    page = context.new_page()
    page.goto(f"/c/{send_link(checkin)}")
    expect(page.locator("html")).to_have_attribute("lang", "es")
    expect(page.get_by_role("heading", level=1)).to_have_text("Control del estado de ánimo")
    expect(page.locator(".clinic-name")).to_have_text("Riverside Pain Clinic")
    expect(page.locator(".stepper-count")).to_have_text("Pregunta 1 de 10")
    expect(page.locator("#q-item1 .text")).to_have_attribute("lang", "en")
    expect(page.get_by_role("button", name="Siguiente")).to_be_visible()
    page.screenshot(path=screenshot_path("checkin-link-phone-es"), full_page=True)

    page.get_by_role("button", name="Siguiente").click()  # no answer yet
    expect(page.locator("#step-err-item1")).to_have_text("Conteste esta pregunta, por favor.")
    for n in range(1, 10):
        choose(page, f"item{n}", 0)
        page.get_by_role("button", name="Siguiente").click()
    expect(page.locator(".stepper-count")).to_have_text("Pregunta 10 de 10")
    choose(page, "difficulty", 0)
    page.get_by_role("button", name="Enviar mis respuestas").click()
    expect(
        page.get_by_role("heading", name="Gracias: sus respuestas se han enviado")
    ).to_be_visible()
    page.screenshot(path=screenshot_path("checkin-confirmation-phone-es"), full_page=True)
    context.close()
    checkin.refresh_from_db()
    assert checkin.status == CheckinStatus.ANSWERED


def test_a_spanish_speaking_patient_sees_the_portal_in_spanish(
    desktop: BrowserContext, live_server, enrolment: Enrolment
) -> None:  # type: ignore[no-untyped-def]
    open_checkin(spanish(enrolment))
    log_in(desktop, patient_user(enrolment), live_server.url)
    page = desktop.new_page()
    page.goto("/me/")
    expect(page.get_by_role("heading", name="Pendiente ahora")).to_be_visible()
    expect(page.get_by_role("button", name="Cerrar sesión")).to_be_visible()
    page.screenshot(path=screenshot_path("portal-home-desktop-es"), full_page=True)
    page.get_by_role("link", name="Contestar ahora: Control semanal del dolor").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Control semanal del dolor")
    page.screenshot(path=screenshot_path("portal-checkin-desktop-es"), full_page=True)
