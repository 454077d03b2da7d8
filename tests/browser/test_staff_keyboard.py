"""Keyboard only: the skip link, the navigation and the main actions (log in, open a patient,
approve an escalation) are reachable and visibly focused without a mouse; the other staff pages
render without a Content Security Policy violation (screenshots of each)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from carehub.accounts.models import User
from carehub.clinics.services import clinic_create
from carehub.core import clock
from carehub.messaging.models import Message, MessageStatus
from carehub.messaging.services import message_enqueue
from carehub.pathways.models import Enrolment
from carehub.patients.models import Patient
from carehub.worklists.services import care_task_create, flag_raise
from tests.support.browser import log_in, screenshot_path
from tests.web.conftest import PASSWORD, make_team, on_team, register, with_history
from tests.web.histories import block_proposed

pytestmark = pytest.mark.django_db(transaction=True)
MAX_TABS = 80


@pytest.fixture
def team() -> dict[str, User]:
    clinic = clinic_create(name="Keyboard Clinic", slug="keyboard", time_zone="Europe/London")
    return make_team(clinic, prefix="k-", last_name="Keys")


@pytest.fixture
def waiting(team: dict[str, User]) -> Patient:
    patient = on_team(register(team["coordinator"].clinic, "K-1", "Kim", "Kaur"), team)  # type: ignore[arg-type]
    with_history(patient, team, block_proposed, 100)
    return patient


def focused(page: Page) -> str:
    return str(page.evaluate("document.activeElement.textContent || document.activeElement.id"))


def tab_to(page: Page, pattern: str, tag: str = "") -> None:
    """Press Tab until the focused element's text matches (or it is a `tag` element)."""
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        if tag and page.evaluate("document.activeElement.tagName") == tag:
            return
        if not tag and re.search(pattern, focused(page)):
            return
    raise AssertionError(f"Tab never reached {pattern or tag!r}")


def test_keyboard_only_login_open_patient_and_approve(
    desktop: BrowserContext, team: dict[str, User], waiting: Patient
) -> None:
    page = desktop.new_page()
    page.goto("/login/")
    # The username field has focus on arrival (autofocus lands just after load: wait for it);
    # typing and Enter log in.
    expect(page.get_by_label("Username")).to_be_focused()
    page.keyboard.type("k-physician")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/caseload/$"))

    # The first Tab reaches the skip link, which moves focus to the main content.
    page.keyboard.press("Tab")
    assert focused(page) == "Skip to main content"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"

    tab_to(page, r"^Kaur, Kim$")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/patients/{waiting.pk}/$"))

    tab_to(page, "", tag="TEXTAREA")  # the reason for the decision
    assert page.evaluate("document.activeElement.labels[0].textContent").startswith("Reason")
    page.keyboard.type("Facet pain, typed without a mouse")
    page.keyboard.press("Tab")
    assert focused(page) == "Approve"
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("Escalation approved")
    assert Enrolment.objects.get(patient=waiting).state_of("ladder") == "mbb1"


def test_the_navigation_marks_the_current_page_and_is_reachable_by_tab(
    desktop: BrowserContext,
    team: dict[str, User],
    live_server,  # type: ignore[no-untyped-def]
) -> None:
    log_in(desktop, team["coordinator"], live_server.url)
    page = desktop.new_page()
    page.goto("/caseload/")
    tab_to(page, r"^Flags$")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/flags/$"))
    expect(
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Flags")
    ).to_have_attribute("aria-current", "page")
    expect(page.locator("[aria-current=page]")).to_have_count(2)  # main nav and the tab strip


def test_every_staff_page_renders_without_a_policy_violation(
    desktop: BrowserContext,
    browser,
    team: dict[str, User],
    waiting: Patient,
    live_server,  # type: ignore[no-untyped-def]
) -> None:
    enrolment = Enrolment.objects.get(patient=waiting)
    flag_raise(
        enrolment=enrolment, code="phq9_item9", severity="urgent",
        message="PHQ-9 item 9 answered 2: call today", raised_at=clock.now(),
    )  # fmt: skip
    flag_raise(
        enrolment=enrolment, code="missed", severity="warning",
        message="Two PEG check-ins missed", raised_at=clock.now(),
    )  # fmt: skip
    care_task_create(
        enrolment=enrolment, discipline="coordinator", title="Book the block", due_at=clock.now()
    )
    message = message_enqueue(
        patient=waiting, recipient="patient", purpose="pathway_notice", body="Hello",
        idempotency_key="kb-dead", why="Escalation notice",
    )  # fmt: skip
    Message.objects.filter(pk=message.pk).update(
        status=MessageStatus.DEAD, attempts=5, last_error="Gateway 503 after 5 attempts"
    )
    refused: list[str] = []
    page = desktop.new_page()
    page.on("console", lambda m: refused.append(m.text) if m.type == "error" else None)
    page.goto("/login/")
    page.screenshot(path=screenshot_path("staff-login"), full_page=True)
    log_in(desktop, team["coordinator"], live_server.url)
    for path, name, heading in (
        ("/caseload/", "staff-caseload-flags", "Caseload"),
        ("/flags/", "staff-flags", "Flags"),
        ("/tasks/", "staff-tasks", "Tasks"),
        ("/messages/dead/", "staff-dead-messages", "Dead messages"),
        (f"/patients/{waiting.pk}/", "staff-patient-coordinator", "Kim Kaur"),
    ):
        page.goto(path)
        expect(page.get_by_role("heading", level=1)).to_contain_text(heading)
        page.screenshot(path=screenshot_path(name), full_page=True)
    flags = page.context.new_page()
    flags.goto("/flags/")
    rows = flags.get_by_role("row")
    expect(rows.nth(1)).to_contain_text("PHQ-9 item 9")  # urgent first
    # htmx replaces just the row after Acknowledge (an urgent flag's note says what was done).
    rows.nth(1).get_by_label(re.compile("What was done")).fill("Called, safety plan reviewed")
    rows.nth(1).get_by_role("button", name=re.compile("Acknowledge")).click()
    expect(flags.locator("tbody tr").first).to_contain_text("Acknowledged")
    phone = browser.new_context(viewport={"width": 390, "height": 844}, base_url=live_server.url)
    log_in(phone, team["coordinator"], live_server.url)
    small = phone.new_page()
    small.on("console", lambda m: refused.append(m.text) if m.type == "error" else None)
    small.goto("/caseload/")
    small.screenshot(path=screenshot_path("staff-caseload-phone"), full_page=True)
    assert small.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    phone.close()
    assert [text for text in refused if "favicon" not in text and "404" not in text] == []
