"""Lists run a constant number of queries whatever the page size."""

from __future__ import annotations

import pytest
from django.utils import timezone

from carehub.accounts.models import User
from carehub.clinics.models import Clinic
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


def test_page_size_is_capped_at_100(client_for, staff, many_patients) -> None:  # type: ignore[no-untyped-def]
    response = client_for(staff["coordinator"]).get("/api/v1/patients?page_size=500")
    assert len(response.json()["results"]) == 100


def test_default_page_is_50_and_search_narrows(client_for, staff, many_patients) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["coordinator"])
    assert len(client.get("/api/v1/patients").json()["results"]) == 50
    found = client.get("/api/v1/patients?search=given7 family0").json()["results"]
    assert {p["mrn"] for p in found} == {"Q-007", "Q-070", "Q-077"}
    by_mrn = client.get("/api/v1/patients?search=q-10").json()["results"]
    assert sorted(p["mrn"] for p in by_mrn) == [f"Q-10{n}" for n in range(10)]
