"""Observations over the API: listed with filters, recorded once per Idempotency-Key, and the
pathway told in the same request when the client names the event."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from carehub.accounts.models import User
from carehub.audit.models import AuditEvent
from carehub.observations.models import Observation
from carehub.pathways.models import Enrolment, PathwayStep, Proposal
from carehub.pathways.services import pathway_dispatch, proposal_approve
from carehub.patients.models import Patient
from tests.api.conftest import assert_problem, to_conventional

pytestmark = pytest.mark.django_db


def record(client, url: str, body: dict, key: str | None = "k1"):  # type: ignore[no-untyped-def,type-arg]
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post(url, body, format="json", **headers)


def test_a_session_is_recorded_once_per_key(
    client_for, staff: dict[str, User], patient: Patient
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["physical_therapist"])
    url = f"/api/v1/patients/{patient.pk}/sessions"
    body = {"discipline": "pt", "attended": True, "observed_at": timezone.now().isoformat(),
            "notes": "Walked 10 minutes"}  # fmt: skip
    first = record(client, url, body)
    assert first.status_code == 201, first.content
    observation = first.json()["observation"]
    assert (observation["kind"], observation["code"], observation["value_bool"]) == (
        "session", "pt", True,
    )  # fmt: skip
    assert observation["recorded_by_id"] == staff["physical_therapist"].pk
    again = record(client, url, body)
    assert again.status_code == 200
    assert again["Idempotent-Replayed"] == "true"
    assert again.json()["observation"]["id"] == observation["id"]
    assert Observation.objects.filter(patient=patient, kind="session").count() == 1
    # The same key for another request is refused.
    other = record(client, f"/api/v1/patients/{patient.pk}/procedures",
                   {"procedure": "esi", "performed_at": timezone.now().isoformat()})  # fmt: skip
    assert_problem(other, 409, "idempotency_key_reused")
    assert_problem(record(client, url, body, key=None), 400, "invalid_input")


def test_invalid_input_names_the_field_and_records_nothing(
    client_for, staff: dict[str, User], patient: Patient
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["physician"])
    future = (timezone.now() + timedelta(days=2)).isoformat()
    body = assert_problem(
        record(client, f"/api/v1/patients/{patient.pk}/procedures",
               {"procedure": "not_a_procedure", "performed_at": future}),
        400, "invalid_input",
    )  # fmt: skip
    assert {"procedure", "performed_at"} & set(body["errors"])
    body = assert_problem(
        record(client, f"/api/v1/patients/{patient.pk}/scores",
               {"instrument": "peg", "score": 12, "observed_at": timezone.now().isoformat()}, "k2"),
        400, "invalid_input",
    )  # fmt: skip
    assert "score" in body["errors"]
    assert not Observation.objects.filter(patient=patient, kind__in=["procedure", "score"]).exists()
    # The key of a refused request is not used up.
    odi = {"instrument": "odi", "score": 40, "observed_at": timezone.now().isoformat()}
    ok = record(client, f"/api/v1/patients/{patient.pk}/scores", odi, "k2")
    assert ok.status_code == 201, ok.content


def test_a_procedure_result_replaces_the_record_and_tells_the_pathway(
    client_for, staff: dict[str, User], enrolment: Enrolment
) -> None:  # type: ignore[no-untyped-def]
    to_conventional(enrolment, staff["coordinator"])
    client = client_for(staff["physician"])
    performed = record(
        client,
        f"/api/v1/patients/{enrolment.patient_id}/procedures",
        {"procedure": "mbb1", "performed_at": (timezone.now() - timedelta(days=1)).isoformat()},
        "p1",
    )
    assert performed.status_code == 201, performed.content
    procedure_id = performed.json()["observation"]["id"]
    steps = PathwayStep.objects.filter(enrolment=enrolment).count()

    relief = {
        "relief_pct": 85,
        "assessed_at": timezone.now().isoformat(),
        "event": "block_result_recorded",
    }
    result = record(client, f"/api/v1/observations/{procedure_id}/result", relief, "r1")
    assert result.status_code == 201, result.content
    body = result.json()
    assert (body["observation"]["value_number"], body["observation"]["corrects_id"]) == (
        85,
        procedure_id,
    )
    [event] = body["events"]
    assert (event["enrolment"], event["event"]) == (
        str(enrolment.public_id),
        "block_result_recorded",
    )
    assert event["outcome"] == "no_change"  # conventional has no such transition: logged, explained
    assert PathwayStep.objects.filter(enrolment=enrolment).count() == steps + 1

    replay = record(client, f"/api/v1/observations/{procedure_id}/result", relief, "r1")
    assert replay.status_code == 200
    assert (replay["Idempotent-Replayed"], replay.json()["replayed"]) == ("true", True)
    assert replay.json()["events"] == body["events"]
    assert PathwayStep.objects.filter(enrolment=enrolment).count() == steps + 1
    # The replaced record is not the current one any more: a second result names the new one.
    stale = record(client, f"/api/v1/observations/{procedure_id}/result",
                   {"relief_pct": 50, "assessed_at": timezone.now().isoformat()}, "r2")  # fmt: skip
    assert_problem(stale, 409, "conflict")


def test_the_event_moves_the_pathway_on_the_facts_just_recorded(
    client_for, staff: dict[str, User], enrolment: Enrolment
) -> None:  # type: ignore[no-untyped-def]
    to_conventional(enrolment, staff["coordinator"])
    pathway_dispatch(enrolment_id=enrolment.pk, event="esi_requested", idempotency_key="esi",
                     user=staff["physician"])  # fmt: skip
    proposal_approve(proposal=Proposal.objects.get(enrolment=enrolment), user=staff["physician"],
                     idempotency_key="approve")  # fmt: skip
    enrolment.refresh_from_db()
    assert enrolment.state_of("ladder") == "esi"
    response = record(
        client_for(staff["physician"]),
        f"/api/v1/patients/{enrolment.patient_id}/procedures",
        {"procedure": "esi", "performed_at": timezone.now().isoformat(), "relief_pct": 60,
         "event": "block_result_recorded"},
    )  # fmt: skip
    assert response.status_code == 201, response.content
    assert response.json()["events"][0]["outcome"] == "transitioned"
    enrolment.refresh_from_db()
    assert enrolment.state_of("ladder") == "conventional"


def test_an_event_no_pathway_accepts_is_refused_before_recording(
    client_for, staff: dict[str, User], enrolment: Enrolment
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["physical_therapist"])
    body = assert_problem(
        record(client, f"/api/v1/patients/{enrolment.patient_id}/sessions",
               {"discipline": "pt", "attended": True,
                "observed_at": timezone.now().isoformat(), "event": "no_such_event"}, "unknown"),
        400, "invalid_input",
    )  # fmt: skip
    assert "event" in body["errors"]
    # A timer's own event, and an event of another discipline: nobody / not this role sends it.
    for event, roles in (("review_due", []), ("intake_complete", ["coordinator", "physician"])):
        body = assert_problem(
            record(client, f"/api/v1/patients/{enrolment.patient_id}/sessions",
                   {"discipline": "pt", "attended": True,
                    "observed_at": timezone.now().isoformat(), "event": event}, event),
            403, "not_permitted",
        )  # fmt: skip
        assert body["roles"] == roles
    assert not Observation.objects.filter(patient=enrolment.patient, kind="session").exists()


def test_list_filters_by_kind_code_and_date(
    client_for, staff: dict[str, User], enrolment: Enrolment, procedure: Observation
) -> None:  # type: ignore[no-untyped-def]
    to_conventional(enrolment, staff["coordinator"])  # pain onset, failed treatments
    client = client_for(staff["coordinator"])
    url = f"/api/v1/patients/{enrolment.patient_id}/observations"
    kinds = {row["kind"] for row in client.get(url).json()["results"]}
    assert kinds == {"procedure", "failed_treatment", "pain_onset"}
    procedures = client.get(f"{url}?kind=procedure").json()["results"]
    assert [row["id"] for row in procedures] == [procedure.pk]
    assert client.get(f"{url}?code=mbb1").json()["results"][0]["id"] == procedure.pk
    since = (timezone.now() - timedelta(hours=1)).isoformat().replace("+", "%2B")
    recent = {row["kind"] for row in client.get(f"{url}?since={since}").json()["results"]}
    assert recent == {"failed_treatment"}
    assert_problem(client.get(f"{url}?kind=diet"), 400, "invalid_input")


def test_clinic_admin_and_patient_cannot_record(
    client_for, staff: dict[str, User], patient: Patient
) -> None:  # type: ignore[no-untyped-def]
    body = {"discipline": "pt", "attended": True, "observed_at": timezone.now().isoformat()}
    url = f"/api/v1/patients/{patient.pk}/sessions"
    assert_problem(record(client_for(staff["clinic_admin"]), url, body), 403, "not_permitted")
    assert_problem(client_for(staff["clinic_admin"]).get(
        f"/api/v1/patients/{patient.pk}/observations"), 403, "not_permitted")  # fmt: skip


def test_recording_is_audited_with_the_kind_code_and_event(
    client_for, staff: dict[str, User], enrolment: Enrolment
) -> None:  # type: ignore[no-untyped-def]
    response = record(
        client_for(staff["physical_therapist"]),
        f"/api/v1/patients/{enrolment.patient_id}/sessions",
        {"discipline": "pt", "attended": True, "observed_at": timezone.now().isoformat(),
         "event": "session_logged"},
    )  # fmt: skip
    assert response.status_code == 201, response.content
    row = AuditEvent.objects.get(action="observation.session")
    assert (row.patient_id, row.outcome, row.object_type) == (
        enrolment.patient_id,
        "ok",
        "observation",
    )
    assert row.detail == {"kind": "session", "code": "pt", "event": "session_logged"}
