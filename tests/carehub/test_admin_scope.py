"""The Django admin shows a clinic's staff their own clinic's rows only, for every model it has
(the registry itself is walked, so an admin added without a scope fails here); superusers see
every clinic."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.db import models, transaction
from django.test import Client
from knox.models import AuthToken

from carehub.accounts.models import Role, User
from carehub.accounts.services import staff_create
from carehub.audit.models import AuditEvent
from carehub.clinics.models import Clinic
from carehub.clinics.selectors import threshold_specs
from carehub.clinics.services import threshold_set
from carehub.core.admin_scope import GLOBAL, SUPERUSERS, ClinicScopedAdmin
from carehub.core.models import IdempotencyRecord
from carehub.core.services import scheduler_heartbeat_record
from carehub.demo.services import demo_seed
from carehub.integrations.models import ChangeType, WebhookDelivery, WebhookSubscription
from carehub.integrations.services import change_record
from carehub.messaging.models import Message, ProviderReport
from carehub.messaging.services import staff_notification_preference_set
from carehub.pathways.models import Enrolment, EnrolmentMigration, PathwayStep
from carehub.patients.models import CareTeamMembership, Patient
from carehub.worklists.models import Flag, FlagStatus, Severity
from carehub.worklists.services import flag_raise
from tests.support.module_rows import rolled_back_after_the_module

pytestmark = pytest.mark.django_db

HISTORIES = {"RP-1001", "RP-1002", "RP-1003"}
AT = datetime(2026, 3, 1, 9, tzinfo=UTC)


@dataclass
class Clinics:
    first: Clinic
    second: Clinic
    clinic_admin: User  # clinic 2's, with every view permission
    superuser: User


def _clinic_rows(clinic: Clinic) -> None:
    """What the demo does not make: a threshold, a flag, a staff preference, an audit row."""
    (pathway_key, name), spec = next(iter(sorted(threshold_specs().items())))
    threshold_set(
        clinic=clinic, pathway_key=pathway_key, name=name, value=spec.default, source="test"
    )
    patient = Patient.objects.filter(clinic=clinic).order_by("pk").first()
    assert patient is not None
    flag_raise(
        enrolment=None, patient=patient, code="test", severity=Severity.WARNING, message="Test",
        raised_at=AT,
    )  # fmt: skip
    staff = User.objects.filter(clinic=clinic).order_by("pk").first()
    assert staff is not None
    staff_notification_preference_set(staff=staff, daily_digest=True)
    AuditEvent.objects.create(clinic=clinic, patient=patient, at=AT, action="patient.view")
    message = Message.objects.filter(clinic=clinic).order_by("pk").first()
    assert message is not None
    receiver = WebhookSubscription.objects.create(
        clinic=clinic, url=f"https://ehr-{clinic.pk}.example/hooks", event_types=["flag.raised"]
    )
    with transaction.atomic():  # the change and its delivery
        change_record(clinic_id=clinic.pk, type=ChangeType.FLAG_RAISED, subject_id=1)
    assert WebhookDelivery.objects.filter(subscription=receiver).exists()
    ProviderReport.objects.create(
        provider="twilio", provider_message_id=f"SM{clinic.pk}", status="delivered",
        provider_status="delivered", received_at=AT, message=message, applied_at=AT,
    )  # fmt: skip
    # A migration applied to one enrolment (its row as `migration_apply` writes it).
    enrolment = Enrolment.objects.filter(clinic=clinic).order_by("pk").first()
    assert enrolment is not None
    step = PathwayStep.objects.filter(enrolment=enrolment).order_by("pk").first()
    assert step is not None
    EnrolmentMigration.objects.create(
        enrolment=enrolment, definition_key=enrolment.definition_key, from_version=1,
        to_version=2, classification="automatic", version_after=enrolment.version, step=step,
        applied_at=AT,
    )  # fmt: skip


def _global_rows(user: User) -> None:
    """Rows of no clinic, each kind once."""
    scheduler_heartbeat_record()
    IdempotencyRecord.objects.create(
        actor=user, key="k-1", operation="enrolment.pause", target="/api/x", fingerprint="f",
        created_at=AT, started_at=AT,
    )  # fmt: skip
    Group.objects.create(name="Everyone")
    AuthToken.objects.create(user=user)
    access = {"user_agent": "test", "ip_address": "10.0.0.1", "username": "someone"}
    AccessAttempt.objects.create(
        **access, http_accept="*/*", path_info="/login/", get_data="", post_data="",
        failures_since_start=1,
    )  # fmt: skip
    AccessLog.objects.create(**access, http_accept="*/*", path_info="/login/")
    AccessFailureLog.objects.create(**access, http_accept="*/*", path_info="/login/")


@pytest.fixture(scope="module")
def clinics(django_db_setup: None, django_db_blocker: Any) -> Iterator[Clinics]:
    """Seeded once for the module's tests (`rolled_back_after_the_module`)."""
    with rolled_back_after_the_module(django_db_blocker):
        yield _seeded()


