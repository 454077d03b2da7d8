"""Keyboard only: from the urgent banner at the top of a patient's page to the flags page,
where acknowledging without saying what was done is refused by the field, then acknowledging
with a note and resolving with an outcome; the banner is gone and the patient page shows who
did what (screenshot of the flags row)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from carehub.accounts.models import User
from carehub.clinics.services import clinic_create
from carehub.core import clock
from carehub.patients.models import Patient
from carehub.worklists.models import Flag
from carehub.worklists.services import flag_raise
from tests.support.browser import log_in, screenshot_path
from tests.web.conftest import make_team, on_team, register, with_history
from tests.web.histories import early_conventional

pytestmark = pytest.mark.django_db(transaction=True)
MAX_TABS = 80
NOTE = "Called the patient, safety plan reviewed"
OUTCOME = "Seen in clinic the same day, safe"


@pytest.fixture
def team() -> dict[str, User]:
    clinic = clinic_create(name="Record Clinic", slug="record", time_zone="Europe/London")
    return make_team(clinic, prefix="r-", last_name="Record")


@pytest.fixture
def flagged(team: dict[str, User]) -> tuple[Patient, Flag]:
    patient = on_team(register(team["coordinator"].clinic, "R-5", "Rae", "Reyes"), team)  # type: ignore[arg-type]
    enrolment = with_history(patient, team, early_conventional, 45)
    flag = flag_raise(
        enrolment=enrolment, code="phq9_item9", severity="urgent",
        message="PHQ-9 item 9 answered 2", raised_at=clock.now(),
    )  # fmt: skip
    return patient, flag


def focused(page: Page) -> str:
    return str(page.evaluate("document.activeElement.id || document.activeElement.textContent"))


def tab_to(page: Page, pattern: str) -> None:
    """Press Tab until the focused element's id (or text) matches; already there is fine."""
    for _ in range(MAX_TABS):
        if re.search(pattern, focused(page)):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {pattern!r}")


def test_acknowledge_with_a_note_and_resolve_with_an_outcome_by_keyboard(
    desktop: BrowserContext,
    team: dict[str, User],
    flagged: tuple[Patient, Flag],
    live_server,  # type: ignore[no-untyped-def]
) -> None:
    patient, flag = flagged
    log_in(desktop, team["coordinator"], live_server.url)
    page = desktop.new_page()
    page.goto(f"/patients/{patient.pk}/")
    # The banner is the first thing in <main>.
    first = page.locator("main > :first-child")
    expect(first).to_have_class("urgent-banner")
    expect(first.get_by_role("heading", level=2)).to_contain_text("unresolved urgent flag")

    tab_to(page, r"^Acknowledge or resolve this flag")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/flags/\?show=unresolved#flag-{flag.pk}$"))
    row = page.locator(f"#flag-{flag.pk}")
    note = row.get_by_label(re.compile(r"^What was done \(required\)"))

    # Enter in the empty note: refused, the error by the field, nothing changed.
    tab_to(page, rf"^flag-{flag.pk}-note$")
    page.keyboard.press("Enter")
    expect(row.locator(f"#flag-{flag.pk}-note-error")).to_contain_text("Say what was done")
    expect(note).to_have_attribute("aria-describedby", f"flag-{flag.pk}-note-error")
    flag.refresh_from_db()
    assert flag.status == "open"

    tab_to(page, rf"^flag-{flag.pk}-note$")
    page.keyboard.type(NOTE)
    page.keyboard.press("Tab")
    assert focused(page).startswith("Acknowledge")
    page.keyboard.press("Enter")
    expect(row.locator("td[data-label='Status']")).to_contain_text("Acknowledged")
    expect(row).to_contain_text(NOTE)
    flag.refresh_from_db()
    assert (flag.status, flag.acknowledged_by, flag.acknowledged_note) == (
        "acknowledged", team["coordinator"], NOTE
    )  # fmt: skip

    tab_to(page, rf"^flag-{flag.pk}-outcome$")
    page.keyboard.type(OUTCOME)
    page.keyboard.press("Tab")
    assert focused(page).startswith("Resolve")
    page.keyboard.press("Enter")
    expect(row.locator("td[data-label='Status']")).to_contain_text("Resolved")
    expect(row).to_contain_text(OUTCOME)
    page.screenshot(path=screenshot_path("staff-flag-acknowledged-and-resolved"), full_page=True)
    flag.refresh_from_db()
    assert (flag.status, flag.resolved_by, flag.resolved_outcome) == (
        "resolved", team["coordinator"], OUTCOME
    )  # fmt: skip

    page.goto(f"/patients/{patient.pk}/")
    expect(page.locator(".urgent-banner")).to_have_count(0)
    history = page.locator(f"#patient-flag-{flag.pk}")
    expect(history).to_contain_text(NOTE)
    expect(history).to_contain_text(OUTCOME)
