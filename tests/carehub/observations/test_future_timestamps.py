"""No observation in the future beyond a small clock skew (`OBSERVATION_MAX_FUTURE_SKEW_SECONDS`,
default 5 s): facts are read as of now, so a pathway told about an observation dated even 30 s
ahead would not see it. Every recording service refuses it with the field named, and so do the
API and the staff pages."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from carehub.accounts.models import User
from carehub.core.exceptions import InvalidInput
from carehub.observations import services
from carehub.observations.models import Observation
from carehub.observations.scores import score_observation_record
from carehub.patients.models import Patient
from carehub.patients.services import care_team_add
from tests.carehub.observations.conftest import NOW

AHEAD = NOW + timedelta(seconds=30)
TOMORROW = date(2026, 3, 3)  # NOW is 2 March 2026, noon in London

pytestmark = pytest.mark.django_db

Record = Callable[[Patient], Any]

RECORDS: list[tuple[str, Record]] = [
    ("observed_at", lambda p: services.score_record(
        patient=p, instrument="nrs", score=4, observed_at=AHEAD)),
    ("observed_at", lambda p: score_observation_record(
        patient=p, instrument="peg", items={"pain": 5, "enjoyment": 5, "activity": 5},
        observed_at=AHEAD, source="patient")),
    ("performed_at", lambda p: services.procedure_record(
        patient=p, procedure="esi", performed_at=AHEAD)),
    ("assessed_at", lambda p: services.procedure_result_record(
        procedure=services.procedure_record(
            patient=p, procedure="esi", performed_at=NOW - timedelta(days=1)),
        relief_pct=60, assessed_at=AHEAD)),
    ("observed_at", lambda p: services.session_record(
        patient=p, discipline="pt", attended=True, observed_at=AHEAD)),
    ("observed_at", lambda p: services.medication_record(
        patient=p, drug="oxycodone", daily_dose=20, unit="mg", observed_at=AHEAD)),
    ("observed_at", lambda p: services.failed_treatment_record(
        patient=p, treatment_class="snri", reason="insufficient_effect", observed_at=AHEAD)),
    ("observed_at", lambda p: services.psych_evaluation_record(
        patient=p, outcome="cleared", observed_at=AHEAD)),
    ("observed_at", lambda p: services.status_record(
        patient=p, code="naloxone_offered", value=True, observed_at=AHEAD)),
    ("onset", lambda p: services.pain_onset_record(patient=p, onset=TOMORROW)),
    ("started", lambda p: services.conservative_care_start_record(patient=p, started=TOMORROW)),
]  # fmt: skip


@pytest.mark.parametrize(("field", "record"), RECORDS)
def test_every_recording_service_refuses_the_future_naming_the_field(
    patient: Patient, field: str, record: Record
) -> None:
    before = Observation.objects.count()
    with pytest.raises(InvalidInput) as refused:
        record(patient)
    assert list(refused.value.extra["fields"]) == [field]
    assert "in the future" in refused.value.message
    assert Observation.objects.count() <= before + 1  # at most the procedure a result needs
    assert not Observation.objects.filter(observed_at__gt=NOW).exists()


def test_the_skew_is_a_setting(patient: Patient, settings) -> None:  # type: ignore[no-untyped-def]
    services.session_record(
        patient=patient, discipline="pt", attended=True, observed_at=NOW + timedelta(seconds=5)
    )
    settings.OBSERVATION_MAX_FUTURE_SKEW_SECONDS = 60
    services.session_record(patient=patient, discipline="pt", attended=True, observed_at=AHEAD)
    settings.OBSERVATION_MAX_FUTURE_SKEW_SECONDS = 0
    with pytest.raises(InvalidInput, match="observed_at: is in the future"):
        services.session_record(
            patient=patient, discipline="pt", attended=True, observed_at=NOW + timedelta(seconds=1)
        )


@pytest.mark.parametrize(
    ("url", "body", "field"),
    [
        ("/patients/{id}/procedures", {"procedure": "esi", "performed_at": AHEAD}, "performed_at"),
        ("/patients/{id}/sessions",
         {"discipline": "pt", "attended": True, "observed_at": AHEAD}, "observed_at"),
        ("/patients/{id}/scores", {"instrument": "odi", "score": 30, "observed_at": AHEAD},
         "observed_at"),
        ("/observations/{procedure}/result", {"relief_pct": 60, "assessed_at": AHEAD},
         "assessed_at"),
    ],
)  # fmt: skip
def test_the_api_refuses_30_seconds_ahead_naming_the_field(
    patient: Patient, nurse: User, physio: User, url: str, body: dict[str, Any], field: str
) -> None:
    procedure = services.procedure_record(
        patient=patient, procedure="esi", performed_at=NOW - timedelta(days=1)
    )
    care_team_add(patient=patient, staff=physio)
    client = APIClient()
    # Sessions are logged by their therapists; the rest by the coordinator.
    client.force_authenticate(physio if "sessions" in url else nurse)
    response = client.post(
        "/api/v1" + url.format(id=patient.pk, procedure=procedure.pk),
        {k: v.isoformat() if k.endswith("_at") else v for k, v in body.items()},
        format="json",
        HTTP_IDEMPOTENCY_KEY="ahead",
    )
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert list(response.json()["errors"]) == [field]
    assert Observation.objects.count() == 1  # the procedure only


def test_the_staff_page_shows_the_refusal_next_to_the_field(patient: Patient, nurse: User) -> None:
    care_team_add(patient=patient, staff=nurse)
    client = Client()
    client.force_login(nurse)
    html = client.get(f"/patients/{patient.pk}/").content.decode()
    url = f"/patients/{patient.pk}/procedure"
    form = html[html.index(f'action="{url}"') :]
    key = form.split('name="pp-form_key" value="', 1)[1].split('"', 1)[0]
    in_two_minutes = "2026-03-02T12:02"  # the clinic's time zone is London (UTC in March)
    response = client.post(
        url, {"pp-form_key": key, "pp-procedure": "esi", "pp-performed_at": in_two_minutes}
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert 'id="id_pp-performed_at-error">is in the future' in page
    assert not Observation.objects.exists()
