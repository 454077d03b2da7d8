"""Every staff page passes axe-core's WCAG 2.1 A/AA and best-practice rules (labels, contrast,
landmarks, names of controls, headings...) without a single violation, on a laptop and a phone.

axe-core (MPL-2.0, vendored from the npm package `axe-core`) is evaluated through the
browser's debugging protocol, which the page's Content Security Policy does not apply to."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from carehub.clinics.services import clinic_create
from carehub.core import clock
from carehub.messaging.models import Message, MessageStatus
from carehub.messaging.services import message_enqueue
from carehub.pathways.models import Enrolment
from carehub.patients.models import Patient
from carehub.worklists.services import care_task_create, flag_raise
from tests.support.browser import DESKTOP, PHONE, log_in
from tests.web.conftest import make_team, on_team, register, with_history
from tests.web.histories import block_proposed

pytestmark = pytest.mark.django_db(transaction=True)
AXE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text()
IMPACTS = {"minor", "moderate", "serious", "critical"}


def violations(page: Page) -> list[str]:
    page.evaluate(AXE)
    result = page.evaluate(
        """() => axe.run(document, {runOnly: {type: 'tag',
              values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}})"""
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in IMPACTS
    ]


@pytest.fixture
def clinic_with_work() -> tuple[dict, Patient]:  # type: ignore[type-arg]
    clinic = clinic_create(name="Axe Clinic", slug="axe", time_zone="Europe/London")
    team = make_team(clinic, prefix="a-")
    patient = on_team(register(clinic, "X-1", "Xena", "Xu"), team, tuple(team))
    with_history(patient, team, block_proposed, 100)
    enrolment = Enrolment.objects.get(patient=patient)
    flag_raise(
        enrolment=enrolment, code="phq9_item9", severity="urgent",
        message="PHQ-9 item 9 answered 2", raised_at=clock.now(),
    )  # fmt: skip
    care_task_create(enrolment=enrolment, discipline="coordinator", title="Call", due_at=None)
    message = message_enqueue(
        patient=patient, recipient="patient", purpose="pathway_notice", body="Hello",
        idempotency_key="axe-dead", why="Notice",
    )  # fmt: skip
    Message.objects.filter(pk=message.pk).update(status=MessageStatus.DEAD, last_error="503")
    return team, patient


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_staff_pages_have_no_accessibility_violations(
    browser: Browser,
    clinic_with_work,
    live_server,
    viewport: str,  # type: ignore[no-untyped-def]
) -> None:
    team, patient = clinic_with_work
    options = DESKTOP if viewport == "desktop" else PHONE
    found: dict[str, list[str]] = {}
    anonymous = browser.new_context(**options, base_url=live_server.url)
    page = anonymous.new_page()
    page.goto("/login/")
    found["/login/"] = violations(page)
    anonymous.close()
    for role, paths in (
        ("coordinator", ["/caseload/", f"/patients/{patient.pk}/", "/flags/", "/tasks/",
                         "/messages/dead/", "/dev/sent-messages/"]),
        ("physician", [f"/patients/{patient.pk}/"]),
        ("physical_therapist", ["/my/", f"/patients/{patient.pk}/"]),
    ):  # fmt: skip
        context = browser.new_context(**options, base_url=live_server.url)
        log_in(context, team[role], live_server.url)
        page = context.new_page()
        for path in paths:
            page.goto(path)
            found[f"{role} {path}"] = violations(page)
        context.close()
    assert {where: problems for where, problems in found.items() if problems} == {}


def test_the_check_finds_a_violation_when_there_is_one(browser: Browser) -> None:
    context = browser.new_context(**DESKTOP)
    page = context.new_page()
    page.set_content(
        '<html lang="en"><body><main><input type="text">'
        '<p style="color:#bbb;background:#fff">faint</p></main></body></html>'
    )
    found = violations(page)
    context.close()
    assert any(v.startswith("label ") for v in found)
    assert any(v.startswith("color-contrast ") for v in found)
