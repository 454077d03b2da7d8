"""`audit_record` for a list: one row per patient, written in one INSERT whatever the number of
patients, with the request's actor, role, request id, address and user agent on every row."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from carehub.accounts.models import User
from carehub.audit.models import Action, AuditEvent, Outcome
from carehub.audit.services import audit_record
from carehub.clinics.models import Clinic
from carehub.patients.models import Patient
from tests.api.conftest import register

pytestmark = pytest.mark.django_db


def list_request(user: User) -> object:
    request = RequestFactory().get(
        "/api/v1/patients", HTTP_USER_AGENT="phone browser", REMOTE_ADDR="10.1.2.3"
    )
    request.user = user
    request.request_id = "req-42"  # type: ignore[attr-defined]
    return request


def record_list(user: User, patients: list[Patient | int]) -> int:
    with CaptureQueriesContext(connection) as queries:
        written = audit_record(
            request=list_request(user),
            action=Action.PATIENT_LIST,
            patients=patients,
            detail={"page_size": len(patients)},
        )
    assert len(queries) == 1
    return written


def test_a_list_writes_one_row_per_patient_in_one_query(
    clinic: Clinic, staff: dict[str, User]
) -> None:
    coordinator = staff["coordinator"]
    patients = [register(clinic, f"L-{n}") for n in range(12)]
    assert record_list(coordinator, patients[:2]) == 2
    # Ids count as patients of the user's clinic; a patient listed twice is recorded once.
    listed: list[Patient | int] = [*patients, patients[0].pk, patients[3]]
    assert record_list(coordinator, listed) == 12
    rows = list(AuditEvent.objects.filter(detail__page_size=14).order_by("pk"))
    assert [row.patient_id for row in rows] == [p.pk for p in patients]
    for row in rows:
        assert row.clinic_id == clinic.pk
        assert row.actor_id == coordinator.pk
        assert row.actor_role == coordinator.role
        assert row.action == Action.PATIENT_LIST
        assert row.outcome == Outcome.OK
        assert row.request_id == "req-42"
        assert row.ip_address == "10.1.2.3"
        assert row.user_agent == "phone browser"
        assert row.at is not None
    assert len({row.at for row in rows}) == 1


def test_rows_written_in_one_insert_stay_append_only(
    clinic: Clinic, staff: dict[str, User]
) -> None:
    record_list(staff["coordinator"], [register(clinic, "L-1"), register(clinic, "L-2")])
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(action=Action.PATIENT_LIST).update(outcome=Outcome.ERROR)
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(action=Action.PATIENT_LIST).delete()
    assert AuditEvent.objects.filter(action=Action.PATIENT_LIST).count() == 2
