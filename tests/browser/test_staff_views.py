"""What the staff pages show, in a real browser: the workspace goes on past a page and a logged
session lands on its message; a number not in service is fixed and the message resent by
keyboard, focus staying in the row; a refused Reject puts focus on its field, in view; the focus
ring has at least 3:1 contrast; no chart label is cut; axe-core finds nothing at 1280x800,
390x844 and 200 % zoom. Screenshots (the workspace included) in test-artifacts/."""

from __future__ import annotations

import re
from datetime import time, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from carehub.accounts.models import User
from carehub.clinics.services import clinic_create
from carehub.core import clock
from carehub.messaging.delivery import message_send
from carehub.messaging.models import Message, MessageStatus
from carehub.messaging.services import message_enqueue
from carehub.patients.models import Patient
from carehub.patients.services import patient_update
from carehub.worklists.services import care_task_create
from tests.support.browser import log_in, screenshot_path
from tests.web.conftest import make_team, on_team, register, with_history
from tests.web.histories import block_proposed, intake_only

pytestmark = pytest.mark.django_db(transaction=True)
AXE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text()
VIEWPORTS = {
    "laptop": {"viewport": {"width": 1280, "height": 800}},
    "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True},
    # 200 % zoom of a 1280x800 window: half the CSS pixels, each drawn twice as large.
    "zoom200": {"viewport": {"width": 640, "height": 400}, "device_scale_factor": 2},
}


@pytest.fixture
def clinic_data(settings) -> tuple[dict[str, User], Patient, Message]:  # type: ignore[no-untyped-def]
    """A team; a patient whose block waits for approval (scores, a procedure); three more on
    the physical therapist's team, each with a task; a message dead on a number not in
    service."""
    settings.MESSAGING_SMS_GATEWAY = "carehub.demo.gateway.DemoSmsGateway"
    settings.WEB_WORKSPACE_PAGE_SIZE = 2
    clinic = clinic_create(name="Views Clinic", slug="views", time_zone="America/New_York")
    team = make_team(clinic, prefix="v-", last_name="Views")
    waiting = on_team(register(clinic, "V-1", "Vera", "Vance"), team)
    enrolment = with_history(waiting, team, block_proposed, 100)
    care_task_create(
        enrolment=enrolment, discipline="physical_therapist", title="Review Vera's programme",
        due_at=clock.now() + timedelta(days=1),
    )  # fmt: skip
    for n in range(3):
        patient = on_team(register(clinic, f"V-{n + 2}", f"Walt{n}", f"Walker{n}"), team)
        more = with_history(patient, team, intake_only, 3)
        care_task_create(
            enrolment=more, discipline="physical_therapist", title=f"Call Walker{n}",
            due_at=clock.now() + timedelta(days=2 + n),
        )  # fmt: skip
    patient_update(
        patient=waiting, phone="+15555550199", send_window_start=time(0, 0),
        send_window_end=time(23, 59),
    )  # fmt: skip
    dead = message_enqueue(
        patient=waiting, recipient="patient", purpose="pathway_notice",
        body="Your block is being arranged", idempotency_key="views-dead", why="Notice",
        not_before=clock.now(),
    )  # fmt: skip
    assert message_send(message_id=dead.pk) == MessageStatus.DEAD
    return team, waiting, dead


def _context(browser: Browser, name: str, url: str, user: User | None) -> BrowserContext:
    context = browser.new_context(**VIEWPORTS[name], base_url=url)  # type: ignore[arg-type]
    context.set_default_timeout(15_000)
    if user is not None:
        log_in(context, user, url)
    return context


def violations(page: Page) -> list[str]:
    page.evaluate(AXE)
    result = page.evaluate(
        """() => axe.run(document, {runOnly: {type: 'tag',
              values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}})"""
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
    ]


def test_the_workspace_pages_on_and_a_logged_session_lands_on_its_message(
    browser: Browser,
    clinic_data,
    live_server,  # type: ignore[no-untyped-def]
) -> None:
    team, waiting, _ = clinic_data
    context = _context(browser, "laptop", live_server.url, team["physical_therapist"])
    page = context.new_page()
    page.goto("/my/")
    expect(page.get_by_role("heading", name="My workspace")).to_be_visible()
    patients = page.locator("section[aria-labelledby=patients-heading] tbody tr")
    expect(patients).to_have_count(2)
    expect(page.get_by_text("Advance")).to_have_count(0)  # no one-click event beside the form
    page.screenshot(path=screenshot_path("staff-my-workspace"), full_page=True)
    page.get_by_role("link", name="More patients").click()
    expect(patients).to_have_count(2)
    page.get_by_role("link", name="More tasks").click()
    expect(page.locator("section[aria-labelledby=reminders-heading] tbody tr")).to_have_count(2)
    page.screenshot(path=screenshot_path("staff-my-workspace-more"), full_page=True)

    page.goto(f"/patients/{waiting.pk}/#record")
    form = page.locator("form.session-form")
    form.get_by_label("Attended", exact=True).check()
    form.get_by_label("Progress notes").fill("Graded activity")
    form.get_by_role("button", name="Log session").click()
    message = page.get_by_role("status").filter(has_text="Session logged (attended).")
    expect(message).to_be_visible()
    expect(message).to_be_in_viewport()
    context.close()


