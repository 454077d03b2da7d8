"""Every API read or write of patient data leaves audit rows: who, which clinic, which patient,
from where, under which request id; refusals too, without disclosing objects outside the
user's scope."""

from __future__ import annotations

import uuid

import pytest
from rest_framework.test import APIClient

from carehub.accounts.models import User
from carehub.audit.models import AuditEvent
from carehub.clinics.models import Clinic
from carehub.pathways.models import Enrolment, Proposal
from carehub.pathways.services import enrolment_start, pathway_dispatch
from carehub.patients.models import Patient
from carehub.patients.services import care_team_add
from tests.api.conftest import register, to_conventional

pytestmark = pytest.mark.django_db

CLIENT = {"REMOTE_ADDR": "203.0.113.7", "HTTP_USER_AGENT": "ward-tablet/2.1"}


def test_a_patient_list_writes_one_row_per_listed_patient(
    client_for, staff: dict[str, User], clinic: Clinic, patient: Patient, foreign_enrolment
) -> None:  # type: ignore[no-untyped-def]
    others = [register(clinic, f"T-{n}", "Bea", f"Brown{n}") for n in (2, 3)]
    response = client_for(staff["coordinator"]).get(
        "/api/v1/patients?search=a", HTTP_X_REQUEST_ID="trace-42.a_b", **CLIENT
    )
    assert response.status_code == 200
    assert response["X-Request-ID"] == "trace-42.a_b"
    listed = {row["id"] for row in response.json()["results"]}
    assert listed == {patient.pk, *(p.pk for p in others)}

    rows = list(AuditEvent.objects.all())
    assert {row.patient_id for row in rows} == listed
    assert len(rows) == len(listed)
    for row in rows:
        assert row.action == "patient.list"
        assert row.outcome == "ok"
        assert (row.actor, row.actor_role, row.clinic) == (
            staff["coordinator"], "coordinator", clinic,
        )  # fmt: skip
        assert row.request_id == "trace-42.a_b"
        assert row.ip_address == "203.0.113.7"
        assert row.user_agent == "ward-tablet/2.1"
        assert row.detail == {"listed": 3}  # the search words are not kept


def test_a_care_team_member_leaves_rows_for_their_patients_only(
    client_for, staff: dict[str, User], clinic: Clinic, patient: Patient
) -> None:  # type: ignore[no-untyped-def]
    register(clinic, "T-9", "Not", "Mine")
    client_for(staff["physical_therapist"]).get("/api/v1/patients")
    assert list(AuditEvent.objects.values_list("patient_id", flat=True)) == [patient.pk]


