"""Importing a transaction Bundle: through the domain services, all or nothing, idempotent;
and a round trip: what one clinic's endpoints emit, another imports to the same scores."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from uuid import uuid4

from django.utils import timezone
from rest_framework.test import APIClient

from carehub.audit.models import Action, AuditEvent
from carehub.checkins.services import checkin_submit
from carehub.messaging.models import Message
from carehub.observations.models import Observation, Source
from carehub.observations.scores import score_observation_record
from carehub.patients.models import Patient
from carehub.worklists.models import Flag
from tests.api.conftest import open_checkin
from tests.fhir.support import FHIR_JSON, search_all, valid

NOW = "2026-03-02T10:00:00+00:00"


def post(client: APIClient, body: Any, key: str | None = None) -> Any:
    headers = {"HTTP_IDEMPOTENCY_KEY": key or uuid4().hex}
    response = client.post("/fhir/R4/", json.dumps(body), content_type=FHIR_JSON, **headers)
    assert response["Content-Type"] == FHIR_JSON
    valid(response.json())
    return response


def patient_entry(mrn: str = "EXT-1") -> dict[str, Any]:
    return {
        "fullUrl": "urn:uuid:11111111-1111-4111-8111-111111111111",
        "resource": {
            "resourceType": "Patient",
            "identifier": [{"system": "urn:example:mrn", "value": mrn}],
            "name": [{"family": "Import", "given": ["Ivy"]}],
            "birthDate": "1970-05-01",
            "telecom": [{"system": "phone", "value": "+447700900123"}],
        },
        "request": {"method": "POST", "url": "Patient"},
    }


def phq9_response(answers: dict[str, int]) -> dict[str, Any]:
    return {
        "fullUrl": "urn:uuid:22222222-2222-4222-8222-222222222222",
        "resource": {
            "resourceType": "QuestionnaireResponse",
            "questionnaire": "urn:carehub:instrument:phq9|1",
            "status": "completed",
            "subject": {"reference": "urn:uuid:11111111-1111-4111-8111-111111111111"},
            "authored": NOW,
            "item": [
                {"linkId": key, "answer": [{"valueCoding": {"code": str(value)}}]}
                for key, value in answers.items()
            ],
        },
        "request": {"method": "POST", "url": "QuestionnaireResponse"},
    }


def peg_observation() -> dict[str, Any]:
    return {
        "fullUrl": "urn:uuid:33333333-3333-4333-8333-333333333333",
        "resource": {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "91148-7"}]},
            "subject": {"reference": "urn:uuid:11111111-1111-4111-8111-111111111111"},
            "effectiveDateTime": NOW,
            "valueQuantity": {"value": 6},
            "component": [
                {
                    "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
                    "valueInteger": value,
                }
                for code, value in (("75893-8", 6), ("91145-3", 6), ("91146-1", 6))
            ],
        },
        "request": {"method": "POST", "url": "Observation"},
    }


def transaction(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}


ITEM9 = {f"item{n}": 1 for n in range(1, 10)}


def test_a_bundle_registers_scores_and_raises_red_flags(client_for, staff, clinic) -> None:  # type: ignore[no-untyped-def]
    response = post(
        client_for(staff["coordinator"]),
        transaction(patient_entry(), phq9_response(ITEM9), peg_observation()),
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["type"] == "transaction-response"
    assert [e["response"]["status"] for e in body["entry"]] == ["201 Created"] * 3
    patient = Patient.objects.get(clinic=clinic, mrn="EXT-1")
    assert (patient.given_name, patient.family_name, str(patient.date_of_birth)) == (
        "Ivy", "Import", "1970-05-01",
    )  # fmt: skip
    scores = {o.code: o for o in Observation.objects.filter(patient=patient)}
    assert scores["phq9"].value_number == 9
    assert scores["phq9"].source == Source.PATIENT
    assert scores["peg"].value_number == 6
    assert set(scores["peg"].data["items"].values()) == {6}
    assert Flag.objects.filter(patient=patient, code="phq9_item9_positive").exists()
    audit = AuditEvent.objects.get(action=Action.FHIR_IMPORT)
    assert audit.patient_id == patient.pk


def test_a_red_flag_for_a_known_patient_alerts_the_care_team(client_for, staff, patient) -> None:  # type: ignore[no-untyped-def]
    entry = phq9_response(ITEM9)
    entry["resource"]["subject"] = {"reference": f"Patient/{patient.pk}"}
    response = post(client_for(staff["physician"]), transaction(entry))
    assert response.status_code == 200, response.content
    assert Flag.objects.filter(patient=patient, code="phq9_item9_positive").exists()
    alerts = Message.objects.filter(patient=patient, purpose="red_flag_alert")
    assert alerts.exists()
    assert all(m.urgency == "urgent" for m in alerts)


def test_one_bad_entry_writes_nothing(client_for, staff, clinic) -> None:  # type: ignore[no-untyped-def]
    incomplete = {f"item{n}": 1 for n in range(1, 9)}  # item 9 missing: no total
    response = post(
        client_for(staff["coordinator"]),
        transaction(patient_entry(), peg_observation(), phq9_response(incomplete)),
    )
    assert response.status_code == 400, response.content
    issue = response.json()["issue"][0]
    assert issue["code"] == "invalid"
    assert "Bundle.entry[2]" in issue["diagnostics"]
    assert not Patient.objects.filter(mrn="EXT-1").exists()
    assert not Observation.objects.exists()
    assert not Flag.objects.exists()


def test_a_retry_with_the_same_key_is_answered_once(client_for, staff, clinic) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["coordinator"])
    bundle = transaction(patient_entry(), peg_observation())
    first = post(client, bundle, key="import-1")
    again = post(client, bundle, key="import-1")
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert Patient.objects.filter(mrn="EXT-1").count() == 1
    assert Observation.objects.filter(code="peg").count() == 1
    other = post(client, transaction(patient_entry("EXT-2")), key="import-1")
    assert other.status_code in (409, 422), other.content
    assert not Patient.objects.filter(mrn="EXT-2").exists()


def test_the_key_is_required_and_invalid_fhir_is_refused(client_for, staff) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["coordinator"])
    response = client.post(
        "/fhir/R4/", json.dumps(transaction(patient_entry())), content_type=FHIR_JSON
    )
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"
    bad = transaction(patient_entry())
    bad["entry"][0]["resource"]["birthDate"] = "not a date"
    response = post(client, bad)
    assert response.status_code == 400
    assert "not valid FHIR" in response.json()["issue"][0]["diagnostics"]
    assert post(client, {"resourceType": "Patient"}).status_code == 400
    assert not Patient.objects.exists()


def test_only_clinic_wide_clinicians_import_and_only_into_their_scope(
    client_for, staff, foreign_enrolment
) -> None:  # type: ignore[no-untyped-def]
    physio = post(client_for(staff["physical_therapist"]), transaction(patient_entry()))
    assert physio.status_code == 403
    entry = peg_observation()
    entry["resource"]["subject"] = {"reference": f"Patient/{foreign_enrolment.patient_id}"}
    response = post(client_for(staff["coordinator"]), transaction(entry))
    assert response.status_code == 400
    assert "is not found" in response.json()["issue"][0]["diagnostics"]
    assert not Observation.objects.filter(code="peg").exists()


def _as_transaction(resources_: list[dict[str, Any]]) -> dict[str, Any]:
    base = "https://source.example/fhir/R4"
    return transaction(
        *[
            {
                "fullUrl": f"{base}/{r['resourceType']}/{r['id']}",
                "resource": r,
                "request": {"method": "POST", "url": r["resourceType"]},
            }
            for r in resources_
        ]
    )


def test_round_trip_what_one_clinic_emits_another_imports(
    client_for, staff, enrolment, outsider
) -> None:  # type: ignore[no-untyped-def]
    checkin = open_checkin(enrolment, "phq9")
    checkin_submit(checkin_id=checkin.pk, answers=ITEM9)
    score_observation_record(
        patient=enrolment.patient,
        instrument="peg",
        items={"pain": 7, "enjoyment": 5, "activity": 6},
        observed_at=timezone.now() - timedelta(hours=1),
        source=Source.STAFF,
    )
    source = client_for(staff["coordinator"])
    exported = [
        *search_all(source, "/fhir/R4/Patient"),
        *search_all(source, "/fhir/R4/QuestionnaireResponse"),
        *search_all(source, "/fhir/R4/Observation"),
    ]
    response = post(client_for(outsider), _as_transaction(exported))
    assert response.status_code == 200, response.content

    imported = Patient.objects.get(clinic=outsider.clinic, mrn="T-1")
    assert (imported.given_name, imported.family_name) == ("Alice", "Adams")
    target = client_for(outsider)
    again = search_all(target, f"/fhir/R4/Observation?patient={imported.pk}")

    def scores(observations: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
        return {
            (o["code"]["coding"][-1]["code"], o["valueQuantity"]["value"], o["effectiveDateTime"],
             json.dumps(o.get("component"), sort_keys=True))
            for o in observations
        }  # fmt: skip

    assert scores(again) == scores([o for o in exported if o["resourceType"] == "Observation"])
    assert Flag.objects.filter(patient=imported, code="phq9_item9_positive").exists()
