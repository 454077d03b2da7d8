"""Escalation proposals: scoped list, approval by the roles the gate names, rejection with a
reason, criteria re-checked at approval."""

from __future__ import annotations

import pytest

from carehub.accounts.models import User
from carehub.clinics.models import ClinicThreshold
from carehub.pathways.models import Proposal, ProposalStatus
from tests.api.conftest import assert_problem, new_key

pytestmark = pytest.mark.django_db


def approve(client, proposal: Proposal, body: dict | None = None):  # type: ignore[no-untyped-def,type-arg]
    return client.post(
        f"/api/v1/proposals/{proposal.pk}/approve", body or {}, format="json", **new_key()
    )


def reject(client, proposal: Proposal, body: dict):  # type: ignore[no-untyped-def,type-arg]
    return client.post(f"/api/v1/proposals/{proposal.pk}/reject", body, format="json", **new_key())


def test_pending_proposals_are_listed(
    client_for, staff: dict[str, User], proposal: Proposal
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["physician"])
    [item] = client.get("/api/v1/proposals?status=pending").json()["results"]
    assert (item["id"], item["status"], item["target"]) == (proposal.pk, "pending", "esi")
    assert item["patient_mrn"] == "T-1"
    assert item["evidence"]["result"] is True
    assert client.get("/api/v1/proposals?status=approved").json()["results"] == []
    assert_problem(client.get("/api/v1/proposals?status=maybe"), 400, "invalid_input")


def test_coordinator_may_not_approve_but_the_physician_may(
    client_for, staff: dict[str, User], proposal: Proposal
) -> None:  # type: ignore[no-untyped-def]
    body = assert_problem(approve(client_for(staff["coordinator"]), proposal), 403, "not_permitted")
    assert "physician" in body["detail"]
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.PENDING

    response = approve(client_for(staff["physician"]), proposal, {"note": "Agreed"})
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["outcome"] == "transitioned"
    assert (data["proposal"]["status"], data["proposal"]["decided_by_id"]) == (
        "approved", staff["physician"].pk,
    )  # fmt: skip
    assert {t["track"]: t["state"] for t in data["enrolment"]["tracks"]}["ladder"] == "esi"
    assert data["enrolment"]["pending_proposals"] == []
    # A second approval (double click) answers the first.
    again = approve(client_for(staff["physician"]), proposal)
    assert again.status_code == 200
    assert again.json()["replayed"] is True


def test_clinic_admin_may_not_decide(
    client_for, staff: dict[str, User], proposal: Proposal
) -> None:  # type: ignore[no-untyped-def]
    assert_problem(approve(client_for(staff["clinic_admin"]), proposal), 403, "not_permitted")
    assert_problem(reject(client_for(staff["clinic_admin"]), proposal, {"reason": "x"}), 403,
                   "not_permitted")  # fmt: skip


def test_rejection_needs_a_reason(client_for, staff: dict[str, User], proposal: Proposal) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["physician"])
    body = assert_problem(reject(client, proposal, {}), 400, "invalid_input")
    assert list(body["errors"]) == ["reason"]
    body = assert_problem(reject(client, proposal, {"reason": "  "}), 400, "invalid_input")
    assert list(body["errors"]) == ["reason"]

    response = reject(client, proposal, {"reason": "No radicular signs"})
    assert response.status_code == 200
    assert response.json()["outcome"] == "rejected"
    assert response.json()["proposal"]["reason"] == "No radicular signs"
    # Deciding again on a closed proposal is a conflict carrying the current state.
    body = assert_problem(approve(client_for(staff["physician"]), proposal), 409, "conflict")
    assert body["current"]["states"]["ladder"] == "conventional"


def test_approval_when_the_criteria_no_longer_hold_is_422(
    client_for, staff: dict[str, User], proposal: Proposal
) -> None:  # type: ignore[no-untyped-def]
    ClinicThreshold.objects.create(
        clinic=proposal.enrolment.clinic, pathway_key="stepped-care-example",
        name="esi_max_per_year", value=0, source="Clinic policy",
    )  # fmt: skip
    body = assert_problem(approve(client_for(staff["physician"]), proposal), 422,
                          "criteria_not_met")  # fmt: skip
    assert body["explanation"]["expression"].startswith("count('esi'")
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.PENDING
