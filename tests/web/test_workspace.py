"""The therapists' workspace and logging a session."""

from __future__ import annotations

import re
from datetime import UTC, timedelta

import pytest
from django.test import Client

from carehub.accounts.models import User
from carehub.clinics.models import Clinic
from carehub.core import clock
from carehub.observations.models import Kind, Observation
from carehub.pathways.models import PathwayStep
from carehub.pathways.services import enrolment_pause
from carehub.patients.models import Patient
from tests.web.conftest import form_key, on_team, register, with_history
from tests.web.histories import early_conventional

pytestmark = pytest.mark.django_db


def session_url(patient: Patient) -> str:
    return f"/patients/{patient.pk}/session"


def log_session(client: Client, patient: Patient, **fields: object):  # type: ignore[no-untyped-def]
    html = client.get(f"/patients/{patient.pk}/").content.decode()
    data = {
        "s-form_key": form_key(html, session_url(patient)),
        "s-attended": "yes",
        "s-observed_at": (clock.now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
        "s-notes": "Graded activity, tolerated well",
    }
    data.update({f"s-{k}": v for k, v in fields.items()})
    return data, client.post(session_url(patient), data)


def sessions(patient: Patient) -> int:
    return Observation.objects.filter(patient=patient, kind=Kind.SESSION, code="pt").count()


def test_the_workspace_lists_only_my_patients(
    clinic: Clinic, patient: Patient, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    other = register(clinic, "T-9", "Otto", "Outside")
    with_history(other, staff, early_conventional, 45)
    html = client_for(staff["physical_therapist"]).get("/my/").content.decode()
    assert "Adams, Alice" in html
    assert "Outside" not in html
    assert "Physical therapy:" in html


def test_the_workspace_is_for_therapists(
    staff: dict[str, User], patient_user: User, client_for
) -> None:  # type: ignore[no-untyped-def]
    assert client_for(staff["coordinator"]).get("/my/").status_code == 403
    assert client_for(patient_user).get("/my/").status_code == 403
    assert client_for(staff["pharmacist"]).get("/my/").status_code == 200


def test_a_session_with_psfs_is_logged_once_and_the_pathway_told(
    patient: Patient, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["physical_therapist"])
    before = sessions(patient)
    data, response = log_session(client, patient, measure_score="4.5")
    assert response.status_code == 302
    assert client.post(session_url(patient), data).status_code == 302  # double submit
    assert sessions(patient) == before + 1
    psfs = Observation.objects.get(patient=patient, kind=Kind.SCORE, code="psfs")
    assert (psfs.value_number, psfs.is_baseline) == (4.5, True)
    step = PathwayStep.objects.filter(enrolment__patient=patient).latest("id")
    assert (step.event, step.actor) == ("pt_session_logged", staff["physical_therapist"])
    html = client.get(response["Location"].split("#")[0]).content.decode()
    assert "Session logged (attended)." in html
    assert "Graded activity, tolerated well" in html


def test_a_no_show_is_logged(patient: Patient, staff: dict[str, User], client_for) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["physical_therapist"])
    _, response = log_session(client, patient, attended="no", notes="")
    assert response.status_code == 302
    latest = Observation.objects.filter(patient=patient, kind=Kind.SESSION).latest("id")
    assert latest.value_bool is False


def test_a_score_out_of_range_records_nothing(
    patient: Patient, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["physical_therapist"])
    before = sessions(patient)
    steps = PathwayStep.objects.count()
    _, response = log_session(client, patient, measure_score="14")
    assert response.status_code == 400
    assert sessions(patient) == before
    assert PathwayStep.objects.count() == steps
    _, response = log_session(
        client, patient, observed_at=(clock.now() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "is in the future" in html
    assert 'aria-describedby="id_s-observed_at-error"' in html  # next to its field
    assert sessions(patient) == before


def test_only_therapists_on_the_team_log_sessions(
    patient: Patient, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    before = sessions(patient)
    data = {"s-form_key": "a" * 32, "s-attended": "yes", "s-observed_at": "2026-01-01T10:00"}
    assert client_for(staff["coordinator"]).post(session_url(patient), data).status_code == 403
    assert client_for(staff["psychologist"]).post(session_url(patient), data).status_code == 404
    on_team(patient, staff, ("psychologist",))
    html = client_for(staff["psychologist"]).get(f"/patients/{patient.pk}/").content.decode()
    assert "Log a session" in html
    assert sessions(patient) == before


def test_a_field_error_is_tied_to_its_field(
    patient: Patient, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["physical_therapist"])
    _, response = log_session(client, patient, measure_score="not a number")
    html = response.content.decode()
    assert response.status_code == 400
    assert 'aria-describedby="id_s-measure_score-error"' in html
    assert 'id="id_s-measure_score-error"' in html
    assert 'aria-invalid="true"' in html


def test_a_therapist_advances_their_track_from_the_workspace(
    patient: Patient, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["physical_therapist"])
    enrolment = patient.enrolments.get()
    html = client.get("/my/").content.decode()
    url = f"/patients/{patient.pk}/enrolments/{enrolment.public_id}/event"
    start = html.index(f'action="{url}"')
    form = html[start : html.index("</form>", start)]
    offered = re.findall(r'<option value="([a-z0-9_]+)"', form)
    assert offered
    assert all(event.startswith("pt_") for event in offered)
    key = re.search(r'name="e\d+-form_key" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
    response = client.post(
        url,
        {
            f"e{enrolment.pk}-form_key": key,
            f"e{enrolment.pk}-expected_version": enrolment.version,
            f"e{enrolment.pk}-event": offered[0],
            "next": "/my/",
        },
    )
    assert (response.status_code, response["Location"]) == (302, "/my/")
    step = PathwayStep.objects.filter(enrolment=enrolment).latest("id")
    assert (step.event, step.actor) == (offered[0], staff["physical_therapist"])


def test_times_typed_in_are_the_clinics_local_time(
    patient: Patient, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    clinic = patient.clinic
    clinic.time_zone = "America/New_York"
    clinic.save(update_fields=["time_zone"])
    client = client_for(staff["physical_therapist"])
    _, response = log_session(client, patient, observed_at="2026-01-15T10:00")
    assert response.status_code == 302
    latest = Observation.objects.filter(patient=patient, kind=Kind.SESSION).latest("id")
    assert latest.observed_at.astimezone(UTC).isoformat() == "2026-01-15T15:00:00+00:00"


def test_a_session_on_a_paused_pathway_is_logged_and_says_the_pathway_was_not_told(
    patient: Patient, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    enrolment_pause(enrolment_id=patient.enrolments.get().pk, reason="Holiday")
    client = client_for(staff["physical_therapist"])
    before = sessions(patient)
    data, response = log_session(client, patient)
    assert response.status_code == 302
    html = client.get(response["Location"].split("#")[0]).content.decode()
    assert "The pathway was not told" in html
    assert client.post(session_url(patient), data).status_code == 302  # sent again: once
    assert sessions(patient) == before + 1
