"""The instrument library over the API: what the library ships, nothing more."""

from __future__ import annotations

import pytest

from carehub.accounts.models import User
from carehub.instruments.registry import instruments
from tests.api.conftest import assert_problem

pytestmark = pytest.mark.django_db


def test_every_published_version_is_listed(client_for, staff: dict[str, User]) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["physical_therapist"])
    rows = client.get("/api/v1/instruments").json()
    assert {(r["key"], r["version"]) for r in rows} == {(d.key, d.version) for d in instruments()}
    latest = client.get("/api/v1/instruments?latest=true").json()
    assert len({r["key"] for r in latest}) == len(latest)


def test_detail_has_items_options_scoring_bands_mcid_and_loinc(client_for, staff) -> None:  # type: ignore[no-untyped-def]
    body = client_for(staff["clinic_admin"]).get("/api/v1/instruments/phq9/1").json()
    assert body["licence"] == "free"
    item9 = next(item for item in body["items"] if item["key"] == "item9")
    assert [o["value"] for o in item9["options"]] == [0, 1, 2, 3]
    assert item9["loinc"] == "44260-8"
    assert (body["scoring"]["rule"], body["scoring"]["maximum"]) == ("sum", 27)
    assert body["bands"]["levels"][0]["at_least"] == 0
    assert body["bands"]["source"]
    assert body["mcid"]["source"]
    assert body["loinc"]["panel"]
    assert {"code": "phq9_item9_positive", "item": "item9", "urgency": "immediate"} in body[
        "red_flags"
    ]


def test_a_licensed_instrument_shows_no_wording(client_for, staff) -> None:  # type: ignore[no-untyped-def]
    body = client_for(staff["physician"]).get("/api/v1/instruments/odi/1").json()
    assert body["licence"] == "licensed"
    assert body["items"] == []
    assert body["instructions"] == ""
    assert body["administration"] == "staff"


def test_unknown_instrument_is_404(client_for, staff) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["coordinator"])
    assert_problem(client.get("/api/v1/instruments/nope/1"), 404, "not_found")
    assert_problem(client.get("/api/v1/instruments/peg/99"), 404, "not_found")
