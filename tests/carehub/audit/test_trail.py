"""The trail itself: append-only in the database and the model, the CSV export (command and
admin action) limited to one clinic, and the audit of patient pages in the Django admin."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command
from django.db import DatabaseError, transaction
from django.test import Client

from carehub.accounts.models import Role, User
from carehub.accounts.services import staff_create
from carehub.audit.models import AuditEvent
from carehub.clinics.models import Clinic
from carehub.core.exceptions import Conflict
from carehub.patients.models import Patient
from tests.api.conftest import register

pytestmark = pytest.mark.django_db


def event(clinic: Clinic, patient: Patient | None, at: datetime, **fields) -> AuditEvent:  # type: ignore[no-untyped-def]
    return AuditEvent.objects.create(
        clinic=clinic, patient=patient, at=at, action="patient.view", **fields
    )


@pytest.fixture
def events(clinic: Clinic, other_clinic: Clinic, patient: Patient) -> dict[str, AuditEvent]:
    foreign = register(other_clinic, "O-9", "Olga", "Other")
    return {
        "old": event(clinic, patient, datetime(2026, 2, 27, 12, tzinfo=UTC)),
        "first": event(clinic, patient, datetime(2026, 3, 1, 9, tzinfo=UTC), request_id="r1"),
        "last": event(
            clinic, patient, datetime(2026, 3, 2, 22, tzinfo=UTC), user_agent="=HYPERLINK(1)"
        ),
        "late": event(clinic, patient, datetime(2026, 3, 3, 1, tzinfo=UTC)),
        "foreign": event(other_clinic, foreign, datetime(2026, 3, 1, 10, tzinfo=UTC)),
    }


def test_the_database_refuses_update_and_delete(events: dict[str, AuditEvent]) -> None:
    rows = AuditEvent.objects.filter(pk=events["first"].pk)
    # The application's role has no UPDATE or DELETE on the table; the trigger behind it refuses
    # the owner too (tests/carehub/security/test_database_roles.py).
    refused = "permission denied for table audit_auditevent"
    with pytest.raises(DatabaseError, match=refused), transaction.atomic():
        rows.update(outcome="denied")
    with pytest.raises(DatabaseError, match=refused), transaction.atomic():
        rows._raw_delete(rows.db)  # the SQL DELETE itself, past the model
    assert rows.get().outcome == "ok"


def test_the_model_refuses_to_update_or_delete(events: dict[str, AuditEvent]) -> None:
    row = events["first"]
    row.outcome = "denied"
    with pytest.raises(Conflict, match="append-only"):
        row.save()
    with pytest.raises(Conflict, match="append-only"):
        row.delete()


def export(*args: str) -> list[dict[str, str]]:
    out, err = io.StringIO(), io.StringIO()
    call_command("audit_export", *args, stdout=out, stderr=err)
    return list(csv.DictReader(io.StringIO(out.getvalue())))


def test_the_export_command_writes_the_clinics_rows_in_the_period(
    events: dict[str, AuditEvent],
) -> None:
    rows = export("--clinic", "test", "--since", "2026-03-01", "--until", "2026-03-02")
    assert [int(r["id"]) for r in rows] == [events["first"].pk, events["last"].pk]
    assert {r["clinic"] for r in rows} == {"test"}
    assert rows[0]["patient_mrn"] == "T-1"
    assert rows[0]["request_id"] == "r1"
    assert rows[1]["user_agent"] == "'=HYPERLINK(1)"  # no formula for a spreadsheet
    everything = export("--clinic", "test", "--since", "2026-01-01")
    assert len(everything) == 4
    with pytest.raises(CommandError):
        export("--clinic", "nowhere", "--since", "2026-01-01")
    with pytest.raises(CommandError):
        export("--clinic", "test", "--since", "01/03/2026")


@pytest.fixture
def clinic_admin_client(clinic: Clinic) -> Client:
    auditor = staff_create(
        clinic=clinic, username="auditor", role=Role.CLINIC_ADMIN, password=None, is_staff=True
    )
    auditor.user_permissions.add(Permission.objects.get(codename="view_auditevent"))
    client = Client()
    client.force_login(auditor)
    return client


def test_clinic_admins_see_and_export_their_clinic_only(
    clinic_admin_client: Client, events: dict[str, AuditEvent]
) -> None:
    listing = clinic_admin_client.get("/admin/audit/auditevent/")
    assert listing.status_code == 200
    shown = {row.pk for row in listing.context["cl"].result_list}
    assert events["foreign"].pk not in shown
    assert events["first"].pk in shown
    assert clinic_admin_client.get("/admin/audit/auditevent/?q=T-1").status_code == 200
    assert clinic_admin_client.get("/admin/audit/auditevent/?outcome__exact=ok").status_code == 200

    everything = [str(e.pk) for e in events.values()]
    response = clinic_admin_client.post(
        "/admin/audit/auditevent/",
        {"action": "export_csv", "_selected_action": everything, "index": 0},
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == 4
    assert {r["clinic"] for r in rows} == {"test"}
    # Read-only: no adding, changing or deleting.
    assert clinic_admin_client.get("/admin/audit/auditevent/add/").status_code == 403
    page = f"/admin/audit/auditevent/{events['first'].pk}/delete/"
    assert clinic_admin_client.get(page).status_code == 403
    foreign = f"/admin/audit/auditevent/{events['foreign'].pk}/change/"
    assert clinic_admin_client.get(foreign).status_code == 302  # "does not exist" → index


@pytest.fixture
def superuser_client(clinic: Clinic) -> tuple[Client, User]:
    user = User.objects.create_superuser("root", password=None)
    client = Client()
    client.force_login(user)
    return client, user


def test_admin_pages_of_patients_are_audited(
    superuser_client: tuple[Client, User], clinic: Clinic, patient: Patient, enrolment
) -> None:  # type: ignore[no-untyped-def]
    client, user = superuser_client
    second = register(clinic, "T-2", "Bob", "Baker")
    response = client.get("/admin/patients/patient/", HTTP_X_REQUEST_ID="adm-1")
    assert response.status_code == 200
    listed = AuditEvent.objects.filter(request_id="adm-1")
    assert {r.patient_id for r in listed} == {patient.pk, second.pk}
    assert {(r.action, r.outcome, r.actor_id, r.clinic_id) for r in listed} == {
        ("admin.view", "ok", user.pk, clinic.pk)
    }

    client.get(f"/admin/pathways/enrolment/{enrolment.pk}/change/", HTTP_X_REQUEST_ID="adm-2")
    row = AuditEvent.objects.get(request_id="adm-2")
    assert (row.patient_id, row.clinic_id) == (patient.pk, clinic.pk)
    assert row.detail == {
        "model": "pathways.enrolment", "page": "change", "object_id": str(enrolment.pk),
    }  # fmt: skip

    client.post(
        f"/admin/patients/patient/{patient.pk}/change/", {}, HTTP_X_REQUEST_ID="adm-3"
    )  # an invalid form, but a change attempt on this patient
    row = AuditEvent.objects.get(request_id="adm-3")
    assert (row.action, row.patient_id) == ("admin.change", patient.pk)

    client.get("/admin/patients/patient/999999/change/", HTTP_X_REQUEST_ID="adm-4")
    assert AuditEvent.objects.get(request_id="adm-4").patient_id is None

    client.get("/admin/clinics/clinic/", HTTP_X_REQUEST_ID="adm-5")  # not patient data
    assert not AuditEvent.objects.filter(request_id="adm-5").exists()