def test_detail_event_send_and_approval_each_write_their_action(
    client_for, staff: dict[str, User], proposal: Proposal
) -> None:  # type: ignore[no-untyped-def]
    enrolment = proposal.enrolment
    patient_id = enrolment.patient_id
    physician = client_for(staff["physician"])

    assert physician.get(f"/api/v1/patients/{patient_id}").status_code == 200
    view = AuditEvent.objects.get(action="patient.view")
    assert (view.patient_id, view.object_type, view.object_id) == (
        patient_id, "patient", str(patient_id),
    )  # fmt: skip

    assert physician.get(f"/api/v1/enrolments/{enrolment.public_id}/timeline").status_code == 200
    timeline = AuditEvent.objects.get(action="enrolment.timeline")
    assert (timeline.object_type, timeline.object_id) == ("enrolment", str(enrolment.public_id))

    response = physician.post(
        f"/api/v1/proposals/{proposal.pk}/approve", {}, format="json", HTTP_IDEMPOTENCY_KEY="a1"
    )
    assert response.status_code == 200
    approval = AuditEvent.objects.get(action="proposal.approve")
    assert (approval.patient_id, approval.outcome, approval.actor) == (
        patient_id, "ok", staff["physician"],
    )  # fmt: skip
    assert (approval.object_type, approval.object_id) == ("proposal", str(proposal.pk))
    assert approval.detail == {"outcome": "transitioned", "replayed": False}

    response = physician.post(
        f"/api/v1/enrolments/{enrolment.public_id}/events",
        {"event": "discharge"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="k1",
    )
    assert response.status_code == 200, response.content
    sent = AuditEvent.objects.get(action="enrolment.event_send")
    assert (sent.patient_id, sent.outcome) == (patient_id, "ok")
    assert sent.detail["event"] == "discharge"
    assert sent.detail["outcome"] == response.json()["outcome"]
    assert {row.request_id for row in AuditEvent.objects.all()}.__len__() == 4  # one per request


def test_refusals_are_recorded_as_denied_with_the_patient_in_scope(
    client_for, staff: dict[str, User], proposal: Proposal
) -> None:  # type: ignore[no-untyped-def]
    patient_id = proposal.enrolment.patient_id
    url = f"/api/v1/proposals/{proposal.pk}/approve"
    # The role matrix refuses the clinic admin before the view runs.
    admin, coordinator = client_for(staff["clinic_admin"]), client_for(staff["coordinator"])
    assert admin.post(url, {}, format="json", HTTP_IDEMPOTENCY_KEY="a1").status_code == 403
    # The pathway's gate refuses the coordinator (physicians only).
    assert coordinator.post(url, {}, format="json", HTTP_IDEMPOTENCY_KEY="a1").status_code == 403
    rows = AuditEvent.objects.filter(action="proposal.approve").order_by("id")
    assert [(r.actor_role, r.outcome, r.patient_id) for r in rows] == [
        ("clinic_admin", "denied", patient_id),
        ("coordinator", "denied", patient_id),
    ]
    assert all(r.detail["status"] == 403 for r in rows)


def test_a_change_that_changes_nothing_is_an_error_row(
    client_for, staff: dict[str, User], enrolment: Enrolment
) -> None:  # type: ignore[no-untyped-def]
    response = client_for(staff["coordinator"]).post(
        f"/api/v1/enrolments/{enrolment.public_id}/events",
        {"event": "intake_complete"},  # not eligible: logged, no transition (422)
        format="json",
        HTTP_IDEMPOTENCY_KEY="k2",
    )
    assert response.status_code == 422
    row = AuditEvent.objects.get()
    assert (row.action, row.outcome, row.patient_id) == (
        "enrolment.event_send", "error", enrolment.patient_id,
    )  # fmt: skip
    assert row.detail["status"] == 422
    assert row.detail["code"] == "no_change"


def test_a_cross_clinic_attempt_records_nothing_about_the_foreign_patient(
    client_for, staff: dict[str, User], clinic: Clinic, foreign_enrolment: Enrolment
) -> None:  # type: ignore[no-untyped-def]
    """Decision: a 404 is recorded as `denied` in the actor's clinic (the probe is visible to
    the clinic's admins, with its request id) but without patient, clinic of the object or
    object id: the trail discloses nothing the answer did not."""
    proposal = Proposal.objects.get(enrolment=foreign_enrolment)
    foreign = foreign_enrolment.patient
    client = client_for(staff["coordinator"])
    urls = [
        ("get", f"/api/v1/patients/{foreign.pk}"),
        ("get", f"/api/v1/patients/{foreign.pk}/enrolments"),
        ("get", f"/api/v1/enrolments/{foreign_enrolment.public_id}"),
        ("get", f"/api/v1/enrolments/{foreign_enrolment.public_id}/timeline"),
        ("post", f"/api/v1/enrolments/{foreign_enrolment.public_id}/events"),
        ("post", f"/api/v1/proposals/{proposal.pk}/approve"),
        ("post", f"/api/v1/proposals/{proposal.pk}/reject"),
    ]
    for method, url in urls:
        if method == "get":
            response = client.get(url)
        else:
            response = client.post(
                url, {"event": "discharge", "reason": "x"}, format="json", HTTP_IDEMPOTENCY_KEY="k"
            )
        assert response.status_code == 404, url

    rows = list(AuditEvent.objects.all())
    assert len(rows) == len(urls)
    for row in rows:
        assert (row.outcome, row.patient_id, row.clinic_id) == ("denied", None, clinic.pk)
        assert (row.object_type, row.object_id) == ("", "")
        assert row.detail == {"status": 404, "code": "not_found"}
    assert not AuditEvent.objects.filter(patient=foreign).exists()
    assert not AuditEvent.objects.exclude(clinic=clinic).exists()


def test_unauthenticated_requests_are_not_recorded(patient: Patient) -> None:
    assert APIClient().get(f"/api/v1/patients/{patient.pk}").status_code == 401
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize("sent", ["", "has spaces", "semi;colon", "x" * 65, "<script>", "ünïcode"])
def test_a_request_id_that_is_not_a_sane_token_is_replaced(
    client_for, staff: dict[str, User], patient: Patient, sent: str
) -> None:  # type: ignore[no-untyped-def]
    response = client_for(staff["coordinator"]).get(
        f"/api/v1/patients/{patient.pk}", HTTP_X_REQUEST_ID=sent
    )
    assert response.status_code == 200
    generated = response["X-Request-ID"]
    assert generated != sent
    assert uuid.UUID(generated).version == 4
    assert AuditEvent.objects.get().request_id == generated


def test_a_sane_request_id_of_64_characters_is_kept(
    client_for, staff: dict[str, User], patient: Patient
) -> None:  # type: ignore[no-untyped-def]
    sent = "A-z_0." + "9" * 58
    response = client_for(staff["coordinator"]).get("/admin/login/", HTTP_X_REQUEST_ID=sent)
    assert response["X-Request-ID"] == sent


def test_proposal_list_rows_name_each_patient_once(
    client_for, staff: dict[str, User], proposal: Proposal, clinic: Clinic
) -> None:  # type: ignore[no-untyped-def]
    second = register(clinic, "T-5", "Cal", "Cole")
    care_team_add(patient=second, staff=staff["physician"])
    other = enrolment_start(patient=second, definition_key=proposal.enrolment.definition_key)
    to_conventional(other, staff["coordinator"])
    pathway_dispatch(enrolment_id=other.pk, event="esi_requested", idempotency_key="esi2")
    response = client_for(staff["physician"]).get("/api/v1/proposals")
    assert len(response.json()["results"]) == 2
    rows = AuditEvent.objects.filter(action="proposal.list")
    assert sorted(r.patient_id for r in rows) == sorted([proposal.enrolment.patient_id, second.pk])
