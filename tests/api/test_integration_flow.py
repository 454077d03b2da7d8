"""A clinic's systems connecting to carehub over the REST API alone, from an empty clinic (staff,
no patients): register a patient, set her care team, enrol her, record her intake facts (with a
correction and a withdrawal), read the facts her pathway reads, its pending timers and what is
due next, and act on them (the intake event, a check-in opened early, tasks created, assigned
and cancelled, a PHQ-9 whose item 9 raises a red flag); then change her details and deactivate
her; the EHR hears of it all by webhooks, and takes her record out as FHIR R4 (a bulk
`$export` of the clinic). Every request carries a token and an `Idempotency-Key`, as an
integration would send them (the README's "Integrating carehub" walks through the same steps
with curl). The pathway's effects (check-ins started, tasks created) and the export are carried
out by a real Celery worker process, as in production."""

from __future__ import annotations

import json
import time
from datetime import date, timedelta
from typing import Any
from uuid import uuid4

import pytest
from django.utils import timezone
from fhir.resources.R4B import get_fhir_model_class
from rest_framework.test import APIClient

from carehub.accounts.models import User
from carehub.audit.models import AuditEvent
from carehub.messaging.models import Message
from carehub.observations.models import Observation
from carehub.pathways.models import EffectStatus, OutboxEffect
from carehub.patients.models import Patient
from config.celery_app import app
from tests.api.conftest import PASSWORD, assert_problem
from tests.support.webhook_receiver import Receiver, webhook_receiver

pytestmark = pytest.mark.django_db(transaction=True)


def effects_done(timeout: float = 60.0) -> None:
    """Wait until the worker has carried out every published effect of the pathway."""
    deadline = time.monotonic() + timeout
    while OutboxEffect.objects.exclude(status=EffectStatus.DONE).exists():
        assert time.monotonic() < deadline, list(
            OutboxEffect.objects.exclude(status=EffectStatus.DONE).values("kind", "status")
        )
        time.sleep(0.2)


def token_client(username: str) -> APIClient:
    response = APIClient().post(
        "/api/v1/auth/token", {"username": username, "password": PASSWORD}, format="json"
    )
    assert response.status_code == 201, response.content
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    return client


def write(
    client: APIClient, method: str, url: str, body: dict[str, Any] | None, status: int
) -> Any:
    response = getattr(client, method)(url, body, format="json", HTTP_IDEMPOTENCY_KEY=uuid4().hex)
    assert response.status_code == status, response.content
    return response.json()


def fact(facts: dict[str, Any], name: str) -> Any:
    return {row["name"]: row["value"] for row in facts["facts"]}[name]


def fhir_export(client: APIClient, clinic_slug: str) -> dict[str, list[dict[str, Any]]]:
    """`Group/<clinic>/$export` as a bulk-data client runs it: kick-off, poll the status URL
    until the manifest, download each ndjson file. Every resource must be valid R4 (parsed by
    the fhir.resources models); returns them by type."""
    kick_off = client.get(f"/fhir/R4/Group/{clinic_slug}/$export", HTTP_PREFER="respond-async")
    assert kick_off.status_code == 202, kick_off.content
    status_url = kick_off["Content-Location"]
    deadline = time.monotonic() + 60
    while (status := client.get(status_url)).status_code == 202:
        assert time.monotonic() < deadline, "the export did not complete"
        time.sleep(float(status["Retry-After"]) / 10)
    assert status.status_code == 200, status.content
    files: dict[str, list[dict[str, Any]]] = {}
    for output in status.json()["output"]:
        download = client.get(output["url"])
        assert download.status_code == 200
        assert download["Content-Type"] == "application/fhir+ndjson"
        lines = [json.loads(line) for line in download.content.decode().splitlines()]
        assert len(lines) == output["count"]
        for resource in lines:
            assert resource["resourceType"] == output["type"]
            get_fhir_model_class(output["type"]).model_validate(resource)
        files[output["type"]] = lines
    return files


