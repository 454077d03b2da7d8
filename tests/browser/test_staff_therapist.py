"""A physical therapist logs a session from their workspace, on a phone and on a laptop, and
sees it on the patient's timeline."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import BrowserContext, expect

from carehub.accounts.models import User
from carehub.clinics.services import clinic_create
from carehub.observations.models import Kind, Observation
from carehub.patients.models import Patient
from tests.support.browser import log_in, screenshot_path
from tests.web.conftest import make_team, on_team, register, with_history
from tests.web.histories import early_conventional

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def team() -> dict[str, User]:
    clinic = clinic_create(name="Browser Pain Clinic", slug="browser", time_zone="Europe/London")
    return make_team(clinic, prefix="t-", last_name="Browser")


@pytest.fixture
def patient(team: dict[str, User]) -> Patient:
    patient = on_team(register(team["coordinator"].clinic, "T-1", "Tia", "Turner"), team)  # type: ignore[arg-type]
    with_history(patient, team, early_conventional, 45)
    return patient


@pytest.mark.parametrize("viewport", ["phone", "desktop"])
def test_a_therapist_logs_a_session_and_sees_it_on_the_timeline(
    request: pytest.FixtureRequest,
    viewport: str,
    team: dict[str, User],
    patient: Patient,
    live_server,  # type: ignore[no-untyped-def]
) -> None:
    context: BrowserContext = request.getfixturevalue(viewport)
    log_in(context, team["physical_therapist"], live_server.url)
    page = context.new_page()
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/my/$"))
    expect(page.get_by_role("heading", name="My workspace")).to_be_visible()
    expect(page.get_by_role("row", name=re.compile("Turner, Tia"))).to_contain_text(
        "Physical therapy"
    )
    page.screenshot(path=screenshot_path(f"staff-workspace-{viewport}"), full_page=True)

    page.get_by_role("link", name="Log a session for Tia Turner").click()
    form = page.locator("form.session-form")
    form.get_by_label("Attended", exact=True).check()
    form.get_by_label("Progress notes").fill(f"Graded walking, 20 minutes ({viewport})")
    form.get_by_label(re.compile("PSFS")).fill("5.5")
    form.get_by_role("button", name="Log session").click()

    expect(page.get_by_role("status")).to_contain_text("Session logged (attended).")
    timeline = page.locator("#timeline")
    page.get_by_role("heading", name="Timeline").click()  # the section is folded at first
    expect(timeline.get_by_text("Physical therapy session logged").first).to_be_visible()
    expect(timeline.get_by_text(f"Graded walking, 20 minutes ({viewport})")).to_be_visible()
    page.locator("#timeline").screenshot(path=screenshot_path(f"staff-timeline-{viewport}"))
    assert (
        Observation.objects.filter(
            patient=patient,
            kind=Kind.SESSION,
            data__notes=f"Graded walking, 20 minutes ({viewport})",
        ).count()
        == 1
    )
