"""The harness itself: the system Chromium renders a live-server page, and an injected session
is the logged-in user's."""

from __future__ import annotations

import pytest
from playwright.sync_api import BrowserContext

from carehub.accounts.models import Role
from carehub.accounts.services import staff_create
from carehub.clinics.services import clinic_create
from tests.support.browser import log_in, screenshot_path

pytestmark = pytest.mark.django_db(transaction=True)


def test_chromium_renders_the_live_server(desktop: BrowserContext) -> None:
    page = desktop.new_page()
    response = page.goto("/healthz")
    assert response is not None
    assert response.status == 200
    assert '"status"' in page.content()


def test_an_injected_session_is_logged_in(desktop: BrowserContext, live_server) -> None:  # type: ignore[no-untyped-def]
    clinic = clinic_create(name="Harness Clinic", slug="harness", time_zone="Europe/London")
    admin = staff_create(
        clinic=clinic, username="harness-admin", role=Role.CLINIC_ADMIN, password=None,
        is_staff=True,
    )  # fmt: skip
    log_in(desktop, admin, live_server.url)
    page = desktop.new_page()
    page.goto("/admin/")
    assert page.url.endswith("/admin/")  # not redirected to the login page
    page.screenshot(path=screenshot_path("admin-index"), full_page=True)