def test_from_an_empty_clinic_to_a_patient_whose_pathway_reads_her_intake(
    staff: dict[str, User], celery_worker_process: str
) -> None:
    assert not Patient.objects.exists()
    # 0. The clinic admin registers the EHR's webhook receiver (a real local HTTP server).
    receiver = Receiver()
    receiving = webhook_receiver(receiver)
    receiving.__enter__()
    admin = token_client("clinic_admin")
    subscription = write(
        admin, "post", "/api/v1/webhooks",
        {"url": receiver.url, "event_types": ["enrolment.transitioned", "task.opened",
                                              "task.closed", "proposal.opened", "flag.raised"]},
        201,
    )  # fmt: skip
    receiver.secret = subscription["secret"]
    coordinator = token_client("coordinator")
    physician = token_client("physician")
    psychologist = token_client("psychologist")
    pharmacist = token_client("pharmacist")

    # 1. Register the patient.
    patient = write(
        coordinator,
        "post",
        "/api/v1/patients",
        {
            "mrn": "RP-2001",
            "given_name": "Maria",
            "family_name": "Lopez",
            "date_of_birth": "1971-04-02",
            "time_zone": "America/Chicago",
            "language": "es",
            "phone": "+13125550123",
            "preferred_channel": "sms",
        },
        201,
    )
    assert patient["mrn"] == "RP-2001"
    assert patient["language"] == "es"
    assert patient["time_zone"] == "America/Chicago"
    assert patient["active"] is True
    assert patient["care_team"] == []
    pid = patient["id"]
    # The same MRN again is a conflict.
    assert_problem(
        coordinator.post(
            "/api/v1/patients",
            {"mrn": "RP-2001", "given_name": "M", "family_name": "L", "time_zone": "UTC"},
            format="json",
            HTTP_IDEMPOTENCY_KEY=uuid4().hex,
        ),
        409,
        "conflict",
    )

    # 2. Her care team: therapists, psychologists and pharmacists see her only through it.
    assert_problem(psychologist.get(f"/api/v1/patients/{pid}"), 404, "not_found")
    team = write(
        coordinator,
        "put",
        f"/api/v1/patients/{pid}/care-team",
        {
            "members": [
                {"staff_id": staff["coordinator"].pk, "is_primary": True},
                {"staff_id": staff["physician"].pk},
                {"staff_id": staff["psychologist"].pk},
                {"staff_id": staff["pharmacist"].pk},
            ]
        },
        200,
    )
    assert {m["role"] for m in team["care_team"]} == {
        "coordinator", "physician", "psychologist", "pharmacist",
    }  # fmt: skip
    assert psychologist.get(f"/api/v1/patients/{pid}").status_code == 200

    # 3. Enrol her on the intractable-pain pathway.
    enrolment = write(
        coordinator,
        "post",
        f"/api/v1/patients/{pid}/enrolments",
        {"definition_key": "intractable-pain"},
        201,
    )
    eid = enrolment["public_id"]
    assert {t["track"]: t["state"] for t in enrolment["tracks"]}["ladder"] == "intake"

    # 4. Her intake facts. A wrong onset date first, then its correction.
    now = timezone.now()
    earlier = (now - timedelta(days=1)).isoformat()
    wrong = write(
        coordinator, "post", f"/api/v1/patients/{pid}/pain-onset", {"onset": "2026-01-01"}, 201
    )
    onset = (now - timedelta(days=800)).date()
    corrected = write(
        coordinator,
        "post",
        f"/api/v1/patients/{pid}/pain-onset",
        {"onset": onset.isoformat(), "corrects": wrong["observation"]["id"]},
        201,
    )
    assert corrected["observation"]["corrects_id"] == wrong["observation"]["id"]
    write(
        coordinator,
        "post",
        f"/api/v1/patients/{pid}/conservative-care-start",
        {"started": (now - timedelta(weeks=20)).date().isoformat()},
        201,
    )
    for treatment in ("gabapentinoid", "snri", "nsaid"):
        recorded = write(
            physician,
            "post",
            f"/api/v1/patients/{pid}/failed-treatments",
            {
                "treatment_class": treatment,
                "reason": "insufficient_effect",
                "observed_at": earlier,
                "duration_weeks": 8,
            },
            201,
        )
    # The NSAID was entered in error: withdrawn, it no longer counts.
    write(
        physician,
        "post",
        f"/api/v1/observations/{recorded['observation']['id']}/withdraw",
        {"reason": "Entered in error: never prescribed"},
        201,
    )
    write(
        psychologist,
        "post",
        f"/api/v1/patients/{pid}/psych-evaluations",
        {"outcome": "cleared", "observed_at": earlier},
        201,
    )
    for code in ("substance_use_active", "adverse_effects_intolerable"):
        write(
            physician,
            "post",
            f"/api/v1/patients/{pid}/statuses",
            {"code": code, "value": False, "observed_at": earlier},
            201,
        )
    medication = {"drug": "oxycodone", "daily_dose": 30, "unit": "mg", "observed_at": earlier}
    write(pharmacist, "post", f"/api/v1/patients/{pid}/medications", medication, 201)
    # A psychologist records no medication (the role matrix: physician and pharmacist).
    assert_problem(
        psychologist.post(
            f"/api/v1/patients/{pid}/medications",
            medication,
            format="json",
            HTTP_IDEMPOTENCY_KEY=uuid4().hex,
        ),
        403,
        "not_permitted",
    )
    baselines = {
        "peg": {"pain": 8, "enjoyment": 7, "activity": 6},
        "phq9": {f"item{n}": 1 for n in range(1, 9)} | {"item9": 0},
        "gad7": {f"item{n}": 1 for n in range(1, 8)},
    }
    for instrument, items in baselines.items():
        write(
            physician,
            "post",
            f"/api/v1/patients/{pid}/scores",
            {"instrument": instrument, "items": items, "observed_at": earlier},
            201,
        )
    medications = physician.get(f"/api/v1/patients/{pid}/medications").json()
    assert medications["mme_daily"] == 45.0  # oxycodone 30 mg x 1.5 (CDC 2022)
    assert [(m["drug"], m["mme"]) for m in medications["medications"]] == [("oxycodone", 45.0)]

    # 5. What her pathway reads now.
    facts = physician.get(f"/api/v1/enrolments/{eid}/facts").json()
    months = fact(facts, "pain.months")
    assert 25 <= months <= 27  # the corrected onset, not the wrong one
    assert fact(facts, "conservative_care.weeks") >= 19.5  # 20 weeks, counted from a date
    assert fact(facts, "failed_treatment_classes") == 2  # the withdrawn NSAID does not count
    assert fact(facts, "psych_eval.outcome") == "cleared"
    assert fact(facts, "substance_use.active") is False
    assert fact(facts, "mme.daily") == 45.0
    assert fact(facts, "peg.baseline") == 7.0
    assert fact(facts, "peg.improvement_pct") is None  # a baseline alone shows no change
    thresholds = {t["name"]: t for t in facts["thresholds"]}
    assert thresholds["intractable_min_months"]["source"]

    # 6. The intake event: the pathway decides on the facts just recorded.
    sent = write(
        coordinator,
        "post",
        f"/api/v1/enrolments/{eid}/events",
        {"event": "intake_completed"},
        200,
    )
    assert sent["outcome"] == "transitioned", sent
    effects_done()

    # A later PEG: 40 % better, a responder.
    write(
        physician,
        "post",
        f"/api/v1/patients/{pid}/scores",
        {
            "instrument": "peg",
            "items": {"pain": 5, "enjoyment": 4, "activity": 4},
            "observed_at": now.isoformat(),
        },
        201,
    )
    facts = physician.get(f"/api/v1/enrolments/{eid}/facts").json()
    assert fact(facts, "peg.improvement_pct") == pytest.approx(38.1, abs=0.1)
    assert fact(facts, "peg.responder") is True

    # 7. Pending timers and what is due next.
    timers = physician.get(f"/api/v1/enrolments/{eid}/timers").json()["timers"]
    review = next(t for t in timers if t["event"] == "conventional_review_due")
    assert review["status"] == "pending"
    assert review["state"] == "conventional"
    items = physician.get(f"/api/v1/enrolments/{eid}/next-due").json()["items"]
    kinds = {item["kind"] for item in items}
    assert kinds == {"timer", "checkin", "task"}
    instruments = {item["title"] for item in items if item["kind"] == "checkin"}
    assert {"peg", "phq9", "gad7"} <= instruments
    dated = [item["at"] for item in items if item["at"] is not None]
    assert dated == sorted(dated)

    # 8. Open the weekly PEG now (she is at the clinic).
    peg = next(i for i in items if i["kind"] == "checkin" and i["title"] == "peg")
    opened = write(coordinator, "post", f"/api/v1/checkins/{peg['id']}/open", None, 200)
    assert opened["status"] == "open"
    # The request goes out through the delivery policy (her send window decides when).
    assert Message.objects.filter(patient_id=pid, purpose="checkin_request").count() == 1

    # 9. Tasks: create one, assign it, cancel it.
    task = write(
        coordinator,
        "post",
        f"/api/v1/patients/{pid}/tasks",
        {
            "discipline": "pharmacist",
            "title": "Review the opioid dose before the next visit",
            "due_at": (now + timedelta(days=3)).isoformat(),
            "enrolment": eid,
        },
        201,
    )
    assert task["discipline"] == "pharmacist"
    assert task["assigned_to_id"] is None
    assigned = write(
        coordinator,
        "post",
        f"/api/v1/tasks/{task['id']}/assign",
        {"staff_id": staff["pharmacist"].pk},
        200,
    )
    assert assigned["assigned_to_id"] == staff["pharmacist"].pk
    # The pharmacist's own worklist shows it.
    worklist = pharmacist.get("/api/v1/tasks").json()["results"]
    assert [t["id"] for t in worklist] == [task["id"]]
    cancelled = write(
        pharmacist,
        "post",
        f"/api/v1/tasks/{task['id']}/cancel",
        {"reason": "Reviewed at the phone call"},
        200,
    )
    assert (cancelled["status"], cancelled["closed_reason"]) == (
        "cancelled",
        "Reviewed at the phone call",
    )

    # A PHQ-9 at the visit with item 9 above 0: a red flag on the clinic's board at once.
    write(
        physician,
        "post",
        f"/api/v1/patients/{pid}/scores",
        {
            "instrument": "phq9",
            "items": {f"item{n}": 1 for n in range(1, 10)},
            "observed_at": now.isoformat(),
        },
        201,
    )

    # 10. Her details change; she cannot be deactivated while on the pathway.
    updated = write(
        coordinator,
        "patch",
        f"/api/v1/patients/{pid}",
        {"language": "en", "email": "maria@example.org", "preferred_channel": "email"},
        200,
    )
    assert (updated["language"], updated["preferred_channel"]) == ("en", "email")
    refused = coordinator.post(
        f"/api/v1/patients/{pid}/deactivate",
        {"reason": "Moved away"},
        format="json",
        HTTP_IDEMPOTENCY_KEY=uuid4().hex,
    )
    body = assert_problem(refused, 409, "conflict")
    assert [e["public_id"] for e in body["current"]["enrolments"]] == [eid]
    write(coordinator, "post", f"/api/v1/enrolments/{eid}/discharge", {"reason": "Moved"}, 200)
    deactivated = write(
        coordinator, "post", f"/api/v1/patients/{pid}/deactivate", {"reason": "Moved away"}, 200
    )
    assert deactivated["active"] is False
    assert deactivated["deactivation_reason"] == "Moved away"
    assert_problem(
        coordinator.post(
            f"/api/v1/patients/{pid}/enrolments",
            {"definition_key": "intractable-pain"},
            format="json",
            HTTP_IDEMPOTENCY_KEY=uuid4().hex,
        ),
        409,
        "conflict",
    )
    active = coordinator.get("/api/v1/patients?active=true").json()["results"]
    assert active == []

    # 11. The EHR heard of every change, signed, in order, as the feed lists them.
    feed = coordinator.get("/api/v1/events", {"limit": 500}).json()["results"]
    wanted = [e["id"] for e in feed if e["type"] in subscription["event_types"]]
    assert {"enrolment.transitioned", "task.opened", "task.closed"} <= {e["type"] for e in feed}
    deadline = time.monotonic() + 60
    while receiver.accepted_ids() != wanted:
        assert time.monotonic() < deadline, (receiver.accepted_ids(), wanted)
        app.send_task("carehub.integrations.webhooks_send")  # beat's job in production
        time.sleep(1.0)
    assert all(item.verified for item in receiver.received)
    assert "flag.raised" in {e["type"] for e in feed}
    receiving.__exit__(None, None, None)

    # 12. The EHR takes her record out as FHIR R4: a bulk export of the clinic (she is its only
    # patient), written by the worker, every resource valid.
    files = fhir_export(coordinator, staff["coordinator"].clinic.slug)
    (fhir_patient,) = files["Patient"]
    assert fhir_patient["id"] == str(pid)
    assert fhir_patient["identifier"][0]["value"] == "RP-2001"
    assert fhir_patient["name"] == [{"family": "Lopez", "given": ["Maria"]}]
    assert fhir_patient["birthDate"] == "1971-04-02"
    assert fhir_patient["active"] is False
    references = {f"Patient/{pid}"}
    # Her scores, with the library's LOINC codes: the PEG twice, the PHQ-9 twice, the GAD-7.
    scores = files["Observation"]
    assert {o["subject"]["reference"] for o in scores} == references
    by_instrument: dict[str, list[dict[str, Any]]] = {}
    for observation in scores:
        codes = observation["code"]["coding"]
        assert codes[-1]["system"] == "urn:carehub:instrument"
        by_instrument.setdefault(codes[-1]["code"], []).append(observation)
        assert all(c["system"] == "http://loinc.org" for c in codes[:-1])
    assert {k: len(v) for k, v in by_instrument.items()} == {"peg": 2, "phq9": 2, "gad7": 1}
    panels = {k: {c["code"] for c in v[0]["code"]["coding"]} for k, v in by_instrument.items()}
    assert "91148-7" in panels["peg"]
    assert "44249-1" in panels["phq9"]
    assert "69737-5" in panels["gad7"]
    # The PEG's score is the mean of its items, as the library rounds it (2 places).
    assert sorted(o["valueQuantity"]["value"] for o in by_instrument["peg"]) == [4.33, 7.0]
    item9 = [
        component["valueInteger"]
        for observation in by_instrument["phq9"]
        for component in observation["component"]
        if component["code"]["coding"][0] == {"system": "http://loinc.org", "code": "44260-8"}
    ]
    assert sorted(item9) == [0, 1]
    # Her care plan, discharged, and the tasks of her care: the one cancelled, the pathway's.
    (plan,) = files["CarePlan"]
    assert plan["id"] == eid
    assert plan["instantiatesCanonical"][0].startswith("urn:carehub:pathway:intractable-pain|")
    assert plan["status"] == "completed"
    assert plan["subject"]["reference"] == f"Patient/{pid}"
    tasks = {t["id"]: t for t in files["Task"]}
    assert tasks[str(task["id"])]["status"] == "cancelled"
    assert tasks[str(task["id"])]["description"] == "Review the opioid dose before the next visit"
    assert tasks[str(task["id"])]["basedOn"] == [{"reference": f"CarePlan/{eid}"}]
    assert len(tasks) > 1  # the pathway's own (the referral after the intake)
    assert {t["for"]["reference"] for t in tasks.values()} == references
    # The red flag of item 9.
    (red_flag,) = [
        f for f in files["Flag"] if f["code"]["coding"][0]["code"] == "phq9_item9_positive"
    ]
    assert red_flag["status"] == "active"
    assert red_flag["subject"]["reference"] == f"Patient/{pid}"

    # Every write was audited under its own action.
    actions = set(AuditEvent.objects.filter(patient_id=pid).values_list("action", flat=True))
    assert {
        "patient.create", "care_team.set", "enrolment.start", "observation.pain_onset",
        "observation.conservative_care", "observation.failed_treatment", "observation.withdraw",
        "observation.psych_evaluation", "observation.status", "observation.medication",
        "medication.list", "enrolment.facts", "enrolment.timers", "enrolment.next_due",
        "checkin.open", "task.create", "task.assign", "task.cancel", "patient.update",
        "patient.deactivate", "fhir.export",
    } <= actions  # fmt: skip
    assert Observation.objects.filter(patient_id=pid, entered_in_error=True).count() == 1
    assert date.fromisoformat(corrected["observation"]["data"]["date"]) == onset
