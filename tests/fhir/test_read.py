"""FHIR R4 read and search: every resource type, validated; scope, audit, paging, tokens."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from carehub.accounts.models import User
from carehub.api.services import api_token_issue
from carehub.audit.models import Action, AuditEvent, Outcome
from carehub.checkins.services import checkin_submit
from carehub.fhir import resources
from carehub.instruments.registry import instrument_get, instruments
from carehub.observations.models import Observation
from carehub.patients.models import Patient
from carehub.patients.services import patient_account_create
from carehub.worklists.models import CareTask, Flag
from tests.api.conftest import open_checkin, register
from tests.fhir.support import fhir_get, search_all, valid

PHQ9_ITEM9 = {f"item{n}": 1 for n in range(1, 10)}


@pytest.fixture
def answered_phq9(enrolment):  # type: ignore[no-untyped-def]
    checkin = open_checkin(enrolment, "phq9")
    checkin_submit(checkin_id=checkin.pk, answers=PHQ9_ITEM9)
    checkin.refresh_from_db()
    return checkin


def test_metadata_is_a_capability_statement_without_login() -> None:
    body = fhir_get(APIClient(), "/fhir/R4/metadata")
    assert body["resourceType"] == "CapabilityStatement"
    assert body["fhirVersion"] == "4.0.1"
    types = {r["type"] for r in body["rest"][0]["resource"]}
    assert {"Patient", "Observation", "QuestionnaireResponse", "CarePlan", "Task", "Flag",
            "PlanDefinition", "Questionnaire", "Group"} <= types  # fmt: skip
    assert body["rest"][0]["interaction"] == [{"code": "transaction"}]


def test_every_patient_resource_is_valid_and_linked(
    client_for, staff: dict[str, User], enrolment, answered_phq9, task: CareTask
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["coordinator"])
    patient_id = enrolment.patient_id

    patient = fhir_get(client, f"/fhir/R4/Patient/{patient_id}")
    assert patient["identifier"][0]["value"] == "T-1"
    assert patient["name"][0]["family"] == "Adams"

    observations = search_all(client, f"/fhir/R4/Observation?patient=Patient/{patient_id}")
    (phq9,) = [o for o in observations if o["code"]["coding"][-1]["code"] == "phq9"]
    assert [c["code"] for c in phq9["code"]["coding"][:2]] == ["44261-6", "44249-1"]
    assert phq9["valueQuantity"]["value"] == 9
    assert phq9["derivedFrom"] == [{"reference": f"QuestionnaireResponse/{answered_phq9.pk}"}]
    item9 = [c for c in phq9["component"] if c["code"]["coding"][0]["code"] == "44260-8"]
    assert item9[0]["valueInteger"] == 1

    response = fhir_get(client, f"/fhir/R4/QuestionnaireResponse/{answered_phq9.pk}")
    assert response["questionnaire"] == "urn:carehub:instrument:phq9|1"
    assert {i["linkId"] for i in response["item"]} >= {f"item{n}" for n in range(1, 10)}
    assert response["item"][0]["answer"][0]["valueCoding"]["code"] == "1"

    flags = search_all(client, f"/fhir/R4/Flag?patient={patient_id}")
    assert "phq9_item9_positive" in {f["code"]["coding"][0]["code"] for f in flags}

    plan = fhir_get(client, f"/fhir/R4/CarePlan/{enrolment.public_id}")
    assert plan["instantiatesCanonical"] == ["urn:carehub:pathway:stepped-care-example|1"]
    group = plan["contained"][0]
    assert group["resourceType"] == "RequestGroup"
    assert {a["id"] for a in group["action"]} == {
        t.replace("_", "-") for t in enrolment.configuration
    }
    task_refs = [a["reference"]["reference"] for a in plan["activity"]]
    assert f"Task/{task.pk}" in task_refs

    task_resource = fhir_get(client, f"/fhir/R4/Task/{task.pk}")
    assert task_resource["status"] == "requested"
    assert task_resource["basedOn"] == [{"reference": f"CarePlan/{enrolment.public_id}"}]


def test_plan_definitions_carry_tracks_states_conditions_and_thresholds(client_for, staff) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["physician"])
    plans = search_all(client, "/fhir/R4/PlanDefinition")
    ids = {p["id"] for p in plans}
    assert "stepped-care-example-v1" in ids
    plan = fhir_get(client, "/fhir/R4/PlanDefinition/stepped-care-example-v1")
    states = [s for track in plan["action"] for s in track["action"]]
    transitions = [t for s in states for t in s.get("action", [])]
    assert any(t.get("condition") for t in transitions)
    assert all(t["trigger"][0]["type"] == "named-event" for t in transitions)
    assert plan["extension"][0]["url"].endswith("pathway-threshold")


def test_questionnaires_carry_wording_only_where_the_licence_allows(client_for, staff) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["physician"])
    questionnaires = {q["id"]: q for q in search_all(client, "/fhir/R4/Questionnaire")}
    assert len(questionnaires) == len(instruments())
    for definition in instruments():
        resource_id = f"{definition.key.replace('_', '-')}-v{definition.version}"
        read = fhir_get(client, f"/fhir/R4/Questionnaire/{resource_id}")
        assert read == questionnaires[resource_id]
        text = json.dumps(read)
        if definition.licence == "free":
            assert all(json.dumps(w)[1:-1] in text for w in definition.wording)
        else:
            assert not any(json.dumps(w)[1:-1] in text for w in definition.wording)
            assert all("text" not in item for item in read.get("item", []))
    phq9 = questionnaires["phq9-v1"]
    item9 = next(i for i in phq9["item"] if i["linkId"] == "item9")
    assert item9["code"] == [{"system": "http://loinc.org", "code": "44260-8"}]


def test_wording_of_a_licensed_instrument_never_leaves() -> None:
    """Whatever wording a definition carries, a licence other than `free` keeps it out:
    item codes, types and option values only."""
    licensed = instrument_get("phq9").model_copy(update={"licence": "licensed"})
    body = valid(resources.questionnaire(licensed))
    text = json.dumps(body)
    assert not any(json.dumps(w)[1:-1] in text for w in licensed.wording)
    item9 = next(i for i in body["item"] if i["linkId"] == "item9")
    assert item9["code"] == [{"system": "http://loinc.org", "code": "44260-8"}]
    assert [o["valueCoding"]["code"] for o in item9["answerOption"]] == ["0", "1", "2", "3"]


def test_another_clinics_resources_are_not_found_and_the_refusal_is_audited(
    client_for, outsider: User, enrolment, answered_phq9
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(outsider)
    observation = Observation.objects.get(patient=enrolment.patient, code="phq9")
    flag = Flag.objects.get(patient=enrolment.patient)
    for url in (
        f"/fhir/R4/Patient/{enrolment.patient_id}",
        f"/fhir/R4/Observation/{observation.pk}",
        f"/fhir/R4/QuestionnaireResponse/{answered_phq9.pk}",
        f"/fhir/R4/CarePlan/{enrolment.public_id}",
        f"/fhir/R4/Flag/{flag.pk}",
    ):
        body = fhir_get(client, url, status=404)
        assert body["issue"][0]["code"] == "not-found"
    assert search_all(client, f"/fhir/R4/Observation?patient={enrolment.patient_id}") == []
    denied = AuditEvent.objects.filter(actor=outsider, action=Action.FHIR_READ)
    assert denied.count() == 5
    assert all(e.outcome == Outcome.DENIED and e.patient_id is None for e in denied)


def test_a_therapist_sees_only_care_team_patients(
    client_for, staff, patient: Patient, clinic
) -> None:  # type: ignore[no-untyped-def]
    other = register(clinic, "T-2", "Bob", "Brown")
    physio = client_for(staff["physical_therapist"])  # on the care team of `patient` only
    psych = client_for(staff["psychologist"])  # on no care team
    assert [p["id"] for p in search_all(physio, "/fhir/R4/Patient")] == [str(patient.pk)]
    fhir_get(physio, f"/fhir/R4/Patient/{other.pk}", status=404)
    fhir_get(psych, f"/fhir/R4/Patient/{patient.pk}", status=404)
    assert search_all(psych, "/fhir/R4/Patient") == []


def test_reads_and_searches_are_audited_per_patient(client_for, staff, patient, clinic) -> None:  # type: ignore[no-untyped-def]
    other = register(clinic, "T-2", "Bob", "Brown")
    user = staff["coordinator"]
    client = client_for(user)
    fhir_get(client, f"/fhir/R4/Patient/{patient.pk}")
    read = AuditEvent.objects.get(actor=user, action=Action.FHIR_READ)
    assert (read.patient_id, read.outcome, read.detail) == (
        patient.pk,
        "ok",
        {"resource": "Patient"},
    )
    search_all(client, "/fhir/R4/Patient")
    searched = AuditEvent.objects.filter(actor=user, action=Action.FHIR_SEARCH)
    assert {e.patient_id for e in searched} == {patient.pk, other.pk}


def test_paging_follows_next_links_to_every_match(client_for, staff, clinic) -> None:  # type: ignore[no-untyped-def]
    created = {register(clinic, f"P-{n}", "Pat", f"Page{n}").pk for n in range(7)}
    client = client_for(staff["coordinator"])
    first = fhir_get(client, "/fhir/R4/Patient?_count=3")
    assert len(first["entry"]) == 3
    assert any(link["relation"] == "next" for link in first["link"])
    found = search_all(client, "/fhir/R4/Patient?_count=3")
    assert [int(p["id"]) for p in found] == sorted(created)


def test_last_updated_filters_by_prefix(client_for, staff, clinic) -> None:  # type: ignore[no-untyped-def]
    old = register(clinic, "OLD", "Old", "One")
    new = register(clinic, "NEW", "New", "One")
    Patient.objects.filter(pk=old.pk).update(updated_at=timezone.now() - timedelta(days=10))
    client = client_for(staff["coordinator"])
    cutoff = (timezone.now() - timedelta(days=1)).date().isoformat()
    assert [p["id"] for p in search_all(client, f"/fhir/R4/Patient?_lastUpdated=ge{cutoff}")] == [
        str(new.pk)
    ]
    assert [p["id"] for p in search_all(client, f"/fhir/R4/Patient?_lastUpdated=lt{cutoff}")] == [
        str(old.pk)
    ]
    body = fhir_get(client, "/fhir/R4/Patient?_lastUpdated=yesterday", status=400)
    assert body["issue"][0]["code"] == "invalid"


def test_unsupported_parameters_and_types_are_refused(client_for, staff) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["coordinator"])
    assert fhir_get(client, "/fhir/R4/Patient?name=Adams", status=400)["issue"][0]["diagnostics"]
    fhir_get(client, "/fhir/R4/Encounter", status=404)
    fhir_get(client, "/fhir/R4/Patient?_count=0", status=400)


def test_api_tokens_authenticate_and_anonymous_is_refused(staff, patient) -> None:  # type: ignore[no-untyped-def]
    anonymous = APIClient()
    body = fhir_get(anonymous, f"/fhir/R4/Patient/{patient.pk}", status=401)
    assert body["issue"][0]["code"] == "login"
    token, _ = api_token_issue(user=staff["physician"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert fhir_get(client, f"/fhir/R4/Patient/{patient.pk}")["id"] == str(patient.pk)


def test_a_patient_reads_their_own_record_but_not_the_clinical_worklists(
    client_for, enrolment, answered_phq9
) -> None:  # type: ignore[no-untyped-def]
    user = patient_account_create(patient=enrolment.patient, username="alice", password=None)
    client = client_for(user)
    assert [p["id"] for p in search_all(client, "/fhir/R4/Patient")] == [str(enrolment.patient_id)]
    assert search_all(client, "/fhir/R4/QuestionnaireResponse")
    body = fhir_get(client, "/fhir/R4/Flag", status=403)
    assert body["issue"][0]["code"] == "forbidden"
    fhir_get(client, "/fhir/R4/Task", status=403)


def test_every_emitted_bundle_validates_as_a_whole(
    client_for, staff, enrolment, answered_phq9
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["coordinator"])
    for name in ("Patient", "Observation", "QuestionnaireResponse", "CarePlan", "Task", "Flag",
                 "PlanDefinition", "Questionnaire"):  # fmt: skip
        bundle = fhir_get(client, f"/fhir/R4/{name}")
        valid(bundle)
        assert all(e["resource"]["resourceType"] == name for e in bundle.get("entry", []))
