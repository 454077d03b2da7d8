"""The therapists' workspace and logging a session."""

from __future__ import annotations

import re
from datetime import UTC, timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from carehub.accounts.models import User
from carehub.clinics.models import Clinic
from carehub.core import clock
from carehub.observations.models import Kind, Observation
from carehub.pathways.models import PathwayStep
from carehub.pathways.services import enrolment_pause
from carehub.patients.models import Patient
from carehub.worklists.services import care_task_create
from tests.web.conftest import form_key, on_team, register, with_history
from tests.web.histories import early_conventional, intake_only

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


def test_the_workspace_sends_no_event_without_the_session_it_reports(
    patient: Patient, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    """A one-click "Advance ... Send" recorded a session with no attendance or note: the
    workspace offers "Log a session" (the form with both) and no bare event form."""
    for role in ("physical_therapist", "pharmacist"):
        html = client_for(staff[role]).get("/my/").content.decode()
        assert "/event" not in html
        assert "Advance" not in html
        assert 'name="e' not in html
    html = client_for(staff["physical_therapist"]).get("/my/").content.decode()
    assert f'href="/patients/{patient.pk}/#record"' in html


def test_after_logging_a_session_the_page_opens_at_its_message(
    patient: Patient, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    """The redirect no longer jumps to the timeline, past the success message at the top."""
    _, response = log_session(client_for(staff["physical_therapist"]), patient)
    assert response.status_code == 302
    assert response["Location"] == f"/patients/{patient.pk}/"


def _more_link(html: str, name: str, text: str) -> str | None:
    match = re.search(rf'href="\?{name}=([^"#]+)(?:#[^"]*)?" rel="next">{text}<', html)
    return match.group(1) if match else None


def _workspace_team(clinic: Clinic, staff: dict[str, User], count: int) -> list[Patient]:
    patients = []
    for n in range(count):
        p = on_team(register(clinic, f"W-{n}", f"Pat{n}", f"Walker{n:02d}"), staff)
        enrolment = with_history(p, staff, intake_only, 3)
        care_task_create(
            enrolment=enrolment, discipline="physical_therapist", title=f"Call Walker{n:02d}",
            due_at=clock.now() + timedelta(days=n),
        )  # fmt: skip
        patients.append(p)
    return patients


def test_my_patients_and_tasks_go_on_past_a_page(
    clinic: Clinic, staff: dict[str, User], client_for, settings
) -> None:  # type: ignore[no-untyped-def]
    """/my/ stopped at a fixed number of rows with no way on: now keyset pages with "More"."""
    settings.WEB_WORKSPACE_PAGE_SIZE = 2
    _workspace_team(clinic, staff, 5)
    client = client_for(staff["physical_therapist"])
    seen_patients: list[str] = []
    seen_tasks: list[str] = []
    pages: list[int] = []
    url = "/my/"
    for _ in range(5):
        html = client.get(url).content.decode()
        found = re.findall(r'<th scope="row"><a [^>]+>(Walker\d\d), Pat\d+</a>', html)
        pages.append(len(found))
        seen_patients += found
        cursor = _more_link(html, "after", "More patients")
        if cursor is None:
            break
        url = f"/my/?after={cursor}"
    url = "/my/"
    for _ in range(5):
        html = client.get(url).content.decode()
        seen_tasks += re.findall(r"<td data-label=\"Task\">Call (Walker\d\d)</td>", html)
        cursor = _more_link(html, "tasks_after", "More tasks")
        if cursor is None:
            break
        url = f"/my/?tasks_after={cursor}"
    expected = [f"Walker{n:02d}" for n in range(5)]
    assert pages == [2, 2, 1]
    assert seen_patients == expected
    assert seen_tasks == expected
    response = client.get("/my/?after=not-a-cursor")
    assert response.status_code == 400
    assert "That page link is no longer valid." in response.content.decode()


def test_the_workspace_runs_the_same_queries_whatever_the_page(
    clinic: Clinic, staff: dict[str, User], client_for, settings
) -> None:  # type: ignore[no-untyped-def]
    _workspace_team(clinic, staff, 4)
    client = client_for(staff["physical_therapist"])
    client.get("/my/")  # warm up (sessions, content types)
    counts = {}
    for size in (1, 2, 4):
        settings.WEB_WORKSPACE_PAGE_SIZE = size
        with CaptureQueriesContext(connection) as queries:
            html = client.get("/my/").content.decode()
        counts[size] = len(queries)
        cursor = _more_link(html, "after", "More patients")
        if cursor:
            with CaptureQueriesContext(connection) as queries:
                client.get(f"/my/?after={cursor}")
            counts[f"{size} next"] = len(queries)
    assert len(set(counts.values())) == 1, counts


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
