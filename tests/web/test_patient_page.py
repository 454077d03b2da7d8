"""The patient page: what it shows, who may see it, and the audit."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from carehub.accounts.models import User
from carehub.audit.models import AuditEvent
from carehub.clinics.models import Clinic
from carehub.core import clock
from carehub.messaging.services import message_enqueue
from carehub.observations.services import score_record
from carehub.pathways.models import Proposal
from carehub.pathways.registry import definition_get
from carehub.pathways.services import pathway_dispatch
from carehub.patients.models import Patient
from carehub.worklists.services import flag_raise
from tests.web.conftest import on_team, register

pytestmark = pytest.mark.django_db


def test_shows_states_diagram_timeline_charts_and_evidence(
    proposed: Proposal, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    patient = proposed.enrolment.patient
    response = client_for(staff["physician"]).get(f"/patients/{patient.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    # the escalation with its evidence and the decision form
    assert "First diagnostic medial branch block" in html
    assert "threshold.facet_min_conservative_weeks" in html
    assert 'value="approve"' in html
    # the diagram, current state highlighted, and its Mermaid text
    assert 'class="state state-current' in html
    assert "Interventional review" in html
    assert "stateDiagram-v2" in html
    # the timeline with explanations
    assert "conventional_review_due" in html
    assert "did not hold" in html or "held" in html
    # charts with the baseline and the responder threshold (baseline ± MCID)
    assert " threshold" in html
    assert "Clinically important change" in html
    assert " baseline" in html
    assert "IMMPACT" in html
    # the library's citation, its comparison signs said in words
    assert "at least 30 % reduction is moderately important" in html
    assert "&gt;= 30 % reduction" not in html


def test_a_coordinator_sees_who_may_decide_but_no_decision_buttons(
    proposed: Proposal, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    html = (
        client_for(staff["coordinator"])
        .get(f"/patients/{proposed.enrolment.patient_id}/")
        .content.decode()
    )
    assert "Only physician may decide this escalation." in html
    assert 'value="approve"' not in html


def test_another_clinics_patient_is_not_found_and_audited_without_patient(
    foreign_patient: Patient, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    response = client_for(staff["coordinator"]).get(f"/patients/{foreign_patient.pk}/")
    assert response.status_code == 404
    row = AuditEvent.objects.get(actor=staff["coordinator"])
    assert (row.action, row.outcome, row.patient_id) == ("patient.view", "denied", None)


def test_a_therapist_not_on_the_care_team_gets_404(
    clinic: Clinic, patient: Patient, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    assert client_for(staff["psychologist"]).get(f"/patients/{patient.pk}/").status_code == 404
    assert (
        client_for(staff["physical_therapist"]).get(f"/patients/{patient.pk}/").status_code == 200
    )
    on_team(patient, staff, ("psychologist",))
    assert client_for(staff["psychologist"]).get(f"/patients/{patient.pk}/").status_code == 200


def test_a_patient_account_is_refused_even_for_their_own_record(
    patient: Patient, patient_user: User, client_for
) -> None:  # type: ignore[no-untyped-def]
    response = client_for(patient_user).get(f"/patients/{patient.pk}/")
    assert response.status_code == 403
    assert AuditEvent.objects.get(actor=patient_user).outcome == "denied"


def test_viewing_is_audited_with_the_patient(
    patient: Patient, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    client_for(staff["coordinator"]).get(f"/patients/{patient.pk}/")
    row = AuditEvent.objects.get(actor=staff["coordinator"])
    assert (row.action, row.outcome, row.patient_id) == ("patient.view", "ok", patient.pk)


def test_a_patient_without_a_pathway_still_has_a_page(
    clinic: Clinic, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    patient = register(clinic, "N-1", "Nia", "New")
    html = client_for(staff["coordinator"]).get(f"/patients/{patient.pk}/").content.decode()
    assert "Not on a pathway." in html
    assert "No scores yet." in html


def test_each_role_is_offered_only_the_events_the_definition_lets_it_send(
    patient: Patient, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    definition = definition_get("intractable-pain")
    offered = {}
    for role in ("physical_therapist", "coordinator", "physician"):
        html = client_for(staff[role]).get(f"/patients/{patient.pk}/").content.decode()
        offered[role] = set(re.findall(r'<option value="([a-z0-9_]+)"', html)) & set(
            definition.events
        )
        assert all(definition.may_send(role, event) for event in offered[role]), role
    assert offered["physical_therapist"]
    assert all(event.startswith("pt_") for event in offered["physical_therapist"])
    assert "mbb_requested" in offered["physician"]
    assert "mbb_requested" not in offered["coordinator"]


def test_the_patient_page_reads_in_a_fixed_number_of_queries(
    patient: Patient, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["coordinator"])
    client.get(f"/patients/{patient.pk}/")

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(f"/patients/{patient.pk}/").status_code == 200
        return len(captured)

    enrolment = patient.enrolments.get()

    def more(n: int) -> None:
        score_record(
            patient=patient, instrument="peg", score=5 + n / 10, source="patient",
            observed_at=clock.now() - timedelta(days=n),
        )  # fmt: skip
        flag_raise(
            enrolment=enrolment, code=f"f{n}", severity="warning", message=f"Flag {n}",
            raised_at=clock.now(),
        )  # fmt: skip
        message_enqueue(
            patient=patient, recipient="patient", purpose="pathway_notice", body="Hello",
            idempotency_key=f"pq-{n}", why="test",
        )  # fmt: skip
        pathway_dispatch(
            enrolment_id=enrolment.pk, event="pt_session_logged", idempotency_key=f"pq-{n}",
            user=staff["physical_therapist"],
        )  # fmt: skip

    more(0)  # one of each kind first (an empty list needs no prefetch)
    before = queries()
    for n in range(1, 6):
        more(n)
    assert queries() == before