def test_a_number_not_in_service_is_fixed_and_resent_by_keyboard(
    browser: Browser,
    clinic_data,
    live_server,  # type: ignore[no-untyped-def]
) -> None:
    team, waiting, dead = clinic_data
    context = _context(browser, "laptop", live_server.url, team["coordinator"])
    page = context.new_page()
    page.goto("/messages/dead/")
    row = page.locator(f"#message-{dead.pk}")
    expect(row.get_by_role("button", name=re.compile("^Resend"))).to_have_count(0)
    phone = row.get_by_label(re.compile("^Phone"))
    expect(phone).to_have_value("+15555550199")
    # The same number again: refused next to the field, focus on it.
    phone.focus()
    page.keyboard.press("Enter")
    expect(
        page.locator(f"#message-{dead.pk}").get_by_text("This is the number on record.")
    ).to_be_visible()
    expect(page.locator(f"#message-{dead.pk}").get_by_label(re.compile("^Phone"))).to_be_focused()
    page.keyboard.press("Control+A")
    page.keyboard.type("+447700900123")
    page.keyboard.press("Enter")
    result = page.locator(f"#message-{dead.pk} .row-result")
    expect(result).to_contain_text("Contact details saved and the message resent")
    expect(result).to_be_focused()  # focus stays in the row htmx replaced
    page.locator(f"#message-{dead.pk}").screenshot(path=screenshot_path("staff-dead-fixed"))
    waiting.refresh_from_db()
    assert waiting.phone == "+447700900123"
    dead.refresh_from_db()
    assert dead.status != MessageStatus.DEAD

    # Row actions sit in their cell (a <div>, not a flex <td>) and keep focus after the swap.
    page.goto("/tasks/?discipline=all")
    cell = page.locator("tbody tr").first.locator("td[data-label=Actions]")
    assert cell.evaluate("e => getComputedStyle(e).display") == "table-cell"
    cell.get_by_role("button", name=re.compile("^Complete")).focus()
    page.keyboard.press("Enter")
    done = page.locator("tbody tr").first.locator(".row-result")
    expect(done).to_contain_text("Done:")
    expect(done).to_be_focused()
    context.close()


def _luminance(rgb: str) -> float:
    values = [int(v) / 255 for v in re.findall(r"\d+", rgb)[:3]]
    linear = [v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4 for v in values]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(a: str, b: str) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_focus_rings_contrast_and_a_refused_reject_focuses_its_field(
    browser: Browser,
    clinic_data,
    live_server,  # type: ignore[no-untyped-def]
) -> None:
    team, waiting, _ = clinic_data
    context = _context(browser, "laptop", live_server.url, team["physician"])
    page = context.new_page()
    page.goto("/tasks/")
    for selector, background in (
        ("main button", "body"),
        (".site-header nav a", ".site-header"),
    ):
        page.locator(selector).first.focus()
        ring = page.evaluate("getComputedStyle(document.activeElement).outlineColor")
        behind = page.evaluate(
            f"getComputedStyle(document.querySelector('{background}')).backgroundColor"
        )
        assert _contrast(ring, behind) >= 3, (selector, ring, behind)

    page.goto(f"/patients/{waiting.pk}/")
    page.get_by_role("button", name="Reject").focus()
    page.keyboard.press("Enter")
    reason = page.get_by_label(re.compile("^Reason"))
    expect(reason).to_be_focused()
    expect(reason).to_be_in_viewport()
    expect(page.get_by_text("Say why the escalation is rejected.")).to_be_in_viewport()
    context.close()


def test_chart_labels_stay_inside_their_charts(
    browser: Browser,
    clinic_data,
    live_server,  # type: ignore[no-untyped-def]
) -> None:
    team, waiting, _ = clinic_data
    for name in ("laptop", "phone"):
        context = _context(browser, name, live_server.url, team["coordinator"])
        page = context.new_page()
        page.goto(f"/patients/{waiting.pk}/")
        charts = page.locator("svg.chart-svg")
        expect(charts.first).to_be_visible()
        outside = charts.evaluate_all(
            """svgs => svgs.flatMap(svg => {
                 const box = svg.getBoundingClientRect();
                 return [...svg.querySelectorAll('text')].filter(t => {
                   const r = t.getBoundingClientRect();
                   return r.width && (r.left < box.left - 0.5 || r.right > box.right + 0.5
                                      || r.top < box.top - 0.5 || r.bottom > box.bottom + 0.5);
                 }).map(t => t.textContent);
               })"""
        )
        assert outside == [], (name, outside)
        page.locator("figure.chart").first.screenshot(path=screenshot_path(f"staff-chart-{name}"))
        context.close()


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_the_pages_touched_have_no_accessibility_violations(
    browser: Browser,
    clinic_data,
    live_server,
    viewport: str,  # type: ignore[no-untyped-def]
) -> None:
    team, waiting, _ = clinic_data
    found: dict[str, list[str]] = {}
    for role, paths in (
        ("physical_therapist", ["/my/", f"/patients/{waiting.pk}/"]),
        ("coordinator", ["/messages/dead/", "/tasks/?discipline=all", "/flags/",
                         "/dev/sent-messages/", f"/patients/{waiting.pk}/"]),
    ):  # fmt: skip
        context = _context(browser, viewport, live_server.url, team[role])
        page = context.new_page()
        for path in paths:
            page.goto(path)
            found[f"{role} {path}"] = violations(page)
        if role == "physical_therapist":
            page.goto("/my/")
            page.screenshot(path=screenshot_path(f"staff-my-{viewport}"), full_page=True)
        context.close()
    assert {where: problems for where, problems in found.items() if problems} == {}
