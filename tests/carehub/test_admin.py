"""The Django admin: every model has a page, and the writes it offers go through the services."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.apps import apps
from django.contrib import admin
from django.test import Client

from carehub.accounts.models import Role, User
from carehub.accounts.services import staff_create
from carehub.demo.services import demo_seed
from carehub.pathways.models import Enrolment, EnrolmentStatus, PathwayStep, Proposal
from carehub.patients.models import CareTeamMembership, Patient
from carehub.worklists.models import CareTask
from tests.support.module_rows import rolled_back_after_the_module

pytestmark = pytest.mark.django_db

CAREHUB_APPS = {
    "core", "accounts", "clinics", "patients", "observations", "pathways", "worklists",
    "messaging", "checkins",
}  # fmt: skip


@pytest.fixture(scope="module")
def seeded(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """The staff, all the patients, and the histories these tests use (RP-1003's block waits
    for the physician's approval): seeded once for the module (`rolled_back_after_the_module`)."""
    with rolled_back_after_the_module(django_db_blocker):
        assert demo_seed(only={"RP-1001", "RP-1002", "RP-1003"}).clinic is not None
        yield


@pytest.fixture
def client_admin(seeded: None) -> Client:
    client = Client()
    client.force_login(User.objects.get(username="admin"))
    return client


def test_every_carehub_model_is_in_the_admin_and_its_pages_render(client_admin: Client) -> None:
    for model in apps.get_models():
        if model._meta.app_label not in CAREHUB_APPS:
            continue
        assert model in admin.site._registry, f"{model.__name__} has no admin"
        opts = model._meta
        listing = client_admin.get(f"/admin/{opts.app_label}/{opts.model_name}/")
        assert listing.status_code == 200, opts.label
        obj = model.objects.first()
        if obj is not None:
            page = client_admin.get(f"/admin/{opts.app_label}/{opts.model_name}/{obj.pk}/change/")
            assert page.status_code == 200, opts.label


def test_the_step_log_cannot_be_edited_or_deleted_in_the_admin(client_admin: Client) -> None:
    step = PathwayStep.objects.first()
    assert step is not None
    url = f"/admin/pathways/pathwaystep/{step.pk}/delete/"
    assert client_admin.get(url).status_code == 403
    assert client_admin.get("/admin/pathways/pathwaystep/add/").status_code == 403


def test_enrolling_from_the_admin_uses_the_service(client_admin: Client) -> None:
    patient = Patient.objects.get(mrn="RP-1001")
    Enrolment.objects.filter(patient=patient)  # RP-1001 is already enrolled by the seed
    response = client_admin.post(
        "/admin/pathways/enrolment/add/",
        {"patient": patient.pk, "definition_key": "intractable-pain"},
    )
    # A second open enrolment on the same pathway is refused by the service, not saved.
    assert Enrolment.objects.filter(patient=patient).count() == 1
    assert response.status_code in (200, 302)


def test_approving_a_proposal_from_the_admin_needs_the_physician_role(client_admin: Client) -> None:
    proposal = Proposal.objects.get(status="pending")
    action = {"action": "approve_selected", "_selected_action": [proposal.pk]}
    client_admin.post("/admin/pathways/proposal/", action)  # the clinic admin is no physician
    proposal.refresh_from_db()
    assert proposal.status == "pending"

    physician = User.objects.get(username="physician")
    physician.is_staff = True
    physician.is_superuser = True
    physician.save()
    client = Client()
    client.force_login(physician)
    client.post("/admin/pathways/proposal/", action)
    proposal.refresh_from_db()
    assert proposal.status == "approved"
    assert proposal.enrolment.state_of("ladder") == "mbb1"


def test_pause_and_resume_from_the_admin(client_admin: Client) -> None:
    enrolment = Enrolment.objects.get(patient__mrn="RP-1002")
    client_admin.post(
        "/admin/pathways/enrolment/",
        {"action": "pause_selected", "_selected_action": [enrolment.pk], "apply": "1",
         "reason": "Inpatient stay"},
    )  # fmt: skip
    enrolment.refresh_from_db()
    assert (enrolment.status, enrolment.pause_reason) == (EnrolmentStatus.PAUSED, "Inpatient stay")
    client_admin.post(
        "/admin/pathways/enrolment/",
        {"action": "resume_selected", "_selected_action": [enrolment.pk]},
    )
    enrolment.refresh_from_db()
    assert enrolment.status == EnrolmentStatus.ACTIVE


def test_patient_registration_and_care_team_through_the_admin(client_admin: Client) -> None:
    clinic = Patient.objects.first().clinic  # type: ignore[union-attr]
    form = {
        "clinic": clinic.pk, "mrn": "RP-2001", "given_name": "Ada", "family_name": "Byron",
        "time_zone": "Mars/Olympus", "language": "es", "preferred_channel": "sms",
        "fallback_channel": "email", "active": "",
        "send_window_start": "09:00", "send_window_end": "20:00",
        "care_team-TOTAL_FORMS": "0", "care_team-INITIAL_FORMS": "0",
    }  # fmt: skip
    refused = client_admin.post("/admin/patients/patient/add/", form)
    assert refused.status_code == 200
    assert "is not an IANA time zone" in refused.content.decode()
    client_admin.post("/admin/patients/patient/add/", {**form, "time_zone": "Europe/Paris"})
    patient = Patient.objects.get(mrn="RP-2001")
    assert (patient.time_zone, patient.language) == ("Europe/Paris", "es")
    assert patient.active is True  # deactivation is not an admin edit (patient_deactivate)
    # The patient's language is shown and changed on their page (through patient_update).
    change = f"/admin/patients/patient/{patient.pk}/change/"
    assert 'name="language"' in client_admin.get(change).content.decode()
    client_admin.post(change, {**form, "time_zone": "Europe/Paris", "language": "en"})
    patient.refresh_from_db()
    assert patient.language == "en"

    outsider = staff_create(clinic=clinic, username="locum", role=Role.PHYSICIAN, password=None)
    client_admin.post(
        "/admin/patients/careteammembership/add/",
        {"patient": patient.pk, "staff": outsider.pk, "is_primary": ""},
    )
    membership = CareTeamMembership.objects.get(patient=patient, staff=outsider)
    client_admin.post(
        "/admin/patients/careteammembership/",
        {"action": "end_selected", "_selected_action": [membership.pk]},
    )
    membership.refresh_from_db()
    assert membership.ended_at is not None


def test_completing_a_task_from_the_admin(client_admin: Client) -> None:
    from carehub.pathways.effects import effect_execute
    from carehub.pathways.models import OutboxEffect

    for pk in OutboxEffect.objects.filter(kind="create_task").values_list("pk", flat=True)[:3]:
        effect_execute(effect_id=pk)
    task = CareTask.objects.filter(status="open").first()  # not one whose state was left
    assert task is not None
    client_admin.post(
        "/admin/worklists/caretask/", {"action": "complete_selected", "_selected_action": [task.pk]}
    )
    task.refresh_from_db()
    assert task.status == "done"
    assert task.completed_by == User.objects.get(username="admin")


def test_the_demo_clinic_has_a_number_and_the_admin_changes_it(client_admin: Client) -> None:
    from carehub.clinics.models import Clinic
    from carehub.demo.services import DEMO_CLINIC_PHONE

    clinic = Clinic.objects.get(slug="riverside")
    assert clinic.phone == DEMO_CLINIC_PHONE
    change = f"/admin/clinics/clinic/{clinic.pk}/change/"
    assert 'name="phone"' in client_admin.get(change).content.decode()
    client_admin.post(
        change,
        {"name": clinic.name, "slug": clinic.slug, "time_zone": clinic.time_zone,
         "phone": "+16175550100"},
    )  # fmt: skip
    clinic.refresh_from_db()
    assert clinic.phone == "+16175550100"


def test_the_migration_dry_run_page_shows_each_patient_and_writes_nothing(
    client_admin: Client,
) -> None:
    from carehub.pathways.models import Enrolment, EnrolmentMigration

    listing = client_admin.get("/admin/pathways/enrolmentmigration/")
    assert "Dry run a migration" in listing.content.decode()
    page = client_admin.get(
        "/admin/pathways/enrolmentmigration/dry-run/", {"migration": "intractable-pain:1:2"}
    )
    assert page.status_code == 200
    html = page.content.decode()
    running = Enrolment.objects.filter(definition_version=1, status__in=["active", "paused"])
    assert f"{running.count()} running enrolment(s)" in html
    for enrolment in running.select_related("patient"):
        assert f"MRN {enrolment.patient.mrn}" in html
    assert "nothing was written" in html
    assert set(running.values_list("definition_version", flat=True)) == {1}
    assert EnrolmentMigration.objects.count() == 0
    refused = client_admin.get(
        "/admin/pathways/enrolmentmigration/dry-run/", {"migration": "nope:1:2"}
    )
    assert "Select a valid choice" in refused.content.decode()


def test_a_medication_without_its_dose_is_a_form_error_in_the_admin(client_admin: Client) -> None:
    from carehub.observations.models import Kind, Observation

    patient = Patient.objects.get(mrn="RP-1002")
    before = Observation.objects.filter(patient=patient).count()
    form = {
        "patient": patient.pk, "kind": Kind.MEDICATION, "code": "oxycodone", "value_number": "",
        "value_text": "", "value_bool": "unknown", "data": "{\"unit\": \"mg\"}",
        "observed_at_0": "2026-12-01", "observed_at_1": "09:00:00",
    }  # fmt: skip
    response = client_admin.post("/admin/observations/observation/add/", form)
    assert response.status_code == 200  # the form again, not a redirect
    assert "the daily dose" in response.content.decode()
    assert Observation.objects.filter(patient=patient).count() == before
    # With its dose the same form records it through the service.
    response = client_admin.post(
        "/admin/observations/observation/add/", {**form, "value_number": "20"}
    )
    assert response.status_code == 302, [
        line for line in response.content.decode().splitlines() if "errorlist" in line
    ]
    assert Observation.objects.filter(patient=patient).count() == before + 1
