"""Published pathway definitions: readable by any member of staff, no patient data."""

from __future__ import annotations

import pytest

from carehub.accounts.models import User
from carehub.audit.models import AuditEvent
from tests.api.conftest import EXAMPLE_KEY, assert_problem

pytestmark = pytest.mark.django_db


def test_the_list_names_each_published_definition_with_its_tracks(client_for, staff) -> None:  # type: ignore[no-untyped-def]
    response = client_for(staff["pharmacist"]).get("/api/v1/pathways")
    assert response.status_code == 200
    example = next(d for d in response.json() if d["key"] == EXAMPLE_KEY)
    assert example["version"] == 1
    assert example["title"] == "Stepped care (example)"
    assert [t["track"] for t in example["tracks"]] == ["ladder", "pt", "cbt"]


def test_the_detail_has_states_events_and_thresholds_with_their_source(client_for, staff) -> None:  # type: ignore[no-untyped-def]
    response = client_for(staff["clinic_admin"]).get(f"/api/v1/pathways/{EXAMPLE_KEY}/1")
    assert response.status_code == 200
    body = response.json()
    ladder = next(t for t in body["tracks"] if t["track"] == "ladder")
    states = {s["state"]: s for s in ladder["states"]}
    assert states[ladder["initial"]]["final"] is False
    assert any(s["invasive"] for s in states.values())
    assert any(s["final"] for s in states.values())
    assert {"state", "title", "stage", "final", "invasive"} == set(states[ladder["initial"]])
    events = {e["event"] for e in body["events"]}
    assert {"intake_complete", "esi_requested", "discharge"} <= events
    assert "psych_cleared" not in events  # raised by the pathway itself
    thresholds = {t["name"]: t for t in body["thresholds"]}
    assert thresholds["esi_max_per_year"]["default"] == 4
    assert thresholds["esi_max_per_year"]["source"] == "Medicare LCD L39242"
    assert thresholds["block_relief_pct"]["unit"] == "%"


def test_the_diagram_is_mermaid_as_json_or_text(client_for, staff) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["physician"])
    url = f"/api/v1/pathways/{EXAMPLE_KEY}/1/diagram"
    as_json = client.get(url)
    assert as_json.status_code == 200
    assert as_json.json()["mermaid"].startswith("stateDiagram-v2")
    as_text = client.get(url, HTTP_ACCEPT="text/plain")
    assert as_text.status_code == 200
    assert as_text["Content-Type"].startswith("text/plain")
    assert as_text.content.decode() == as_json.json()["mermaid"]


@pytest.mark.parametrize("suffix", ["", "/diagram"])
def test_an_unknown_pathway_or_version_is_not_found(client_for, staff, suffix: str) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["coordinator"])
    assert_problem(client.get(f"/api/v1/pathways/{EXAMPLE_KEY}/99{suffix}"), 404, "not_found")
    assert_problem(client.get(f"/api/v1/pathways/no-such-thing/1{suffix}"), 404, "not_found")


def test_an_unknown_diagram_is_a_problem_even_when_text_was_asked_for(client_for, staff) -> None:  # type: ignore[no-untyped-def]
    response = client_for(staff["coordinator"]).get(
        "/api/v1/pathways/no-such-thing/1/diagram", HTTP_ACCEPT="text/plain"
    )
    assert_problem(response, 404, "not_found")


def test_staff_without_a_clinic_role_and_anonymous_callers_are_refused(client_for, db) -> None:  # type: ignore[no-untyped-def]
    operator = User.objects.create_superuser("operator", password=None)
    assert_problem(client_for(operator).get("/api/v1/pathways"), 403, "not_permitted")
    assert client_for(None).get("/api/v1/pathways").status_code == 401


def test_reading_definitions_writes_no_audit_rows(client_for, staff) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["coordinator"])
    client.get("/api/v1/pathways")
    client.get(f"/api/v1/pathways/{EXAMPLE_KEY}/1")
    assert not AuditEvent.objects.exists()
