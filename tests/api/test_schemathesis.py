"""The API against its own OpenAPI document (Schemathesis): every operation, called with
generated input by a coordinator, a clinic admin and a patient over a seeded clinic, never
answers a server error and always answers what the document says (status code, content type,
body schema).

Path parameters are the seeded objects' (a patient, an enrolment, an open check-in, a recorded
procedure, a dead message, a pending proposal, ...), so generated bodies and queries reach the
code behind the lookups; made-up ids (404) are the scoping tests' business. The requests go
through the WSGI application, in the test's transaction, with a bounded, derandomized number
of examples per operation and role.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from carehub.accounts.models import User
from carehub.api.services import api_token_issue
from carehub.checkins.models import Checkin
from carehub.integrations.models import (
    ChangeType,
    DeliveryStatus,
    WebhookDelivery,
    WebhookSubscription,
)
from carehub.integrations.services import change_record
from carehub.messaging.models import Message
from carehub.observations.models import Observation
from carehub.pathways.models import Proposal
from carehub.patients.models import Patient
from carehub.patients.services import patient_account_create
from carehub.worklists.models import CareTask, Flag
from config.wsgi import application
from tests.api.conftest import PASSWORD

pytestmark = pytest.mark.django_db

MAX_EXAMPLES = 12
ROLES = ("coordinator", "clinic_admin", "patient")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def wsgi_requests_in_the_test_transaction() -> Iterator[None]:
    """As Django's test client does: a request must not close the test's connection."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def seeded(  # type: ignore[no-untyped-def]
    staff: dict[str, User],
    patient: Patient,
    proposal: Proposal,
    task: CareTask,
    flag: Flag,
    checkin: Checkin,
    procedure: Observation,
    message: Message,
) -> dict[str, Any]:
    """Path parameters naming real objects of the seeded clinic, and a token per role."""
    account = patient_account_create(patient=patient, username="alice", password=PASSWORD)
    users = {**staff, "patient": account}
    receiver = WebhookSubscription.objects.create(
        clinic=patient.clinic, url="https://ehr.example/hooks", event_types=["flag.raised"]
    )
    event = change_record(clinic_id=patient.clinic_id, type=ChangeType.FLAG_RAISED, subject_id=1)
    delivery = WebhookDelivery.objects.get(event=event, subscription=receiver)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.DEAD)
    return {
        "tokens": {role: api_token_issue(user=users[role])[0] for role in ROLES},
        "path": {
            "patient_id": patient.pk,
            "public_id": str(proposal.enrolment.public_id),
            "proposal_id": proposal.pk,
            "task_id": task.pk,
            "flag_id": flag.pk,
            "checkin_id": checkin.pk,
            "observation_id": procedure.pk,
            "message_id": message.pk,
            "key": "intractable-pain",
            "version": 1,
            "from_version": 1,
            "to_version": 2,
            "pathway_key": "intractable-pain",
            "name": "mbb_relief_pct",
            "webhook_id": receiver.pk,
            "delivery_id": delivery.pk,
        },
    }


def _instrument_path(operation: Any, path: dict[str, Any]) -> dict[str, Any]:
    if operation.path.startswith("/api/v1/instruments/"):
        return {**path, "key": "peg"}
    return path


# Changes that end what later operations act on run last, in this order.
LAST = (
    "POST /api/v1/enrolments/{public_id}/pause",
    "POST /api/v1/enrolments/{public_id}/resume",
    "POST /api/v1/enrolments/{public_id}/discharge",
)


def run_order(operation: Any) -> tuple[int, int, str]:
    label = operation.label
    return (label in LAST, LAST.index(label) if label in LAST else 0, label)


def exercise(
    operation: Any, path_parameters: dict[str, Any], headers: dict[str, str], seen: set[int]
) -> None:
    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(path_parameters=path_parameters))
    def run(case: schemathesis.Case) -> None:
        response = case.call(headers=headers)
        seen.add(response.status_code)
        case.validate_response(response, checks=CHECKS, headers=headers)

    run()


def test_every_operation_answers_as_documented_and_never_a_server_error(
    seeded: dict[str, Any], wsgi_requests_in_the_test_transaction: None
) -> None:
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
    failures: list[str] = []
    statuses: dict[str, set[int]] = {}
    operations = 0
    for operation in sorted((r.ok() for r in schema.get_all_operations()), key=run_order):
        operations += 1
        names = {parameter.name for parameter in operation.path_parameters}
        path = _instrument_path(operation, seeded["path"])
        fixed = {name: value for name, value in path.items() if name in names}
        for role in ROLES:
            headers = {"Authorization": f"Token {seeded['tokens'][role]}"}
            if operation.path == "/api/v1/auth/token" and operation.method.upper() == "DELETE":
                continue  # revoking would end this role's run; covered by test_auth_token.py

            try:
                exercise(operation, fixed, headers, statuses.setdefault(operation.label, set()))
            except BaseException as exc:  # every failing operation is reported, not the first
                if isinstance(exc, KeyboardInterrupt):
                    raise
                failures.append(f"{role} {operation.label}: {exc}")
    documented = sum(
        method in ("get", "post", "put", "patch", "delete")
        for item in schema.raw_schema["paths"].values()
        for method in item
    )
    assert operations == documented
    # Not a vacuous run: the requests reached the operations' success paths, not only refusals.
    succeeded = {label for label, seen in statuses.items() if any(200 <= s < 300 for s in seen)}
    reads = {label for label in statuses if label.startswith("GET ")}
    assert reads <= succeeded, sorted(reads - succeeded)
    assert len(succeeded - reads) >= 10, sorted(succeeded - reads)
    assert failures == [], "\n\n".join(failures)
