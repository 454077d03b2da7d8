"""A coordinator logs in through the real login form, sees a pending escalation on the caseload;
a physician approves it with a reason on the patient page and sees the state change."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from carehub.accounts.models import User
from carehub.clinics.services import clinic_create
from carehub.pathways.models import Enrolment, ProposalStatus
from carehub.patients.models import Patient
from tests.support.browser import screenshot_path
from tests.web.conftest import PASSWORD, make_team, on_team, register, with_history
from tests.web.histories import block_proposed

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def team() -> dict[str, User]:
    clinic = clinic_create(name="Browser Pain Clinic", slug="browser", time_zone="Europe/London")
    return make_team(clinic, prefix="b-", last_name="Browser")


@pytest.fixture
def waiting(team: dict[str, User]) -> Patient:
    clinic = team["coordinator"].clinic
    patient = on_team(register(clinic, "B-1", "Bea", "Brown"), team)  # type: ignore[arg-type]
    with_history(patient, team, block_proposed, 100)
    return patient


def log_in_with_the_form(page: Page, username: str) -> None:
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_coordinator_sees_the_escalation_and_a_physician_approves_it(
    desktop: BrowserContext, team: dict[str, User], waiting: Patient
) -> None:
    page = desktop.new_page()
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security" in m.text else None)

    log_in_with_the_form(page, "b-coordinator")
    expect(page).to_have_url(re.compile(r"/caseload/$"))
    expect(page.get_by_role("link", name="Caseload")).to_have_attribute("aria-current", "page")
    approvals = page.locator(".count-approval")
    expect(approvals).to_contain_text("1")
    row = page.get_by_role("row", name=re.compile("Brown, Bea"))
    expect(row).to_contain_text("1 to approve")
    expect(row).to_contain_text("First diagnostic medial branch block")
    page.screenshot(path=screenshot_path("staff-caseload"), full_page=True)

    # The coordinator may look but not decide (the gate names the physician).
    row.get_by_role("link", name="Brown, Bea").click()
    expect(page.get_by_text("Only physician may decide this escalation.")).to_be_visible()
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="You are logged out")).to_be_visible()

    log_in_with_the_form(page, "b-physician")
    page.goto(f"/patients/{waiting.pk}/")
    proposal = page.get_by_role("article", name="First diagnostic medial branch block")
    expect(proposal).to_contain_text("Weeks of conservative care")
    page.screenshot(path=screenshot_path("staff-patient"), full_page=True)
    proposal.get_by_label("Reason (required to reject)").fill("Facet-mediated pain on exam")
    proposal.get_by_role("button", name="Approve").click()

    expect(page.get_by_role("status")).to_contain_text(
        "Escalation approved: First diagnostic medial branch block."
    )
    states = page.get_by_role("table", name="Current state of each track")
    expect(states.get_by_role("row", name=re.compile("Escalation ladder"))).to_contain_text(
        "First medial branch block"
    )
    expect(page.get_by_text("Escalations waiting for approval")).to_be_visible()
    expect(page.locator("#escalations")).to_contain_text("None waiting.")
    enrolment = Enrolment.objects.get(patient=waiting)
    assert enrolment.state_of("ladder") == "mbb1"
    assert enrolment.proposals.get().status == ProposalStatus.APPROVED
    assert refused == []
