"""A coordinator records a PHQ-9 read out on the phone, item by item, on the patient page (on a
phone and a laptop): item 9 answered "several days" raises the urgent flag at once; the open
form passes axe-core's WCAG 2.1 AA rules."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import BrowserContext, expect

from carehub.accounts.models import User
from carehub.clinics.services import clinic_create
from carehub.observations.models import Observation
from carehub.patients.models import Patient
from carehub.worklists.models import Flag
from tests.browser.test_staff_accessibility import violations
from tests.support.browser import log_in, screenshot_path
from tests.web.conftest import make_team, on_team, register, with_history
from tests.web.histories import early_conventional

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def team() -> dict[str, User]:
    clinic = clinic_create(name="Score Clinic", slug="score", time_zone="Europe/London")
    return make_team(clinic, prefix="s-", last_name="Scorer")


@pytest.fixture
def patient(team: dict[str, User]) -> Patient:
    patient = on_team(register(team["coordinator"].clinic, "S-1", "Sam", "Stone"), team)  # type: ignore[arg-type]
    with_history(patient, team, early_conventional, 45)
    return patient


@pytest.mark.parametrize("viewport", ["phone", "desktop"])
def test_a_phq9_entered_on_the_page_raises_the_urgent_flag(
    request: pytest.FixtureRequest,
    viewport: str,
    team: dict[str, User],
    patient: Patient,
    live_server,  # type: ignore[no-untyped-def]
) -> None:
    context: BrowserContext = request.getfixturevalue(viewport)
    log_in(context, team["coordinator"], live_server.url)
    page = context.new_page()
    page.goto(f"/patients/{patient.pk}/")
    section = page.locator("#record-score")
    section.get_by_text(re.compile(r"^PHQ-9")).click()  # the summary opens the form
    form = section.locator("form[action$='/score/phq9']")
    expect(form).to_be_visible()
    assert violations(page) == []
    for n in range(1, 9):
        form.get_by_role("group", name=re.compile(rf"^{n}\. ")).get_by_label("Not at all").check()
    form.get_by_role("group", name=re.compile(r"^9\. ")).get_by_label("Several days").check()
    section.screenshot(path=screenshot_path(f"staff-score-entry-{viewport}"))
    form.get_by_role("button", name=re.compile("Record score")).click()
    expect(page.locator("body")).to_contain_text("Red flag raised (phq9_item9_positive)")
    flag = Flag.objects.get(patient=patient, code="phq9_item9_positive")
    assert flag.severity == "urgent"
    observation = Observation.objects.filter(patient=patient, code="phq9").latest("id")
    assert (observation.value_number, observation.data["items"]["item9"]) == (1, 1)
