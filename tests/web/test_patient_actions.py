"""Actions on the patient page: each a POST with CSRF and a one-time form key, through the
services; refusals change nothing and say why; a double submit acts once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client

from carehub.accounts.models import User
from carehub.audit.models import AuditEvent
from carehub.clinics.models import Clinic, ClinicThreshold
from carehub.core import clock
from carehub.observations.models import Observation
from carehub.observations.services import procedure_record
from carehub.pathways.models import Enrolment, PathwayStep, Proposal, ProposalStatus
from carehub.pathways.services import enrolment_start, proposal_approve
from carehub.patients.models import Patient
from tests.web.conftest import form_key, register

pytestmark = pytest.mark.django_db


def page(client: Client, patient_id: int) -> str:
    return client.get(f"/patients/{patient_id}/").content.decode()


def decide_url(proposal: Proposal) -> str:
    return f"/patients/{proposal.enrolment.patient_id}/proposals/{proposal.pk}/decide"


def decide(client: Client, proposal: Proposal, decision: str, reason: str = "", **over):  # type: ignore[no-untyped-def]
    html = page(client, proposal.enrolment.patient_id)
    prefix = f"p{proposal.pk}"
    data = {
        f"{prefix}-form_key": form_key(html, decide_url(proposal)),
        f"{prefix}-expected_version": proposal.enrolment.version,
        f"{prefix}-reason": reason,
        f"{prefix}-decision": decision,
    }
    data.update({f"{prefix}-{k}": v for k, v in over.items()})
    return data, client.post(decide_url(proposal), data)


def ladder(enrolment: Enrolment) -> str:
    enrolment.refresh_from_db()
    return enrolment.state_of("ladder")


def test_a_physician_approves_with_a_note_and_the_state_changes(
    proposed: Proposal, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["physician"])
    _, response = decide(client, proposed, "approve", "Facet pain on exam")
    assert response.status_code == 302
    proposed.refresh_from_db()
    assert proposed.status == ProposalStatus.APPROVED
    assert ladder(proposed.enrolment) == "mbb1"
    html = client.get(response["Location"]).content.decode()
    assert "Escalation approved: First diagnostic medial branch block." in html
    assert AuditEvent.objects.filter(action="proposal.approve", outcome="ok").count() == 1


def test_a_double_submit_approves_once(
    proposed: Proposal, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["physician"])
    data, first = decide(client, proposed, "approve")
    again = client.post(decide_url(proposed), data)
    assert first.status_code == again.status_code == 302
    assert PathwayStep.objects.filter(enrolment=proposed.enrolment, event="approve").count() == 1
    assert "already sent once" in client.get(again["Location"]).content.decode()


def test_the_gate_refuses_a_coordinator_and_nothing_changes(
    proposed: Proposal, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["coordinator"])
    key = "k" * 32
    response = client.post(
        decide_url(proposed),
        {
            f"p{proposed.pk}-form_key": key,
            f"p{proposed.pk}-expected_version": proposed.enrolment.version,
            f"p{proposed.pk}-decision": "approve",
        },
    )
    assert response.status_code == 403
    proposed.refresh_from_db()
    assert proposed.status == ProposalStatus.PENDING
    assert ladder(proposed.enrolment) == "interventional_review"


def test_a_clinic_admin_may_not_decide(
    proposed: Proposal, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    response = client_for(staff["clinic_admin"]).post(decide_url(proposed), {})
    assert response.status_code == 403
    proposed.refresh_from_db()
    assert proposed.status == ProposalStatus.PENDING


def test_rejecting_needs_a_reason(proposed: Proposal, staff: dict[str, User], client_for) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["physician"])
    steps = PathwayStep.objects.count()
    data, response = decide(client, proposed, "reject", "   ")
    assert response.status_code == 400
    assert "Say why the escalation is rejected." in response.content.decode()
    assert PathwayStep.objects.count() == steps
    data[f"p{proposed.pk}-reason"] = "Pain is radicular, not facet"
    response = client.post(decide_url(proposed), data)
    assert response.status_code == 302
    proposed.refresh_from_db()
    assert (proposed.status, proposed.reason) == ("rejected", "Pain is radicular, not facet")


def test_a_stale_page_is_a_conflict_showing_the_current_state(
    proposed: Proposal, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["physician"])
    _, response = decide(
        client, proposed, "approve", expected_version=proposed.enrolment.version - 1
    )
    assert response.status_code == 409
    html = response.content.decode()
    assert "Someone else changed this in the meantime" in html
    assert f"version {proposed.enrolment.version}" in html
    proposed.refresh_from_db()
    assert proposed.status == ProposalStatus.PENDING


def test_an_escalation_decided_elsewhere_is_a_conflict(
    proposed: Proposal, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["physician"])
    html = page(client, proposed.enrolment.patient_id)
    proposal_approve(proposal=proposed, user=staff["physician"], idempotency_key="elsewhere")
    response = client.post(
        decide_url(proposed),
        {
            f"p{proposed.pk}-form_key": form_key(html, decide_url(proposed)),
            f"p{proposed.pk}-expected_version": proposed.enrolment.version,
            f"p{proposed.pk}-decision": "reject",
            f"p{proposed.pk}-reason": "no",
        },
    )
    assert response.status_code == 409
    proposed.refresh_from_db()
    assert proposed.status == ProposalStatus.APPROVED


def test_posts_need_the_csrf_token(proposed: Proposal, staff: dict[str, User]) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff["physician"])
    response = client.post(
        decide_url(proposed),
        {f"p{proposed.pk}-decision": "approve", f"p{proposed.pk}-form_key": "k" * 32},
    )
    assert response.status_code == 403
    proposed.refresh_from_db()
    assert proposed.status == ProposalStatus.PENDING


def test_another_clinics_escalation_is_not_found(
    foreign_patient: Patient, proposed: Proposal, outsider: User, client_for
) -> None:  # type: ignore[no-untyped-def]
    response = client_for(outsider).post(decide_url(proposed), {})
    assert response.status_code == 404
    proposed.refresh_from_db()
    assert proposed.status == ProposalStatus.PENDING


# --- pause, resume, discharge, events ---------------------------------------------------------


def enrolment_url(enrolment: Enrolment, action: str) -> str:
    return f"/patients/{enrolment.patient_id}/enrolments/{enrolment.public_id}/{action}"


def test_pause_needs_a_reason_then_pauses_once_and_resumes(
    patient: Patient, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    enrolment = patient.enrolments.get()
    client = client_for(staff["coordinator"])
    html = page(client, patient.pk)
    prefix = f"pa{enrolment.pk}"
    data = {f"{prefix}-form_key": form_key(html, enrolment_url(enrolment, "pause"))}
    assert client.post(enrolment_url(enrolment, "pause"), data).status_code == 400
    enrolment.refresh_from_db()
    assert enrolment.status == "active"
    data[f"{prefix}-reason"] = "Hospital stay"
    assert client.post(enrolment_url(enrolment, "pause"), data).status_code == 302
    assert client.post(enrolment_url(enrolment, "pause"), data).status_code == 302
    enrolment.refresh_from_db()
    assert (enrolment.status, enrolment.pause_reason) == ("paused", "Hospital stay")
    assert PathwayStep.objects.filter(enrolment=enrolment, event="paused").count() == 1
    html = page(client, patient.pk)
    resume = {f"re{enrolment.pk}-form_key": form_key(html, enrolment_url(enrolment, "resume"))}
    assert client.post(enrolment_url(enrolment, "resume"), resume).status_code == 302
    enrolment.refresh_from_db()
    assert enrolment.status == "active"


def test_a_therapist_may_not_pause(patient: Patient, staff: dict[str, User], client_for) -> None:  # type: ignore[no-untyped-def]
    enrolment = patient.enrolments.get()
    client = client_for(staff["physical_therapist"])
    response = client.post(enrolment_url(enrolment, "pause"), {})
    assert response.status_code == 403


def test_discharge_needs_a_reason_and_confirmation(
    patient: Patient, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    enrolment = patient.enrolments.get()
    client = client_for(staff["physician"])
    html = page(client, patient.pk)
    prefix = f"d{enrolment.pk}"
    data = {
        f"{prefix}-form_key": form_key(html, enrolment_url(enrolment, "discharge")),
        f"{prefix}-expected_version": enrolment.version,
    }
    assert client.post(enrolment_url(enrolment, "discharge"), data).status_code == 400
    assert ladder(enrolment) == "conventional"
    data[f"{prefix}-confirm"] = "on"
    refused = client.post(enrolment_url(enrolment, "discharge"), data)
    assert refused.status_code == 400
    assert "Say why the patient is discharged." in refused.content.decode()
    assert ladder(enrolment) == "conventional"
    data[f"{prefix}-reason"] = "Moved to another area"
    assert client.post(enrolment_url(enrolment, "discharge"), data).status_code == 302
    enrolment.refresh_from_db()
    assert {item["state"] for item in enrolment.configuration.values()} == {"discharged"}
    assert enrolment.status == "completed"
    step = PathwayStep.objects.get(enrolment=enrolment, event="discharge_recorded")
    assert "Discharged: Moved to another area" in step.explanation["summary"]


def test_an_event_whose_guard_fails_shows_the_explanation(
    clinic: Clinic, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    patient = register(clinic, "N-1", "Nia", "New")
    enrolment = enrolment_start(patient=patient, definition_key="intractable-pain")
    client = client_for(staff["coordinator"])
    html = page(client, patient.pk)
    prefix = f"e{enrolment.pk}"
    response = client.post(
        enrolment_url(enrolment, "event"),
        {
            f"{prefix}-form_key": form_key(html, enrolment_url(enrolment, "event")),
            f"{prefix}-expected_version": enrolment.version,
            f"{prefix}-event": "intake_completed",
        },
        follow=True,
    )
    text = response.content.decode()
    assert "The pathway did not move" in text
    # In words, from the values the guard read (not the rule text).
    assert "Months of pain recorded: not yet" in text
    assert ladder(enrolment) == "intake"


def test_an_event_not_offered_now_is_refused(
    patient: Patient, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    enrolment = patient.enrolments.get()
    client = client_for(staff["physician"])
    html = page(client, patient.pk)
    prefix = f"e{enrolment.pk}"
    steps = PathwayStep.objects.count()
    response = client.post(
        enrolment_url(enrolment, "event"),
        {
            f"{prefix}-form_key": form_key(html, enrolment_url(enrolment, "event")),
            f"{prefix}-expected_version": enrolment.version,
            f"{prefix}-event": "implant_performed",
        },
    )
    assert response.status_code == 400
    assert PathwayStep.objects.count() == steps


# --- procedure results ------------------------------------------------------------------------


@pytest.fixture
def block_done(proposed: Proposal, staff: dict[str, User]) -> Observation:
    proposal_approve(proposal=proposed, user=staff["physician"], idempotency_key="approve-mbb1")
    return procedure_record(
        patient=proposed.enrolment.patient, procedure="mbb1",
        performed_at=clock.now() - timedelta(hours=6), recorded_by=staff["physician"],
    )  # fmt: skip


def procedure_post(client: Client, procedure: Observation, **fields: object):  # type: ignore[no-untyped-def]
    url = f"/patients/{procedure.patient_id}/procedure-result"
    html = page(client, procedure.patient_id)
    data = {
        "pr-form_key": form_key(html, url),
        "pr-procedure": procedure.pk,
        "pr-relief_pct": 85,
        "pr-assessed_at": (clock.now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
    }
    data.update({f"pr-{k}": v for k, v in fields.items()})
    return data, client.post(url, data)


def test_a_procedure_result_is_recorded_and_the_pathway_told(
    block_done: Observation, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["physician"])
    data, response = procedure_post(client, block_done)
    assert response.status_code == 302
    assert client.post(response.request["PATH_INFO"], data).status_code == 302  # double submit
    current = Observation.objects.get(corrects=block_done)
    assert current.value_number == 85
    enrolment = Enrolment.objects.get(patient_id=block_done.patient_id)
    assert (
        PathwayStep.objects.filter(enrolment=enrolment, event="mbb1_result_recorded").count() == 1
    )
    assert Proposal.objects.filter(enrolment=enrolment, target="mbb2", status="pending").exists()


def test_a_result_before_the_procedure_changes_nothing(
    block_done: Observation, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["coordinator"])
    before = (clock.now() - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    _, response = procedure_post(client, block_done, assessed_at=before)
    assert response.status_code == 400
    assert "before the procedure" in response.content.decode()
    assert not Observation.objects.filter(corrects=block_done).exists()
    _, response = procedure_post(client, block_done, relief_pct=140)
    assert response.status_code == 400
    assert not Observation.objects.filter(corrects=block_done).exists()


def test_a_procedure_performed_with_its_relief_tells_the_pathway(
    proposed: Proposal, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    proposal_approve(proposal=proposed, user=staff["physician"], idempotency_key="approve-mbb1")
    patient_id = proposed.enrolment.patient_id
    client = client_for(staff["physician"])
    url = f"/patients/{patient_id}/procedure"
    html = page(client, patient_id)
    data = {
        "pp-form_key": form_key(html, url),
        "pp-procedure": "mbb1",
        "pp-performed_at": (clock.now() - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M"),
        "pp-relief_pct": "90",
        "pp-region": "L4-L5 right",
    }
    assert client.post(url, data).status_code == 302
    assert client.post(url, data).status_code == 302  # the same form again
    recorded = Observation.objects.filter(patient_id=patient_id, kind="procedure", code="mbb1")
    assert recorded.count() == 1
    assert (recorded.get().value_number, recorded.get().data["region"]) == (90, "L4-L5 right")
    assert Proposal.objects.filter(
        enrolment=proposed.enrolment, target="mbb2", status="pending"
    ).exists()


def test_a_procedure_without_relief_waits_for_its_result(
    proposed: Proposal, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    patient_id = proposed.enrolment.patient_id
    client = client_for(staff["coordinator"])
    url = f"/patients/{patient_id}/procedure"
    steps = PathwayStep.objects.count()
    data = {
        "pp-form_key": form_key(page(client, patient_id), url),
        "pp-procedure": "not_a_procedure",
        "pp-performed_at": "2026-01-01T10:00",
    }
    assert client.post(url, data).status_code == 400
    assert not Observation.objects.filter(patient_id=patient_id, kind="procedure").exists()
    data["pp-procedure"] = "esi"
    response = client.post(url, data, follow=True)
    assert "record the relief when it is assessed" in response.content.decode()
    assert PathwayStep.objects.count() == steps
    assert f'action="/patients/{patient_id}/procedure-result"' in response.content.decode()


def test_an_approval_whose_criteria_no_longer_hold_shows_the_explanation(
    proposed: Proposal, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    ClinicThreshold.objects.create(
        clinic=proposed.enrolment.clinic, pathway_key="intractable-pain",
        name="facet_min_conservative_weeks", value=520, source="Clinic policy",
    )  # fmt: skip
    _, response = decide(client_for(staff["physician"]), proposed, "approve")
    assert response.status_code == 422
    html = response.content.decode()
    start = html.index('<div class="form-error" role="alert">')
    error = html[start : html.index("</table>", start)]
    assert "threshold.facet_min_conservative_weeks" in error
    assert "Clinic policy" in error
    assert "did not hold" in error
    proposed.refresh_from_db()
    assert proposed.status == ProposalStatus.PENDING
    assert ladder(proposed.enrolment) == "interventional_review"
