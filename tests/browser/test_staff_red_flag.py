"""A patient answers PHQ-9 item 9 with "several days" (1) from their check-in link on a phone;
the urgent flag is on the coordinator's dashboard, first, at once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import BrowserContext, expect

from carehub.accounts.models import User
from carehub.checkins.models import Checkin, CheckinStatus
from carehub.checkins.services import (
    checkin_link_mint,
    checkin_series_start,
    checkins_open_due,
)
from carehub.clinics.services import clinic_create
from carehub.core import clock
from carehub.patients.models import Patient
from carehub.worklists.models import Flag
from tests.support.browser import log_in, screenshot_path
from tests.web.conftest import make_team, on_team, register, with_history
from tests.web.histories import early_conventional

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def team() -> dict[str, User]:
    clinic = clinic_create(name="Flag Clinic", slug="flag", time_zone="Europe/London")
    return make_team(clinic, prefix="f-", last_name="Tester")


@pytest.fixture
def calm_and_at_risk(team: dict[str, User]) -> tuple[Patient, Patient]:
    clinic = team["coordinator"].clinic
    calm = on_team(register(clinic, "F-1", "Ada", "Abbott"), team)  # type: ignore[arg-type]
    at_risk = on_team(register(clinic, "F-2", "Zoe", "Zimmer"), team)  # type: ignore[arg-type]
    for patient in (calm, at_risk):
        with_history(patient, team, early_conventional, 45)
    return calm, at_risk


def open_phq9_link(patient: Patient) -> str:
    """Open a PHQ-9 check-in now and mint the link its message would carry (the pathway's own
    series start through the outbox, which needs a worker: this test starts one directly)."""
    now = clock.now()
    series = checkin_series_start(
        enrolment=patient.enrolments.get(), series="browser_phq9", instrument="phq9",
        every=timedelta(days=14), at=now - timedelta(days=15),
    )  # fmt: skip
    checkin = Checkin.objects.get(series=series, status=CheckinStatus.SCHEDULED)
    Checkin.objects.filter(pk=checkin.pk).update(
        due_at=now - timedelta(minutes=1), closes_at=now + timedelta(days=2)
    )
    checkins_open_due(now=now)
    checkin.refresh_from_db()
    assert checkin.status == CheckinStatus.OPEN
    return checkin_link_mint(checkin=checkin)


def test_item9_from_a_link_is_an_urgent_flag_on_the_coordinators_dashboard(
    phone: BrowserContext,
    desktop: BrowserContext,
    team: dict[str, User],
    calm_and_at_risk: tuple[Patient, Patient],
    live_server,  # type: ignore[no-untyped-def]
) -> None:
    _, at_risk = calm_and_at_risk
    token = open_phq9_link(at_risk)

    patient_page = phone.new_page()
    patient_page.goto(f"/c/{token}")
    # On a phone the link page asks one question per screen.
    for n in range(1, 9):
        patient_page.locator(f"#q-item{n} input[value='0']").check()
        patient_page.get_by_role("button", name="Next").click()
    patient_page.locator("#q-item9 input[value='1']").check()
    expect(patient_page.locator("#help-phq9_item9_positive")).to_contain_text("988")
    patient_page.get_by_role("button", name="Next").click()
    patient_page.locator("#q-difficulty input[value='1']").check()
    patient_page.get_by_role("button", name="Send my answers").click()
    expect(patient_page.locator(".crisis")).to_contain_text("988")
    assert Flag.objects.filter(patient=at_risk, severity="urgent", status="open").count() == 1

    log_in(desktop, team["coordinator"], live_server.url)
    page = desktop.new_page()
    page.goto("/caseload/?sort=attention")
    expect(page.locator(".count-urgent")).to_contain_text("1")
    first = page.locator("table.caseload tbody tr").first
    expect(first).to_contain_text("Zimmer, Zoe")
    expect(first).to_contain_text("1 urgent")
    page.screenshot(path=screenshot_path("staff-caseload-red-flag"), full_page=True)
    page.goto("/flags/")
    expect(page.locator("tbody tr").first).to_contain_text("Zimmer")
    expect(page.locator("tbody tr").first).to_contain_text("Urgent")
