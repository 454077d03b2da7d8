"""Clinic thresholds over the API: every pathway threshold with the value the clinic uses and
its source; the clinic admin sets one, with a source, for their own clinic only."""

from __future__ import annotations

import pytest

from carehub.accounts.models import User
from carehub.audit.models import AuditEvent
from carehub.clinics.models import Clinic, ClinicThreshold
from carehub.clinics.services import threshold_set
from tests.api.conftest import assert_problem, new_key

pytestmark = pytest.mark.django_db
URL = "/api/v1/thresholds/intractable-pain/mbb_relief_pct"


def thresholds(client) -> dict[tuple[str, str], dict]:  # type: ignore[no-untyped-def,type-arg]
    return {
        (row["pathway_key"], row["name"]): row for row in client.get("/api/v1/thresholds").json()
    }


def test_staff_see_defaults_with_their_sources(client_for, staff: dict[str, User]) -> None:  # type: ignore[no-untyped-def]
    rows = thresholds(client_for(staff["pharmacist"]))
    mbb = rows[("intractable-pain", "mbb_relief_pct")]
    assert mbb["overridden"] is False
    assert (mbb["value"], mbb["source"]) == (mbb["default"], mbb["default_source"])
    assert mbb["source"]


def test_the_clinic_admin_sets_a_value_with_its_source(
    client_for, staff: dict[str, User], clinic: Clinic
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["clinic_admin"])
    response = client.put(
        URL,
        {"value": 50, "source": "ASRA 2020", "note": "Board 2026-03"},
        format="json",
        **new_key(),
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["value"], body["source"], body["overridden"]) == (50, "ASRA 2020", True)
    assert body["updated_by_id"] == staff["clinic_admin"].pk
    row = ClinicThreshold.objects.get(clinic=clinic, name="mbb_relief_pct")
    assert (row.value, row.source) == (50, "ASRA 2020")
    audit = AuditEvent.objects.get(action="threshold.set")
    assert (audit.patient_id, audit.clinic_id, audit.detail["value"]) == (None, clinic.pk, 50)
    assert (
        thresholds(client_for(staff["physician"]))[("intractable-pain", "mbb_relief_pct")]["value"]
        == 50
    )


def test_a_source_is_required_and_the_value_has_the_defaults_type(client_for, staff) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["clinic_admin"])
    body = assert_problem(
        client.put(URL, {"value": 50}, format="json", **new_key()), 400, "invalid_input"
    )
    assert "source" in body["errors"]
    body = assert_problem(
        client.put(URL, {"value": 50, "source": "  "}, format="json", **new_key()),
        400,
        "invalid_input",
    )
    assert "source" in body["errors"]
    body = assert_problem(
        client.put(URL, {"value": "fifty", "source": "x"}, format="json", **new_key()),
        400,
        "invalid_input",
    )
    assert "value" in body["errors"]
    assert_problem(
        client.put(
            "/api/v1/thresholds/intractable-pain/nope",
            {"value": 1, "source": "x"},
            format="json",
            **new_key(),
        ),
        404,
        "not_found",
    )
    assert not ClinicThreshold.objects.exists()


def test_only_the_clinic_admin_sets_them_and_a_patient_sees_none(
    client_for, staff: dict[str, User]
) -> None:  # type: ignore[no-untyped-def]
    for role in ("physician", "coordinator"):
        assert_problem(
            client_for(staff[role]).put(
                URL, {"value": 50, "source": "x"}, format="json", **new_key()
            ),
            403,
            "not_permitted",
        )


def test_another_clinics_values_are_neither_shown_nor_changed(
    client_for, staff: dict[str, User], other_clinic: Clinic
) -> None:  # type: ignore[no-untyped-def]
    threshold_set(clinic=other_clinic, pathway_key="intractable-pain", name="mbb_relief_pct",
                  value=50, source="Other clinic policy")  # fmt: skip
    mine = thresholds(client_for(staff["coordinator"]))[("intractable-pain", "mbb_relief_pct")]
    assert mine["overridden"] is False
    assert mine["source"] != "Other clinic policy"
    client_for(staff["clinic_admin"]).put(
        URL, {"value": 60, "source": "Ours"}, format="json", **new_key()
    )
    theirs = ClinicThreshold.objects.get(clinic=other_clinic)
    assert (theirs.value, theirs.source) == (50, "Other clinic policy")
