"""The README's "Integrating carehub" walk-through is true: its `sh` blocks, run in order by bash
with curl and jq against a live server (and a real Celery worker carrying out the pathway's
effects and the FHIR export), succeed from an empty clinic, and leave what they say they do."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from carehub.accounts.models import Role
from carehub.accounts.services import staff_create
from carehub.clinics.models import Clinic
from carehub.clinics.services import clinic_create
from carehub.fhir.models import ExportJob, ExportStatus
from carehub.messaging.models import Message
from carehub.observations.models import Observation
from carehub.observations.selectors import facts_for_patient
from carehub.patients.models import Patient
from carehub.worklists.models import CareTask
from tests.api.conftest import PASSWORD

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not (shutil.which("curl") and shutil.which("jq") and shutil.which("bash")),
        reason="needs bash, curl and jq",
    ),
]

README = Path(__file__).resolve().parents[2] / "README.md"
SETTINGS = {"CAREHUB", "CLINIC", "FRONT_DESK_USER", "FRONT_DESK_PASSWORD", "CLINICIAN_USER",
            "CLINICIAN_PASSWORD"}  # fmt: skip

# After the intake event the worker starts her check-ins and creates her task; an integration
# sees them appear within moments. The script waits for them before reading what is due.
WAIT_FOR_EFFECTS = """
for _ in $(seq 1 300); do
  due=$(curl -sS --fail-with-body "$CAREHUB/enrolments/$ENROLMENT/next-due" -H "$AUTH" \\
    | jq '[.items[] | select(.kind == "checkin" or .kind == "task")] | length')
  [ "$due" -ge 4 ] && break
  sleep 0.2
done
"""


def walkthrough() -> list[str]:
    text = README.read_text()
    start = text.index("\n## Integrating carehub\n")
    end = text.index("\n## ", start + 1)
    return re.findall(r"```sh\n(.*?)```", text[start:end], flags=re.S)


def test_the_first_block_only_names_the_settings() -> None:
    first = walkthrough()[0]
    names = set(re.findall(r"\b([A-Z_]+)=", first))
    assert names == SETTINGS
    assert "$(" not in first
    assert "curl" not in first


def test_the_readme_walkthrough_runs_against_a_live_server(
    live_server, celery_worker_process: str
) -> None:  # type: ignore[no-untyped-def]
    clinic: Clinic = clinic_create(name="Lakeside", slug="lakeside", time_zone="America/Chicago")
    staff_create(clinic=clinic, username="ehr-registration", role=Role.COORDINATOR,
                 password=PASSWORD)  # fmt: skip
    staff_create(clinic=clinic, username="ehr-clinical", role=Role.PHYSICIAN, password=PASSWORD)
    staff_create(clinic=clinic, username="pharmacy", role=Role.PHARMACIST, password=None)
    assert not Patient.objects.exists()

    blocks = walkthrough()
    settings = (
        f"CAREHUB={live_server.url}/api/v1 CLINIC=lakeside\n"
        f"FRONT_DESK_USER=ehr-registration FRONT_DESK_PASSWORD={PASSWORD}\n"
        f"CLINICIAN_USER=ehr-clinical CLINICIAN_PASSWORD={PASSWORD}\n"
    )
    steps = [settings]
    for block in blocks[1:]:
        steps.append(block)
        if '"intake_completed"' in block:
            steps.append(WAIT_FOR_EFFECTS)
    script = "set -euo pipefail\n" + "\n".join(steps)
    run = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, timeout=300, check=False
    )
    assert run.returncode == 0, f"stdout:\n{run.stdout[-3000:]}\nstderr:\n{run.stderr[-3000:]}"

    patient = Patient.objects.get(mrn="RP-2001")
    assert (patient.clinic_id, patient.language, patient.time_zone) == (
        clinic.pk, "es", "America/Chicago",
    )  # fmt: skip
    assert (patient.phone, patient.preferred_channel) == ("+13125550199", "email")
    assert patient.active is False
    assert patient.deactivation_reason == "Care transferred to her local clinic"
    enrolment = patient.enrolments.get()  # type: ignore[attr-defined]
    assert enrolment.status == "completed"
    assert any(
        step.event == "intake_completed" and step.outcome == "transitioned"
        for step in enrolment.steps.all()
    )
    # The corrected dose is the one the facts read (20 mg oxycodone: 30 MME).
    from django.utils import timezone

    assert facts_for_patient(patient=patient, now=timezone.now())["mme.daily"] == 30.0
    assert Observation.objects.filter(patient=patient, kind="medication").count() == 2
    task = CareTask.objects.get(patient=patient, title="Review the opioid dose")
    assert (task.status, task.assigned_to.username) == ("cancelled", "pharmacy")
    # The check-in opened early sent its request (answers closed at the discharge).
    assert Message.objects.filter(patient=patient, purpose="checkin_request").count() == 1
    assert "conventional_review_due" in run.stdout
    # Her record taken out as FHIR R4: the export's manifest, her Patient resource, her scores
    # with their LOINC codes (the PEG's panel 91148-7, the PHQ-9's 44249-1, the GAD-7's).
    job = ExportJob.objects.get(clinic=clinic)
    assert job.status == ExportStatus.COMPLETED
    assert re.search(r"\bPatient: 1 at http", run.stdout)
    assert re.search(r"^Observation: 3 at http", run.stdout, flags=re.M)  # one per score
    lines = run.stdout.splitlines()
    (exported,) = [json.loads(x) for x in lines if x.startswith('{"resourceType":"Patient"')]
    assert exported["identifier"][0]["value"] == "RP-2001"
    assert exported["active"] is False
    scores = [json.loads(x) for x in lines if x.startswith('{"id":') and '"codes":' in x]
    assert len(scores) == 3
    assert {code for score in scores for code in score["codes"]} >= {
        "91148-7", "44249-1", "69737-5", "peg", "phq9", "gad7",
    }  # fmt: skip
