"""The correction path of every recorded kind: `corrects` replaces an observation (the facts read
the replacement, the history keeps both), `POST /observations/{id}/withdraw` withdraws one
entered in error; what cannot be corrected is refused and changes nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import uuid4

import pytest
from django.utils import timezone

from carehub.accounts.models import User
from carehub.observations.models import Observation
from carehub.observations.selectors import facts_for_patient
from carehub.patients.models import Patient
from tests.api.conftest import assert_problem, register

pytestmark = pytest.mark.django_db


def post(client, url: str, body: dict[str, Any]):  # type: ignore[no-untyped-def]
    return client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY=uuid4().hex)


def at(days: float) -> str:
    return (timezone.now() - timedelta(days=days)).isoformat()


KINDS = {
    # path: (role, first body, correction, fact and its corrected value)
    "pain-onset": ("coordinator", {"onset": "2026-01-01"}, {"onset": "2020-01-01"}, None),
    "conservative-care-start": (
        "coordinator", {"started": "2026-01-01"}, {"started": "2020-01-01"}, None,
    ),
    "failed-treatments": (
        "coordinator",
        {"treatment_class": "nsaid", "reason": "adverse_effect", "observed_at": at(2)},
        {"treatment_class": "nsaid", "reason": "insufficient_effect", "observed_at": at(2)},
        ("failed_treatment_classes", 1),
    ),
    "psych-evaluations": (
        "physician",
        {"outcome": "not_cleared", "observed_at": at(2)},
        {"outcome": "cleared", "observed_at": at(2)},
        ("psych_eval.outcome", "cleared"),
    ),
    "statuses": (
        "coordinator",
        {"code": "substance_use_active", "value": True, "observed_at": at(2)},
        {"code": "substance_use_active", "value": False, "observed_at": at(2)},
        ("substance_use.active", False),
    ),
    "medications": (
        "physician",
        {"drug": "morphine", "daily_dose": 90, "unit": "mg", "observed_at": at(2)},
        {"drug": "morphine", "daily_dose": 30, "unit": "mg", "observed_at": at(2)},
        ("mme.daily", 30.0),
    ),
    "scores": (
        "physician",
        {"instrument": "peg", "items": {"pain": 9, "enjoyment": 9, "activity": 9},
         "observed_at": at(2)},
        {"instrument": "peg", "items": {"pain": 6, "enjoyment": 6, "activity": 6},
         "observed_at": at(2)},
        ("peg.baseline", 6.0),
    ),
    "procedures": (
        "physician",
        {"procedure": "esi", "performed_at": at(2), "relief_pct": 20},
        {"procedure": "esi", "performed_at": at(2), "relief_pct": 70},
        ("esi.relief_pct", 70.0),
    ),
    "sessions": (
        "physical_therapist",
        {"discipline": "pt", "attended": False, "observed_at": at(2)},
        {"discipline": "pt", "attended": True, "observed_at": at(2)},
        ("pt.sessions_attended", 1),
    ),
}  # fmt: skip


@pytest.mark.parametrize("path", sorted(KINDS))
def test_a_correction_replaces_the_observation_for_every_fact(
    client_for, staff: dict[str, User], patient: Patient, path: str
) -> None:  # type: ignore[no-untyped-def]
    role, first, correction, expected = KINDS[path]
    client = client_for(staff[role])
    url = f"/api/v1/patients/{patient.pk}/{path}"
    recorded = post(client, url, first)
    assert recorded.status_code == 201, recorded.content
    original = recorded.json()["observation"]["id"]
    fixed = post(client, url, {**correction, "corrects": original})
    assert fixed.status_code == 201, fixed.content
    assert fixed.json()["observation"]["corrects_id"] == original
    # Only the correction is current; both stay in the history.
    current = client_for(staff["physician"]).get(f"/api/v1/patients/{patient.pk}/observations")
    ids = [row["id"] for row in current.json()["results"]]
    assert original not in ids
    assert fixed.json()["observation"]["id"] in ids
    assert Observation.objects.filter(pk=original).exists()
    if expected is not None:
        name, value = expected
        assert facts_for_patient(patient=patient, now=timezone.now())[name] == value
    # The replaced one is not corrected twice: 409 naming its replacement, nothing recorded.
    count = Observation.objects.count()
    again = post(client, url, {**correction, "corrects": original})
    body = assert_problem(again, 409, "conflict")
    assert body["replaced_by"] == fixed.json()["observation"]["id"]
    assert Observation.objects.count() == count


def test_a_correction_must_name_an_observation_of_this_patient_and_kind(
    client_for, staff: dict[str, User], patient: Patient
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["physician"])
    other = register(patient.clinic, "X-2")
    theirs = post(client, f"/api/v1/patients/{other.pk}/pain-onset", {"onset": "2024-01-01"})
    mine = post(client, f"/api/v1/patients/{patient.pk}/pain-onset", {"onset": "2024-01-01"})
    count = Observation.objects.count()
    for corrects in (theirs.json()["observation"]["id"], 999999):
        response = post(
            client, f"/api/v1/patients/{patient.pk}/pain-onset",
            {"onset": "2023-01-01", "corrects": corrects},
        )  # fmt: skip
        assert "corrects" in assert_problem(response, 400, "invalid_input")["errors"]
    response = post(
        client, f"/api/v1/patients/{patient.pk}/conservative-care-start",
        {"started": "2023-01-01", "corrects": mine.json()["observation"]["id"]},
    )  # fmt: skip
    assert "corrects" in assert_problem(response, 400, "invalid_input")["errors"]
    assert Observation.objects.count() == count


def test_a_withdrawn_observation_is_read_by_no_fact(
    client_for, staff: dict[str, User], patient: Patient
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["physician"])
    recorded = post(
        client, f"/api/v1/patients/{patient.pk}/medications",
        {"drug": "oxycodone", "daily_dose": 40, "unit": "mg", "observed_at": at(1)},
    )  # fmt: skip
    assert facts_for_patient(patient=patient, now=timezone.now())["mme.daily"] == 60.0
    oid = recorded.json()["observation"]["id"]
    assert_problem(
        post(client, f"/api/v1/observations/{oid}/withdraw", {"reason": ""}), 400, "invalid_input"
    )
    withdrawn = post(client, f"/api/v1/observations/{oid}/withdraw", {"reason": "Wrong patient"})
    assert withdrawn.status_code == 201, withdrawn.content
    assert withdrawn.json()["observation"]["corrects_id"] == oid
    assert facts_for_patient(patient=patient, now=timezone.now())["mme.daily"] == 0
    listed = client.get(f"/api/v1/patients/{patient.pk}/medications").json()
    assert (listed["medications"], listed["mme_daily"]) == ([], 0)
    # Withdrawn already: a conflict; a withdrawal itself cannot be withdrawn.
    assert_problem(
        post(client, f"/api/v1/observations/{oid}/withdraw", {"reason": "Again"}), 409, "conflict"
    )
