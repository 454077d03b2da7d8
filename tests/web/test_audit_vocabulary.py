"""One audit vocabulary for every door: the API and the pages name the same act the same way,
a refused act is recorded under the act attempted, and nothing else can be recorded."""

from __future__ import annotations

import uuid

import pytest
from django.test import RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver

from carehub.accounts.models import User
from carehub.audit.models import Action, AuditEvent
from carehub.audit.services import audit_record
from carehub.core import clock
from carehub.pathways.models import Proposal
from carehub.patients.models import Patient
from carehub.worklists.services import flag_raise

pytestmark = pytest.mark.django_db


def _api_views() -> list[type]:
    views: list[type] = []

    def walk(patterns: list[URLPattern | URLResolver]) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns)
            else:
                cls = getattr(pattern.callback, "view_class", None)
                if cls is not None and cls.__module__.startswith("carehub.api"):
                    views.append(cls)

    walk(get_resolver().url_patterns)
    return views


def test_every_api_operation_is_audited_under_a_name_of_the_vocabulary() -> None:
    views = _api_views()
    assert views
    for view in views:
        names = [getattr(view, "audit_action", None)]
        names += [action for _, action in getattr(view, "method_operations", {}).values()]
        for name in filter(None, names):
            assert name in Action.values, (view.__name__, name)


def test_audit_record_refuses_a_name_outside_the_vocabulary(staff: dict[str, User]) -> None:
    request = RequestFactory().get("/")
    request.user = staff["coordinator"]
    with pytest.raises(ValueError, match="not an audited action"):
        audit_record(request=request, action="flag.poke")
    assert not AuditEvent.objects.exists()


def test_a_refused_resolve_is_audited_as_a_resolve(
    patient: Patient, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    flag = flag_raise(
        enrolment=patient.enrolments.get(), code="test_flag", severity="urgent",
        message="Urgent", raised_at=clock.now(),
    )  # fmt: skip
    client = client_for(staff["clinic_admin"])  # flags are clinical work: refused
    for act, action in (("resolve", "flag.resolve"), ("acknowledge", "flag.acknowledge")):
        response = client.post(f"/flags/{flag.pk}/{act}", {"form_key": uuid.uuid4().hex})
        assert response.status_code == 403
        row = AuditEvent.objects.filter(actor=staff["clinic_admin"]).latest("id")
        assert (row.action, row.outcome) == (action, "denied")


def test_a_refused_reject_is_audited_as_a_reject(
    proposed: Proposal, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    url = f"/patients/{proposed.enrolment.patient_id}/proposals/{proposed.pk}/decide"
    prefix = f"p{proposed.pk}"
    client = client_for(staff["clinic_admin"])
    for decision, action in (("reject", "proposal.reject"), ("approve", "proposal.approve")):
        response = client.post(url, {f"{prefix}-decision": decision, f"{prefix}-reason": "no"})
        assert response.status_code == 403
        row = AuditEvent.objects.filter(actor=staff["clinic_admin"]).latest("id")
        assert (row.action, row.outcome) == (action, "denied")


def test_a_discharge_from_the_page_is_audited_as_a_discharge(
    patient: Patient, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    enrolment = patient.enrolments.get()
    prefix = f"d{enrolment.pk}"
    response = client_for(staff["coordinator"]).post(
        f"/patients/{patient.pk}/enrolments/{enrolment.public_id}/discharge",
        {
            f"{prefix}-form_key": uuid.uuid4().hex,
            f"{prefix}-expected_version": enrolment.version,
            f"{prefix}-confirm": "on",
            f"{prefix}-reason": "Moved away",
        },
    )
    assert response.status_code == 302
    row = AuditEvent.objects.filter(actor=staff["coordinator"]).latest("id")
    assert (row.action, row.outcome) == ("enrolment.discharge", "ok")
