"""The one chart module (`carehub.charts`, pygal): round ticks, the same local dates as the
caption and the table, nothing the Content Security Policy refuses, and both the staff pages and
the portal draw through it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.test import Client

from carehub.accounts.models import User
from carehub.charts import Line, Marker, score_chart
from carehub.observations.scores import score_observation_record
from carehub.patients.models import Patient
from carehub.patients.services import patient_account_create

pytestmark = pytest.mark.django_db
NEW_YORK = ZoneInfo("America/New_York")
POINTS = [
    (datetime(2026, 9, 2, 15, tzinfo=UTC), 21.0),
    (datetime(2026, 10, 14, 15, tzinfo=UTC), 17.0),
    (datetime(2026, 12, 2, 3, tzinfo=UTC), 9.0),  # 1 Dec, 22:00 in New York
]


def _texts(svg: str, group: str) -> list[str]:
    start = svg.index(f'class="{group}"')
    end = svg.index("</g></g>", start)
    return re.findall(r"<text[^>]*>([^<]*)</text>", svg[start:end])


def test_ticks_are_round_and_dates_are_the_local_days() -> None:
    svg = score_chart(
        points=POINTS, low=0, high=27, zone=NEW_YORK,
        lines=[Line(21, "Baseline 21", "baseline"), Line(16, "Threshold", "threshold")],
        markers=[Marker(datetime(2026, 10, 20, 15, tzinfo=UTC), "MBB 1")],
    )  # fmt: skip
    values = _texts(svg, "axis y always_show")
    assert values
    assert all(re.fullmatch(r"\d+", v) for v in values), values  # no 6.75, 20.25
    assert len(values) <= 8
    days = _texts(svg, "axis x")
    assert days[0] == "2 Sep"
    assert days[-1] == "1 Dec"  # the local day of the latest score, as the caption says
    assert "MBB 1" in svg


def test_the_svg_needs_no_inline_script_or_style() -> None:
    svg = score_chart(points=POINTS, low=0, high=27, zone=NEW_YORK)
    assert "<script" not in svg
    assert "<style" not in svg
    assert "style=" not in svg
    assert 'role="img"' in svg
    assert score_chart(points=[], low=0, high=10, zone=NEW_YORK) == ""


def test_the_patient_page_and_the_portal_draw_through_the_one_module(
    patient: Patient, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    clinic = patient.clinic
    clinic.time_zone = "America/New_York"
    clinic.save(update_fields=["time_zone"])
    patient.time_zone = "America/New_York"
    patient.save(update_fields=["time_zone"])
    # 03:00 UTC yesterday: in the past whenever the test runs, late evening in New York.
    latest = (datetime.now(UTC) - timedelta(days=1)).replace(
        hour=3, minute=0, second=0, microsecond=0
    )
    for days, value in ((40, 7.3), (20, 6.0), (0, 4.1)):
        score_observation_record(
            patient=patient, instrument="peg", observed_at=latest - timedelta(days=days),
            score=value, recorded_by=staff["physician"], source="staff",
        )  # fmt: skip
    local_day = latest.astimezone(NEW_YORK)
    caption_date = f"{local_day.day} {local_day:%b %Y}"
    axis_date = f"{local_day.day} {local_day:%b}"
    html = client_for(staff["coordinator"]).get(f"/patients/{patient.pk}/").content.decode()
    figure = html[html.index('aria-labelledby="chart-peg-title"') :]
    figure = figure[: figure.index("</figure>")]
    assert f"({caption_date})" in figure
    assert _texts(figure, "axis x")[-1] == axis_date  # the caption's day, not the UTC one
    assert "dateline-graph" in figure
    assert "<style" not in figure

    account = patient_account_create(patient=patient, username="pat", password=None)
    portal = Client()
    portal.force_login(account)
    body = portal.get("/me/progress/").content.decode()
    assert 'class="chart"' in body
    assert "dateline-graph" in body
    assert 'aria-labelledby="p-peg"' in body
