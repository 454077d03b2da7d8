"""Safe at a glance: the caseload is one compact line a patient, needs attention first, with a
progress column in words and contact problems shown; the patient page starts with a summary,
says states, events and rules in words (the raw rule one click away), folds its long sections,
draws each track's diagram within the page's width, and shows the evidence for an escalation:
failed treatments with dates, the score trend, what speaks against it, and the reason of each
decision. axe-core finds nothing on either page on a laptop, a phone and at 200 % zoom."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from carehub.accounts.models import User
from carehub.clinics.services import clinic_create
from carehub.core import clock
from carehub.messaging.models import Message, MessageStatus
from carehub.messaging.services import message_enqueue
from carehub.pathways.models import Enrolment, Proposal
from carehub.patients.models import Patient
from carehub.worklists.services import flag_raise
from tests.browser.test_staff_accessibility import violations
from tests.support.browser import log_in, screenshot_path
from tests.web.conftest import make_team, on_team, register, with_history
from tests.web.histories import block_proposed, early_conventional, intake_only

pytestmark = pytest.mark.django_db(transaction=True)

LAPTOP = {"viewport": {"width": 1280, "height": 800}}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
# 200 % zoom of a 1280 x 800 screen: the page lays out in 640 x 400 CSS pixels, twice as big.
ZOOM_200 = {"viewport": {"width": 640, "height": 400}, "device_scale_factor": 2}
VIEWPORTS = {"laptop": LAPTOP, "phone": PHONE, "zoom-200": ZOOM_200}
NOT_IN_SERVICE = "the provider refused +447700900009: number not in service"
# What must not be shown as words: state, event and fact keys, rule text, engine notes.
KEYS = re.compile(
    r"\b[a-z0-9]+_[a-z0-9_]+\b|\b(peg|cbt|pt|phq9|mbb1)\.[a-z_]+|no transition on|"
    r"[<>]=|\bmbb1\b|\bconventional_review_due\b"
)


@pytest.fixture
def clinic_at_a_glance() -> tuple[dict[str, User], dict[str, Patient]]:
    clinic = clinic_create(name="Glance Clinic", slug="glance", time_zone="Europe/London")
    team = make_team(clinic, prefix="g-", last_name="Glance")
    ann = on_team(register(clinic, "G-1", "Ann", "Able"), team)
    with_history(ann, team, early_conventional, 45)
    bea = on_team(register(clinic, "G-2", "Bea", "Brown"), team)
    with_history(bea, team, block_proposed, 100)
    flag_raise(
        enrolment=Enrolment.objects.get(patient=bea), code="phq9_item9", severity="urgent",
        message="PHQ-9 item 9 answered 2", raised_at=clock.now() - timedelta(hours=3),
    )  # fmt: skip
    zed = on_team(register(clinic, "G-3", "Zed", "Zulu"), team)
    with_history(zed, team, intake_only, 3)
    message = message_enqueue(
        patient=zed, recipient="patient", purpose="pathway_notice", body="Hello",
        idempotency_key="glance-dead", why="Notice",
    )  # fmt: skip
    Message.objects.filter(pk=message.pk).update(
        status=MessageStatus.DEAD, last_error=NOT_IN_SERVICE
    )
    return team, {"ann": ann, "bea": bea, "zed": zed}


def visible_text(page: Page, selector: str) -> str:
    """What a person sees (closed <details> and visually hidden text left out)."""
    return page.locator(selector).inner_text()


def no_sideways_scrolling(page: Page) -> bool:
    return bool(
        page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1")
    )


def test_the_caseload_is_one_compact_line_a_patient_needs_attention_first(
    browser: Browser, clinic_at_a_glance, live_server
) -> None:  # type: ignore[no-untyped-def]
    team, _ = clinic_at_a_glance
    context = browser.new_context(**LAPTOP, base_url=live_server.url)
    log_in(context, team["coordinator"], live_server.url)
    page = context.new_page()
    page.goto("/caseload/")
    expect(page.get_by_label("Sort by")).to_have_value("attention")
    rows = page.locator("table.caseload tbody tr")
    expect(rows).to_have_count(3)
    # Needs attention first: the urgent flag (and the escalation), then the rest.
    assert rows.nth(0).locator("th a").inner_text() == "Brown, Bea"
    heights = [rows.nth(i).bounding_box()["height"] for i in range(3)]  # type: ignore[index]
    assert max(heights) <= 90, heights  # one compact line (it was ~250 px)
    bea = page.get_by_role("row", name=re.compile("Brown, Bea"))
    # Each track's state as a chip, in the definition's words.
    expect(bea.locator(".chip")).to_contain_text(["Ladder", "PT", "CBT", "Opioids"])
    expect(bea.locator(".chip").first).to_contain_text("Interventional review")
    # The last PEG and its change, the progress in words.
    expect(bea.get_by_role("cell").nth(1)).to_contain_text(re.compile(r"\d+(\.\d)? \d+ % better"))
    expect(bea.locator("td[data-label=Progress]")).to_contain_text(
        re.compile(r"Interventional review, reached (today|yesterday|\d+ (days|weeks) ago)")
    )
    expect(bea.locator("td[data-label='Needs attention']")).to_contain_text("1 to approve")
    zed = page.get_by_role("row", name=re.compile("Zulu, Zed"))
    expect(zed.locator("td[data-label='Needs attention']")).to_contain_text("Cannot reach")
    expect(zed).to_contain_text("number not in service")
    for row in range(3):
        assert not KEYS.search(rows.nth(row).inner_text()), rows.nth(row).inner_text()
    page.screenshot(path=screenshot_path("caseload-at-a-glance"), full_page=True)
    context.close()


def test_the_patient_page_starts_with_a_summary_in_words_and_draws_the_pathway_within_the_page(
    browser: Browser, clinic_at_a_glance, live_server
) -> None:  # type: ignore[no-untyped-def]
    team, patients = clinic_at_a_glance
    bea = patients["bea"]
    for name, options in (("laptop", LAPTOP), ("phone", PHONE)):
        context = browser.new_context(**options, base_url=live_server.url)
        log_in(context, team["coordinator"], live_server.url)
        page = context.new_page()
        page.goto(f"/patients/{bea.pk}/")
        # The urgent banner, then the summary, before anything else.
        sections = page.locator("main > section")
        expect(sections.nth(0)).to_have_class(re.compile("urgent-banner"))
        summary = page.get_by_role("region", name="Summary")
        expect(sections.nth(1)).to_have_attribute("id", "summary")
        expect(summary).to_contain_text("PHQ-9 item 9 answered 2")
        expect(summary).to_contain_text("First diagnostic medial branch block")
        expect(summary).to_contain_text("Escalation ladder: Interventional review since")
        expect(summary).to_contain_text("CBT for chronic pain:")
        expect(summary).to_contain_text(re.compile(r"PEG \d+(\.\d)? on \d+ \w{3}"))
        expect(summary).to_contain_text("Next due")
        # Words, not keys, wherever the page explains the pathway.
        for region in ("#summary", "#escalations", "#pathway"):
            text = visible_text(page, region)
            assert not KEYS.search(text), (region, KEYS.search(text))
        # The long sections fold: the timeline is closed until asked for, in words when open.
        timeline = page.locator("#timeline details.section")
        expect(timeline).not_to_have_attribute("open", "")
        page.get_by_role("heading", name="Timeline").click()
        expect(timeline).to_have_attribute("open", "")
        expect(page.locator("#timeline")).to_contain_text("12-week review of conventional care")
        expect(page.locator("#timeline")).to_contain_text(
            "Escalation ladder: Conventional care → Interventional review"
        )
        assert not KEYS.search(visible_text(page, "#timeline ol.timeline"))
        # Each track's diagram fits the page: no sideways scrolling, no cut-off names.
        assert no_sideways_scrolling(page)
        for svg in page.locator("svg.diagram-svg").all():
            box = svg.bounding_box()
            assert box is not None
            assert box["x"] >= 0
            assert box["x"] + box["width"] <= options["viewport"]["width"]  # type: ignore[index]
        texts = page.locator("svg.diagram-svg text").all_text_contents()
        assert not [t for t in texts if "…" in t]
        ladder_text = " ".join(
            page.locator("svg.diagram-svg").first.locator("text").all_text_contents()
        )
        assert "Second (comparative) medial" in ladder_text  # wrapped, not cut
        expect(page.locator("svg.diagram-svg .state-current").first).to_contain_text(
            "Interventional review"
        )
        page.screenshot(path=screenshot_path(f"patient-urgent-flag-{name}"), full_page=True)
        context.close()


def test_an_escalation_shows_its_evidence_and_what_speaks_against_it_and_the_approval_reason(
    browser: Browser, clinic_at_a_glance, live_server
) -> None:  # type: ignore[no-untyped-def]
    team, patients = clinic_at_a_glance
    bea = patients["bea"]
    context = browser.new_context(**LAPTOP, base_url=live_server.url)
    log_in(context, team["physician"], live_server.url)
    page = context.new_page()
    page.goto(f"/patients/{bea.pk}/")
    card = page.get_by_role("article", name="First diagnostic medial branch block")
    expect(card).to_contain_text(
        "Escalation ladder: Interventional review → First medial branch block"
    )
    # Why, in sentences from the values read, the rule one click away.
    expect(card.locator(".clauses")).to_contain_text(
        re.compile(r"Weeks of conservative care: [\d.]+; the rule asks for at least 12 weeks "
                   r"\(ASRA 2020 multisociety consensus, pathway default\): met")
    )  # fmt: skip
    rule = card.locator("details.raw-rule").first
    expect(rule.locator("code").first).not_to_be_visible()
    rule.locator("summary").click()
    expect(rule.locator("code").first).to_have_text(
        "conservative_care.weeks >= threshold.facet_min_conservative_weeks"
    )
    # The failed treatments with dates, the score trend, and what speaks against it.
    failed = r"Gabapentinoid \(gabapentin, pregabalin\): insufficient effect.*recorded \d+ \w{3}"
    expect(card).to_contain_text(re.compile(failed))
    expect(card).to_contain_text(re.compile(r"SNRI \(duloxetine, venlafaxine\)"))
    expect(card).to_contain_text(re.compile(r"PEG, last scores: [\d.]+( → [\d.]+){5}"))
    against = card.locator(".against")
    expect(against).to_contain_text(
        re.compile(r"PEG improved only [\d.]+ % \(7\.8 → [\d.]+\) since the baseline on \d+ \w{3}; "
                   r"a meaningful improvement is 30 %")
    )  # fmt: skip
    expect(against).to_contain_text("Unresolved urgent flag: PHQ-9 item 9 answered 2.")
    card.screenshot(path=screenshot_path("approval-card"))
    # The physician approves with a reason: it is shown on the page, not only in the admin.
    card.get_by_label("Reason (required to reject)").fill("Facet-mediated pain on exam")
    card.get_by_role("button", name="Approve").click()
    expect(page.get_by_role("status")).to_contain_text(
        "Now Escalation ladder: Interventional review → First medial branch block."
    )
    decided = page.locator(".decisions")
    expect(decided).to_contain_text("Approved: First diagnostic medial branch block")
    expect(decided).to_contain_text("Reason given: Facet-mediated pain on exam")
    expect(decided).to_contain_text("by Pain Glance")
    assert Proposal.objects.get(enrolment__patient=bea).reason == "Facet-mediated pain on exam"
    context.close()


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_caseload_and_patient_page_have_no_accessibility_violations(
    browser: Browser, clinic_at_a_glance, live_server, viewport: str
) -> None:  # type: ignore[no-untyped-def]
    team, patients = clinic_at_a_glance
    found: dict[str, list[str]] = {}
    for role in ("coordinator", "physician"):
        context: BrowserContext = browser.new_context(
            **VIEWPORTS[viewport], base_url=live_server.url
        )
        log_in(context, team[role], live_server.url)
        page = context.new_page()
        for path in (
            "/caseload/",
            f"/patients/{patients['bea'].pk}/",
            f"/patients/{patients['zed'].pk}/",
        ):
            page.goto(path)
            found[f"{role} {path}"] = violations(page)
            if path != "/caseload/":
                for folded in page.locator("details.section > summary").all():
                    folded.click()  # the folded sections too
                found[f"{role} {path} (sections open)"] = violations(page)
        context.close()
    assert {where: problems for where, problems in found.items() if problems} == {}