def _seeded() -> Clinics:
    # The demo clinic twice: the first renamed (clinic and staff names) before the second seed.
    first = demo_seed(only=HISTORIES, sandbox=False).clinic
    assert first is not None
    Clinic.objects.filter(pk=first.pk).update(slug="first-clinic", name="First Clinic")
    for user in User.objects.all():
        user.username = f"first-{user.username}"
        user.save(update_fields=["username"])
    second = demo_seed(only=HISTORIES, sandbox=False).clinic
    assert second is not None
    assert second.pk != first.pk
    for clinic in (first, second):
        _clinic_rows(clinic)
    clinic_admin = staff_create(
        clinic=second, username="second-admin", role=Role.CLINIC_ADMIN, password=None,
        is_staff=True,
    )  # fmt: skip
    clinic_admin.user_permissions.add(*Permission.objects.filter(codename__startswith="view_"))
    superuser = User.objects.get(username="admin")  # the second seed's admin is a superuser
    assert superuser.is_superuser
    _global_rows(superuser)
    return Clinics(first, second, clinic_admin, superuser)


def client_of(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def url(model: type[models.Model], page: str = "", pk: Any = None) -> str:
    opts = model._meta
    base = f"/admin/{opts.app_label}/{opts.model_name}/"
    return f"{base}{pk}/{page}/" if pk is not None else base


def listed(client: Client, model: type[models.Model]) -> set[Any]:
    response = client.get(url(model))
    assert response.status_code == 200, model._meta.label
    return set(response.context["cl"].queryset.values_list("pk", flat=True))


def scoped_admins() -> list[tuple[type[models.Model], ClinicScopedAdmin]]:
    return [
        (model, model_admin)
        for model, model_admin in admin.site._registry.items()
        if isinstance(model_admin, ClinicScopedAdmin)
    ]


def test_every_registered_admin_declares_its_scope() -> None:
    unscoped = [
        f"{model._meta.label} ({type(model_admin).__name__})"
        for model, model_admin in admin.site._registry.items()
        if not isinstance(model_admin, ClinicScopedAdmin)
    ]
    assert unscoped == [], "admins without a clinic scope"
    # Rows of no clinic are a short, reviewed list: a model added to it must be added here.
    by_scope: dict[str, set[str]] = {GLOBAL: set(), SUPERUSERS: set()}
    for model, model_admin in scoped_admins():
        by_scope.get(model_admin.clinic_path, set()).add(model._meta.label)
    assert by_scope[GLOBAL] == {"core.SchedulerHeartbeat"}
    # The third-party admins registered by default among them, made superuser-only.
    assert by_scope[SUPERUSERS] == {
        "core.IdempotencyRecord", "messaging.RecordedMessage", "auth.Group", "knox.AuthToken",
        "axes.AccessAttempt", "axes.AccessLog", "axes.AccessFailureLog",
    }  # fmt: skip


def test_a_clinic_admin_sees_only_their_clinics_rows_of_every_model(clinics: Clinics) -> None:
    staff, root = client_of(clinics.clinic_admin), client_of(clinics.superuser)
    index = staff.get("/admin/")
    shown = {m["object_name"] for app in index.context["app_list"] for m in app["models"]}
    for model, model_admin in admin.site._registry.items():
        label, path = model._meta.label, model_admin.clinic_path
        every = set(model._default_manager.values_list("pk", flat=True))
        assert every, f"{label}: the test made no rows"
        assert listed(root, model) == every, label  # superusers see every clinic
        if path == SUPERUSERS:
            assert model._meta.object_name not in shown, label
            assert staff.get(url(model)).status_code == 403, label
            assert staff.get(url(model, "change", min(every))).status_code == 403, label
            continue
        if path == GLOBAL:
            assert listed(staff, model) == every, label
            continue
        own = set(model._default_manager.filter(**{path: clinics.second.pk}).values_list("pk"))
        foreign = set(model._default_manager.filter(**{path: clinics.first.pk}).values_list("pk"))
        own, foreign = {pk for (pk,) in own}, {pk for (pk,) in foreign}
        assert own, f"{label}: the test needs rows in clinic 2"
        assert foreign, f"{label}: the test needs rows in clinic 1"
        assert listed(staff, model) == own, label
        assert staff.get(url(model, "change", min(own))).status_code == 200, label
        # Another clinic's object "does not exist": Django sends the user back to the index.
        missing = staff.get(url(model, "change", min(foreign)))
        assert (missing.status_code, missing["Location"]) == (302, "/admin/"), label
        assert root.get(url(model, "change", min(foreign))).status_code == 200, label


def test_foreign_key_choices_are_the_clinics_own(clinics: Clinics) -> None:
    clinic_admin = clinics.clinic_admin
    clinic_admin.user_permissions.add(
        *Permission.objects.filter(codename__in=["add_patient", "add_careteammembership"])
    )
    staff = client_of(clinic_admin)
    form = staff.get("/admin/patients/patient/add/").context["adminform"].form
    assert list(form.fields["clinic"].queryset) == [clinics.second]
    membership = staff.get("/admin/patients/careteammembership/add/").context["adminform"].form
    assert set(membership.fields["patient"].queryset) == set(
        Patient.objects.filter(clinic=clinics.second)
    )
    assert {u.clinic_id for u in membership.fields["staff"].queryset} == {clinics.second.pk}

    foreign_patient = Patient.objects.filter(clinic=clinics.first).order_by("pk").first()
    foreign_staff = User.objects.filter(clinic=clinics.first).order_by("pk").first()
    assert foreign_patient is not None
    assert foreign_staff is not None
    memberships = CareTeamMembership.objects.count()
    refused = staff.post(
        "/admin/patients/careteammembership/add/",
        {"patient": foreign_patient.pk, "staff": foreign_staff.pk, "is_primary": ""},
    )
    assert refused.status_code == 200
    assert set(refused.context["adminform"].form.errors) == {"patient", "staff"}
    assert memberships == CareTeamMembership.objects.count()  # nothing added

    root = client_of(clinics.superuser)
    form = root.get("/admin/patients/patient/add/").context["adminform"].form
    assert set(form.fields["clinic"].queryset) == {clinics.first, clinics.second}


def test_a_clinic_admin_cannot_grant_rights_beyond_the_clinic(clinics: Clinics) -> None:
    clinic_admin = clinics.clinic_admin
    clinic_admin.user_permissions.add(Permission.objects.get(codename="change_user"))
    staff = client_of(clinic_admin)
    page = staff.get(f"/admin/accounts/user/{clinic_admin.pk}/change/")
    assert page.status_code == 200
    fields = page.context["adminform"].form.fields
    assert not {"is_superuser", "groups", "user_permissions"} & set(fields)
    assert list(fields["clinic"].queryset) == [clinics.second]


def test_an_action_on_another_clinics_rows_changes_nothing(clinics: Clinics) -> None:
    clinic_admin = clinics.clinic_admin
    clinic_admin.user_permissions.add(Permission.objects.get(codename="change_flag"))
    foreign = Flag.objects.get(clinic=clinics.first, code="test")
    own = Flag.objects.get(clinic=clinics.second, code="test")
    client_of(clinic_admin).post(
        "/admin/worklists/flag/",
        {"action": "resolve_selected", "_selected_action": [foreign.pk, own.pk], "text": "Seen"},
    )
    foreign.refresh_from_db()
    own.refresh_from_db()
    assert (foreign.status, own.status) == (FlagStatus.OPEN, FlagStatus.RESOLVED)
    assert (own.resolved_by, own.resolved_outcome) == (clinic_admin, "Seen")


def test_the_admin_resolves_a_flag_only_with_its_outcome(clinics: Clinics) -> None:
    clinic_admin = clinics.clinic_admin
    clinic_admin.user_permissions.add(Permission.objects.get(codename="change_flag"))
    own = Flag.objects.get(clinic=clinics.second, code="test")
    response = client_of(clinic_admin).post(
        "/admin/worklists/flag/",
        {"action": "resolve_selected", "_selected_action": [own.pk], "text": " "},
        follow=True,
    )
    assert "Say how the flag was resolved" in response.content.decode()
    own.refresh_from_db()
    assert (own.status, own.resolved_at) == (FlagStatus.OPEN, None)
