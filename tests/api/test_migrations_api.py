"""The migration doors of the REST API: the dry-run report, apply and rollback, scoped to the
caller's clinic, by the roles the matrix names, audited, problems for bad input."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from rest_framework.test import APIClient

from carehub.accounts.models import User
from carehub.audit.models import Action, AuditEvent
from carehub.clinics.models import Clinic
from carehub.pathways import registry as registry_module
from carehub.pathways.models import Enrolment
from carehub.pathways.services import enrolment_start, pathway_dispatch
from tests.api.conftest import assert_problem, new_key, register
from tests.carehub.pathways.test_migration import V1_WITH_TASK, V2

pytestmark = pytest.mark.django_db

BASE = "/api/v1/pathways/mig/migrations/1/2"


@pytest.fixture(autouse=True)
def published(published_examples: None, tmp_path: Path, settings) -> Iterator[None]:  # type: ignore[no-untyped-def]
    (tmp_path / "mig.v1.yaml").write_text(V1_WITH_TASK)
    (tmp_path / "mig.v2.yaml").write_text(V2)
    settings.PATHWAY_DIRS = [*django_settings.PATHWAY_DIRS, tmp_path]
    registry_module.registry.cache_clear()
    yield
    registry_module.registry.cache_clear()


@pytest.fixture
def on_v1(clinic: Clinic, other_clinic: Clinic, staff: dict[str, User]) -> list[Enrolment]:
    """Two of the clinic's patients on version 1 (one in conventional care), one elsewhere."""
    mine = []
    for mrn in ("M-1", "M-2"):
        patient = register(clinic, mrn)
        mine.append(enrolment_start(patient=patient, definition_key="mig", version=1))
    pathway_dispatch(enrolment_id=mine[1].pk, event="intake_done", idempotency_key="i")
    enrolment_start(patient=register(other_clinic, "X-1"), definition_key="mig", version=1)
    return mine


def test_the_dry_run_reports_the_clinics_enrolments_only(
    on_v1: list[Enrolment], staff: dict[str, User], client_for: Callable[[User], APIClient]
) -> None:
    response = client_for(staff["physician"]).get(BASE)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["counts"] == {"automatic": 1, "changes": 1, "needs_approval": 0, "blocked": 0}
    assert {row["enrolment"] for row in body["enrolments"]} == {str(e.public_id) for e in on_v1}
    changed = next(row for row in body["enrolments"] if row["classification"] == "changes")
    assert any("Timer 'review_due'" in line for line in changed["changes"])
    audited = AuditEvent.objects.filter(action=Action.PATHWAY_MIGRATION_DRY_RUN)
    assert {a.patient_id for a in audited} == {e.patient_id for e in on_v1}
    assert all(e.definition_version == 1 for e in Enrolment.objects.all())


def test_roles_and_bad_input(
    on_v1: list[Enrolment], staff: dict[str, User], client_for: Callable[[User], APIClient]
) -> None:
    assert_problem(client_for(staff["physical_therapist"]).get(BASE), 403, "not_permitted")
    assert_problem(
        client_for(staff["physician"]).get("/api/v1/pathways/nope/migrations/1/2"),
        400, "invalid_input",
    )  # fmt: skip
    assert_problem(
        client_for(staff["physician"]).get("/api/v1/pathways/mig/migrations/2/1"),
        400, "invalid_input",
    )  # fmt: skip
    client = client_for(staff["coordinator"])
    assert_problem(client.post(f"{BASE}/apply", {}, format="json"), 400, "invalid_input")
    foreign = Enrolment.objects.get(patient__mrn="X-1")  # another clinic's: refused
    response = client.post(
        f"{BASE}/apply", {"enrolments": [str(foreign.public_id)]}, format="json", **new_key()
    )
    assert_problem(response, 400, "invalid_input")
    response = client.post(f"{BASE}/apply", {"approve": True}, format="json", **new_key())
    assert_problem(response, 403, "not_permitted")
    assert all(e.definition_version == 1 for e in Enrolment.objects.all())


def test_apply_then_roll_back_one(
    on_v1: list[Enrolment], staff: dict[str, User], client_for: Callable[[User], APIClient]
) -> None:
    client = client_for(staff["coordinator"])
    key = new_key()
    response = client.post(f"{BASE}/apply", {}, format="json", **key)
    assert response.status_code == 200, response.content
    assert response.json()["migrated"] == 2
    again = client.post(f"{BASE}/apply", {}, format="json", **key)  # the same key: replayed
    assert again.json() == response.json()
    fresh = client.post(f"{BASE}/apply", {}, format="json", **new_key())
    assert fresh.json()["migrated"] == 0
    versions = dict(Enrolment.objects.values_list("patient__mrn", "definition_version"))
    assert versions == {"M-1": 2, "M-2": 2, "X-1": 1}

    url = f"/api/v1/enrolments/{on_v1[1].public_id}/migration/rollback"
    response = client.post(url, **new_key())
    assert response.status_code == 200, response.content
    assert response.json()["definition_version"] == 1
    assert_problem(client.post(url, **new_key()), 409, "conflict")
    assert AuditEvent.objects.filter(
        action=Action.ENROLMENT_MIGRATE_ROLLBACK, patient=on_v1[1].patient
    ).exists()
