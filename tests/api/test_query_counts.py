"""Lists run a constant number of queries whatever the page size."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from carehub.accounts.models import User
from carehub.checkins.models import Checkin, CheckinStatus
from carehub.checkins.services import checkin_series_start
from carehub.clinics.models import Clinic
from carehub.messaging.delivery import event as delivery_event
from carehub.messaging.models import Message, MessageStatus
from carehub.messaging.services import PATIENT, message_enqueue
from carehub.observations.services import session_record
from carehub.pathways.models import Enrolment
from carehub.pathways.services import enrolment_start, pathway_dispatch
from carehub.patients.services import care_team_add
from carehub.worklists.services import care_task_create, flag_raise
from tests.api.conftest import EXAMPLE_KEY, register

pytestmark = pytest.mark.django_db


@pytest.fixture
def many_patients(clinic: Clinic, staff: dict[str, User]) -> None:
    for n in range(110):
        patient = register(clinic, f"Q-{n:03}", f"Given{n}", f"Family{n % 7}")
        care_team_add(patient=patient, staff=staff["physical_therapist"])


@pytest.fixture
def long_timeline(enrolment: Enrolment) -> Enrolment:
    for n in range(110):  # intake not eligible: each is a logged step that changed nothing
        pathway_dispatch(enrolment_id=enrolment.pk, event="intake_complete", idempotency_key=f"{n}")
    return enrolment


@pytest.mark.parametrize("size", [10, 50, 100])
@pytest.mark.parametrize("role", ["coordinator", "physical_therapist"])
def test_patient_list_queries_are_constant(
    client_for, staff, many_patients, django_assert_num_queries, size: int, role: str
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff[role])
    # One query for the page, one INSERT of its audit rows (bulk), whatever the page size.
    with django_assert_num_queries(2):
        response = client.get(f"/api/v1/patients?page_size={size}")
    assert len(response.json()["results"]) == size
    with django_assert_num_queries(2):
        response = client.get(response.json()["next"])
    assert response.status_code == 200


@pytest.mark.parametrize("size", [10, 50, 100])
def test_timeline_queries_are_constant(
    client_for, staff, long_timeline: Enrolment, django_assert_num_queries, size: int
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["coordinator"])
    url = f"/api/v1/enrolments/{long_timeline.public_id}/timeline?page_size={size}"
    # The enrolment, the page of steps, and the audit row.
    with django_assert_num_queries(3):
        response = client.get(url)
    steps = response.json()["results"]
    assert len(steps) == size
    assert steps[0]["sequence"] >= steps[-1]["sequence"]  # newest first
    assert steps[0]["explanation"]["summary"]


@pytest.fixture
def many_worklist_items(clinic: Clinic, staff: dict[str, User]) -> None:
    for n in range(60):
        patient = register(clinic, f"W-{n:03}", f"Given{n}", "Worklist")
        care_team_add(patient=patient, staff=staff["physical_therapist"])
        enrolment = enrolment_start(patient=patient, definition_key=EXAMPLE_KEY)
        care_task_create(
            enrolment=enrolment, discipline="physical_therapist", title=f"Task {n}", due_at=None
        )
        flag_raise(
            enrolment=enrolment,
            code="check",
            severity="urgent" if n % 3 == 0 else "warning",
            message=f"Flag {n}",
            raised_at=timezone.now(),
        )


@pytest.mark.parametrize("size", [10, 50])
@pytest.mark.parametrize("url", ["/api/v1/tasks?status=open", "/api/v1/flags?status=open"])
def test_worklist_queries_are_constant(
    client_for, staff, many_worklist_items, django_assert_num_queries, size: int, url: str
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["physical_therapist"])
    # The page (with patient and enrolment joined) and the bulk INSERT of its audit rows.
    with django_assert_num_queries(2):
        response = client.get(f"{url}&page_size={size}")
    assert len(response.json()["results"]) == size
    with django_assert_num_queries(2):
        response = client.get(response.json()["next"])
    assert response.status_code == 200


def test_page_size_is_at_most_100(client_for, staff, many_patients) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["coordinator"])
    assert len(client.get("/api/v1/patients?page_size=100").json()["results"]) == 100
    refused = client.get("/api/v1/patients?page_size=500")
    assert refused.status_code == 400
    assert list(refused.json()["errors"]) == ["page_size"]


def test_default_page_is_50_and_search_narrows(client_for, staff, many_patients) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["coordinator"])
    assert len(client.get("/api/v1/patients").json()["results"]) == 50
    found = client.get("/api/v1/patients?search=given7 family0").json()["results"]
    assert {p["mrn"] for p in found} == {"Q-007", "Q-070", "Q-077"}
    by_mrn = client.get("/api/v1/patients?search=q-10").json()["results"]
    assert sorted(p["mrn"] for p in by_mrn) == [f"Q-10{n}" for n in range(10)]


# --- check-ins, observations, messages ------------------------------------------------------


def queries_for(client, url: str) -> tuple[int, dict]:  # type: ignore[no-untyped-def,type-arg]
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, response.content
    return len(captured), response.json()


@pytest.fixture
def long_history(enrolment: Enrolment, staff: dict[str, User]) -> Enrolment:
    """110 check-ins (every 4th answered), 110 sessions and 110 messages with their delivery
    events, 55 of them dead."""
    patient = enrolment.patient
    series = checkin_series_start(
        enrolment=enrolment, series="peg", instrument="peg", every=timedelta(weeks=1),
        at=timezone.now() - timedelta(weeks=120),
    )  # fmt: skip
    start = series.checkins.get().due_at
    Checkin.objects.bulk_create(
        Checkin(
            series=series,
            patient=patient,
            enrolment=enrolment,
            instrument="peg",
            sequence=n,
            due_at=start + timedelta(weeks=n),
            closes_at=start + timedelta(weeks=n, hours=72),
            status=CheckinStatus.ANSWERED if n % 4 == 0 else CheckinStatus.MISSED,
            score=5.0 if n % 4 == 0 else None,
        )
        for n in range(2, 112)
    )
    for n in range(110):
        session_record(
            patient=patient, discipline="pt", attended=n % 5 != 0,
            observed_at=timezone.now() - timedelta(days=n + 1),
            recorded_by=staff["physical_therapist"],
        )  # fmt: skip
    for n in range(110):
        message = message_enqueue(
            patient=patient, recipient=PATIENT, purpose="pathway_notice", body=f"Notice {n}",
            idempotency_key=f"notice-{n}", why="test history",
        )  # fmt: skip
        if n % 2 == 0:
            Message.objects.filter(pk=message.pk).update(status=MessageStatus.DEAD)
            delivery_event(message, MessageStatus.DEAD, "Dead: gave up", at=timezone.now())
    return enrolment


@pytest.mark.parametrize(
    ("path", "role", "rows"),
    [
        ("/api/v1/patients/{patient}/checkins", "coordinator", 111),
        ("/api/v1/patients/{patient}/observations?kind=session", "physical_therapist", 110),
        ("/api/v1/patients/{patient}/messages", "physical_therapist", 110),
        ("/api/v1/messages/dead", "clinic_admin", 55),
    ],
)
def test_new_lists_run_a_constant_number_of_queries(
    client_for, staff, long_history: Enrolment, path: str, role: str, rows: int
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff[role])
    url = path.format(patient=long_history.patient_id)
    separator = "&" if "?" in url else "?"
    counts = {}
    for size in (10, 50, 100):
        counts[size], body = queries_for(client, f"{url}{separator}page_size={size}")
        assert len(body["results"]) == min(size, rows)
        if body["next"]:
            next_count, _ = queries_for(client, body["next"])
            assert next_count == counts[size]
    assert len(set(counts.values())) == 1, counts
    assert counts[10] <= 12
