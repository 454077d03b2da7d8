"""A sandbox clinic's test clock page and banner (ADR 0024): every staff page of a sandbox says
so with its test clock; its admin advances the clock from the page (the same service as the
API); a production clinic has neither."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client

from carehub.clinics.models import Clinic
from carehub.clinics.services import clinic_create
from carehub.core import clock
from tests.support.celery_worker import purge_queue
from tests.web.conftest import form_key, make_team

pytestmark = pytest.mark.django_db


@pytest.fixture
def sandbox(db: None) -> Clinic:
    return clinic_create(
        name="Sandbox Clinic", slug="sandbox", time_zone="Europe/London", sandbox=True,
        test_clock_start=clock.now().replace(microsecond=0) + timedelta(days=3),
    )  # fmt: skip


def _client(user: object) -> Client:
    client = Client()
    client.force_login(user)  # type: ignore[arg-type]
    return client


def test_every_staff_page_of_a_sandbox_shows_the_banner(sandbox: Clinic, clinic: Clinic) -> None:
    ours = _client(make_team(sandbox, "sb-")["coordinator"])
    for url in ("/caseload/", "/tasks/", "/flags/", "/test-clock/"):
        page = ours.get(url).content.decode()
        assert "SANDBOX" in page, url
        assert "test clock at" in page
        assert sandbox.test_clock_at.astimezone().strftime("%Y") in page  # type: ignore[union-attr]
    theirs = _client(make_team(clinic, "rp-")["coordinator"])
    page = theirs.get("/caseload/").content.decode()
    assert "SANDBOX" not in page
    assert "Test clock" not in page
    assert theirs.get("/test-clock/").status_code == 404


def test_the_admin_advances_the_clock_from_the_page(sandbox: Clinic) -> None:
    purge_queue()
    team = make_team(sandbox, "sb-")
    admin = _client(team["clinic_admin"])
    page = admin.get("/test-clock/").content.decode()
    assert "Advance the clock" in page
    url = "/test-clock/advance"
    too_far = admin.post(url, {"form_key": form_key(page, url), "amount": 60, "unit": "weeks"})
    assert too_far.status_code == 400
    assert "at most 366 days" in too_far.content.decode()
    sandbox.refresh_from_db()
    assert sandbox.advance_to is None
    page = admin.get("/test-clock/").content.decode()
    sent = admin.post(url, {"form_key": form_key(page, url), "amount": 2, "unit": "weeks"})
    assert sent.status_code == 302
    sandbox.refresh_from_db()
    assert sandbox.advance_to == sandbox.test_clock_at + timedelta(weeks=2)  # type: ignore[operator]
    page = admin.get("/test-clock/").content.decode()
    assert "Advancing to" in page
    assert "advancing to" in admin.get("/caseload/").content.decode()
    # A second advance while the first waits for its worker: refused, nothing changed.
    again = admin.post(url, {"form_key": form_key(page, url), "amount": 1, "unit": "days"})
    assert again.status_code == 409
    sandbox.refresh_from_db()
    assert sandbox.advance_to == sandbox.test_clock_at + timedelta(weeks=2)  # type: ignore[operator]
    # Staff see the clock; only the admin moves it.
    coordinator = _client(team["coordinator"])
    assert "Advance the clock" not in coordinator.get("/test-clock/").content.decode()
    refused = coordinator.post(url, {"form_key": "a" * 32, "amount": 1, "unit": "days"})
    assert refused.status_code == 403
    purge_queue()
