"""A trainer in a sandbox clinic, in Chromium, with a real worker: every page says SANDBOX with
the test clock; on *Test clock* the clinic admin advances it two weeks, the page shows the advance
going on, and once done the banner and the page show the new time and the patient's weekly
check-in has opened and been recorded as sent (screenshot of the page)."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from playwright.sync_api import BrowserContext, expect

from carehub.checkins.models import Checkin, CheckinStatus
from carehub.clinics.clock import clinic_time
from carehub.clinics.models import Clinic
from carehub.clinics.services import clinic_create
from carehub.core import clock
from carehub.messaging.models import Message, MessageStatus
from tests.api.test_test_clock import _in_conventional_care, _settled
from tests.support.browser import log_in, screenshot_path
from tests.web.conftest import make_team

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_admin_advances_the_sandbox_two_weeks(
    desktop: BrowserContext, live_server, celery_worker_process: str
) -> None:  # type: ignore[no-untyped-def]
    sandbox = clinic_create(
        name="Training Sandbox", slug="training", time_zone="Europe/London", sandbox=True,
        test_clock_start=clock.now().replace(microsecond=0),
    )  # fmt: skip
    team = make_team(sandbox, prefix="t-", last_name="Trainer")
    with clinic_time(sandbox):
        enrolment = _in_conventional_care(sandbox, team, "TR-1")
    _settled(enrolment)
    start = sandbox.test_clock_at
    assert start is not None
    log_in(desktop, team["clinic_admin"], live_server.url)
    page = desktop.new_page()
    page.goto("/caseload/")
    banner = page.get_by_test_id("sandbox-banner")
    expect(banner).to_contain_text("SANDBOX")
    expect(banner).to_contain_text("test clock at")
    banner.get_by_role("link", name="Test clock").click()
    expect(page.get_by_role("heading", name="Test clock")).to_be_visible()
    page.get_by_label("Advance by").fill("2")
    page.get_by_label("Unit").select_option("weeks")
    page.get_by_role("button", name="Advance the clock").click()
    expect(page.get_by_text("Advancing the test clock by 2 weeks")).to_be_visible()
    deadline = time.monotonic() + 120
    while Clinic.objects.get(pk=sandbox.pk).advance_to is not None:
        assert time.monotonic() < deadline, "the advance did not finish"
        time.sleep(0.5)
    page.reload()
    expect(page.get_by_test_id("test-clock-advancing")).to_have_count(0)
    end = start + timedelta(weeks=2)
    shown = page.get_by_test_id("test-clock-now").locator("time")
    assert shown.get_attribute("datetime") == end.isoformat()
    expect(page.get_by_test_id("sandbox-banner")).to_contain_text(
        re.compile(end.astimezone(sandbox_zone(sandbox)).strftime("%d %b %Y").lstrip("0"))
    )
    page.screenshot(path=screenshot_path("staff-test-clock"), full_page=True)
    opened = Checkin.objects.filter(enrolment=enrolment).exclude(status=CheckinStatus.SCHEDULED)
    assert opened.exists()
    assert all(start <= c.opened_at <= end for c in opened if c.opened_at)  # type: ignore[operator]
    assert Message.objects.filter(
        patient=enrolment.patient, purpose="checkin_request", status=MessageStatus.SENT
    ).exists()


def sandbox_zone(clinic: Clinic):  # type: ignore[no-untyped-def]
    from zoneinfo import ZoneInfo

    return ZoneInfo(clinic.time_zone)
