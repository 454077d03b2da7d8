"""`Idempotency-Key` on every write of the API (carehub.api.idempotency, ADR 0013).

For every write operation of the OpenAPI schema (`WRITES`; a new write without a scenario here
fails `test_every_write_of_the_schema_has_a_scenario`): the same key with the same request
answers the first answer again without a second effect; the same key with another request is a
409 problem naming the first use and changes nothing; no key is a 400 and changes nothing.
Then the rules around them: canonical bodies, released keys, keys in progress, incomplete
writes resumed, expiry, scope and audit of replays.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.db import connections, transaction
from django.test import Client
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator

from carehub.accounts.models import Role, User
from carehub.accounts.services import staff_create
from carehub.audit.models import AuditEvent
from carehub.checkins.models import Checkin, CheckinLink, CheckinSeries
from carehub.clinics.models import Clinic, ClinicThreshold
from carehub.clinics.services import clinic_create
from carehub.core import clock
from carehub.core.idempotency import idempotency_begin, idempotency_fail
from carehub.core.models import IdempotencyRecord, IdempotencyStatus
from carehub.core.tasks import idempotency_keys_prune_task
from carehub.integrations.models import (
    ChangeEvent,
    ChangeType,
    DeliveryStatus,
    WebhookDelivery,
    WebhookSubscription,
)
from carehub.integrations.services import change_record
from carehub.messaging.models import DeliveryEvent, InAppNotification, Message
from carehub.observations.models import Observation
from carehub.pathways.models import (
    Enrolment,
    EnrolmentMigration,
    OutboxEffect,
    PathwayStep,
    PathwayTimer,
    ProcessedEvent,
    Proposal,
)
from carehub.pathways.services import (
    enrolment_pause,
    enrolment_start,
    pathway_dispatch,
    proposal_approve,
)
from carehub.patients.models import CareTeamMembership, Patient
from carehub.patients.services import care_team_end
from carehub.worklists.models import CareTask, Flag
from carehub.worklists.services import care_task_create, flag_raise
from tests.api.conftest import (
    EXAMPLE_KEY,
    PASSWORD,
    assert_problem,
    dead_message,
    make_eligible,
    register,
    to_conventional,
)
from tests.api.test_http_concurrency import call
from tests.api.test_scope_coverage import schema_operations

pytestmark = pytest.mark.django_db

WORLD = (
    Patient, CareTeamMembership, Enrolment, PathwayStep, PathwayTimer, Proposal, OutboxEffect,
    ProcessedEvent, Observation, CheckinSeries, Checkin, CheckinLink, CareTask, Flag, Message,
    DeliveryEvent, InAppNotification, ClinicThreshold, WebhookSubscription, ChangeEvent,
    WebhookDelivery, Clinic, EnrolmentMigration,
)  # fmt: skip
NOT_IDEMPOTENT = {("post", "/api/v1/auth/token"), ("delete", "/api/v1/auth/token")}
TRIALS = 5


def world() -> dict[str, list[dict[str, Any]]]:
    """Every row a write could have made or changed (the audit trail and the keys aside)."""
    return {model.__name__: list(model.objects.order_by("pk").values()) for model in WORLD}


def moment(days: float = 0) -> str:
    return (timezone.now() - timedelta(days=days)).isoformat()


@dataclass
class Write:
    role: str
    method: str
    url: str
    body: dict[str, Any] | None
    # Another request for the same key: another body, or (for an operation that reads no body)
    # another object of the same kind.
    other_url: str
    other_body: dict[str, Any] | None
    # The member of staff sending it, when not the `staff` fixture's of that role (then `role`
    # is their username).
    user: User | None = None


def another_patient(fx: Fixtures, mrn: str) -> Patient:
    return register(fx.get("clinic"), mrn)


class Fixtures:
    def __init__(self, request: pytest.FixtureRequest) -> None:
        self.request = request

    def get(self, name: str) -> Any:
        return self.request.getfixturevalue(name)


def _start(fx: Fixtures) -> Write:
    patient = another_patient(fx, "S-1")
    url = f"/api/v1/patients/{patient.pk}/enrolments"
    return Write(
        "coordinator", "post", url, {"definition_key": "intractable-pain"},
        url, {"definition_key": EXAMPLE_KEY},
    )  # fmt: skip


def _event(fx: Fixtures) -> Write:
    enrolment: Enrolment = fx.get("enrolment")
    make_eligible(enrolment.patient)
    url = f"/api/v1/enrolments/{enrolment.public_id}/events"
    return Write(
        "coordinator", "post", url, {"event": "intake_complete"}, url, {"event": "discharge"}
    )


def _pause(fx: Fixtures) -> Write:
    url = f"/api/v1/enrolments/{fx.get('enrolment').public_id}/pause"
    return Write(
        "coordinator", "post", url, {"reason": "Hospital stay"}, url, {"reason": "Holiday"}
    )


def _paused(fx: Fixtures, mrn: str) -> Enrolment:
    patient = another_patient(fx, mrn)
    enrolment = enrolment_start(patient=patient, definition_key=EXAMPLE_KEY)
    return enrolment_pause(enrolment_id=enrolment.pk, reason="Hospital stay")


def _resume(fx: Fixtures) -> Write:
    first, second = _paused(fx, "R-1"), _paused(fx, "R-2")
    return Write(
        "coordinator", "post", f"/api/v1/enrolments/{first.public_id}/resume", None,
        f"/api/v1/enrolments/{second.public_id}/resume", None,
    )  # fmt: skip


def _discharge(fx: Fixtures) -> Write:
    url = f"/api/v1/enrolments/{fx.get('enrolment').public_id}/discharge"
    return Write("physician", "post", url, {"reason": "Moved away"}, url, {"reason": "Recovered"})


def _on_v1(fx: Fixtures, mrn: str) -> Enrolment:
    return enrolment_start(
        patient=another_patient(fx, mrn), definition_key="intractable-pain", version=1
    )


def _migration_apply(fx: Fixtures) -> Write:
    enrolment = _on_v1(fx, "V-1")
    url = "/api/v1/pathways/intractable-pain/migrations/1/2/apply"
    return Write("physician", "post", url, {}, url, {"enrolments": [str(enrolment.public_id)]})


def _migration_rollback(fx: Fixtures) -> Write:
    from carehub.pathways.migration import migration_apply

    first, second = _on_v1(fx, "V-1"), _on_v1(fx, "V-2")
    migration_apply(
        definition_key="intractable-pain", from_version=1, to_version=2, user=None,
        enrolment_ids=[first.pk, second.pk],
    )  # fmt: skip
    return Write(
        "coordinator", "post", f"/api/v1/enrolments/{first.public_id}/migration/rollback", None,
        f"/api/v1/enrolments/{second.public_id}/migration/rollback", None,
    )  # fmt: skip


def _approve(fx: Fixtures) -> Write:
    url = f"/api/v1/proposals/{fx.get('proposal').pk}/approve"
    return Write("physician", "post", url, {"note": "Agreed"}, url, {"note": "Facet pain"})


def _reject(fx: Fixtures) -> Write:
    url = f"/api/v1/proposals/{fx.get('proposal').pk}/reject"
    return Write("physician", "post", url, {"reason": "Prefers to wait"}, url, {"reason": "No"})


def _task(fx: Fixtures) -> Write:
    task: CareTask = fx.get("task")
    other = care_task_create(
        enrolment=task.enrolment, discipline="physical_therapist", title="Other", due_at=None
    )
    return Write(
        "physical_therapist", "post", f"/api/v1/tasks/{task.pk}/complete", None,
        f"/api/v1/tasks/{other.pk}/complete", None,
    )  # fmt: skip


def _other_flag(flag: Flag) -> Flag:
    return flag_raise(
        enrolment=flag.enrolment, code="other", severity="info", message="Other",
        raised_at=timezone.now(),
    )  # fmt: skip


def _flag(action: str) -> Callable[[Fixtures], Write]:
    # Resolving needs its outcome; acknowledging a warning takes an optional note.
    body = {"outcome": "Seen"} if action == "resolve" else None

    def build(fx: Fixtures) -> Write:
        flag: Flag = fx.get("flag")
        other = _other_flag(flag)
        return Write(
            "coordinator", "post", f"/api/v1/flags/{flag.pk}/{action}", body,
            f"/api/v1/flags/{other.pk}/{action}", body,
        )  # fmt: skip

    return build


def _resend(fx: Fixtures) -> Write:
    message: Message = fx.get("message")
    other = dead_message(message.patient, "test-dead-2")
    return Write(
        "coordinator", "post", f"/api/v1/messages/{message.pk}/resend", None,
        f"/api/v1/messages/{other.pk}/resend", None,
    )  # fmt: skip


def _threshold(fx: Fixtures) -> Write:
    url = "/api/v1/thresholds/intractable-pain/mbb_relief_pct"
    return Write(
        "clinic_admin", "put", url, {"value": 50, "source": "ASRA 2020"},
        url, {"value": 60, "source": "ASRA 2020"},
    )  # fmt: skip


def _advance(fx: Fixtures) -> Write:
    """A sandbox clinic's admin moves its test clock (the advance waits in the queue)."""
    sandbox = clinic_create(name="Sandbox", slug="sandbox", sandbox=True)
    admin = staff_create(
        clinic=sandbox, username="sandbox-admin", role=Role.CLINIC_ADMIN, password=None
    )
    url = "/api/v1/clinic/test-clock/advance"
    return Write("sandbox-admin", "post", url, {"by": "P1D"}, url, {"by": "P2D"}, user=admin)


def _answers(fx: Fixtures) -> Write:
    url = f"/api/v1/checkins/{fx.get('checkin').pk}/answers"
    return Write(
        "coordinator", "post", url, {"answers": {"pain": 6, "enjoyment": 5, "activity": 7}},
        url, {"answers": {"pain": 2, "enjoyment": 2, "activity": 2}},
    )  # fmt: skip


def _procedure(fx: Fixtures) -> Write:
    url = f"/api/v1/patients/{fx.get('patient').pk}/procedures"
    body = {"procedure": "esi", "performed_at": moment(1)}
    return Write("physician", "post", url, body, url, {**body, "relief_pct": 60})


def _session(fx: Fixtures) -> Write:
    url = f"/api/v1/patients/{fx.get('patient').pk}/sessions"
    body = {"discipline": "pt", "attended": True, "observed_at": moment(), "notes": "Walked"}
    return Write("physical_therapist", "post", url, body, url, {**body, "attended": False})


def _score(fx: Fixtures) -> Write:
    url = f"/api/v1/patients/{fx.get('patient').pk}/scores"
    body = {"instrument": "odi", "score": 40, "observed_at": moment()}
    return Write("coordinator", "post", url, body, url, {**body, "score": 42})


def _result(fx: Fixtures) -> Write:
    url = f"/api/v1/observations/{fx.get('procedure').pk}/result"
    body = {"relief_pct": 80, "assessed_at": moment()}
    return Write("physician", "post", url, body, url, {**body, "relief_pct": 50})


def _webhook_create(fx: Fixtures) -> Write:
    body = {"url": "https://receiver.example/hooks", "event_types": ["flag.raised"]}
    return Write(
        "clinic_admin", "post", "/api/v1/webhooks", body,
        "/api/v1/webhooks", {**body, "event_types": ["task.opened"]},
    )  # fmt: skip


def _subscription(fx: Fixtures, url: str) -> WebhookSubscription:
    return WebhookSubscription.objects.create(
        clinic=fx.get("clinic"), url=url, event_types=["flag.raised"]
    )


def _webhook_update(fx: Fixtures) -> Write:
    url = f"/api/v1/webhooks/{_subscription(fx, 'https://a.example/h').pk}"
    return Write("clinic_admin", "patch", url, {"active": False}, url, {"active": True})


def _dead_delivery(fx: Fixtures, subscription: WebhookSubscription) -> WebhookDelivery:
    with transaction.atomic():
        event = change_record(
            clinic_id=subscription.clinic_id, type=ChangeType.FLAG_RAISED, subject_id=1
        )
    delivery = WebhookDelivery.objects.get(event=event, subscription=subscription)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.DEAD, attempts=8)
    return delivery


def _webhook_resend(fx: Fixtures) -> Write:
    subscription = _subscription(fx, "https://b.example/h")
    first, other = _dead_delivery(fx, subscription), _dead_delivery(fx, subscription)
    return Write(
        "clinic_admin", "post", f"/api/v1/webhook-deliveries/{first.pk}/resend", None,
        f"/api/v1/webhook-deliveries/{other.pk}/resend", None,
    )  # fmt: skip


def _register(fx: Fixtures) -> Write:
    body = {"mrn": "N-1", "given_name": "Nora", "family_name": "New", "time_zone": "UTC"}
    return Write(
        "coordinator", "post", "/api/v1/patients", body, "/api/v1/patients", {**body, "mrn": "N-2"}
    )


def _update(fx: Fixtures) -> Write:
    url = f"/api/v1/patients/{fx.get('patient').pk}"
    return Write(
        "coordinator", "patch", url, {"time_zone": "Europe/Paris"}, url, {"language": "es"}
    )


def _deactivate(fx: Fixtures) -> Write:
    first, second = another_patient(fx, "D-1"), another_patient(fx, "D-2")
    body = {"reason": "Care transferred"}
    return Write(
        "coordinator", "post", f"/api/v1/patients/{first.pk}/deactivate", body,
        f"/api/v1/patients/{second.pk}/deactivate", body,
    )  # fmt: skip


def _care_team(fx: Fixtures) -> Write:
    staff = fx.get("staff")
    url = f"/api/v1/patients/{fx.get('patient').pk}/care-team"
    return Write(
        "coordinator", "put", url,
        {"members": [{"staff_id": staff["physician"].pk, "is_primary": True}]},
        url, {"members": [{"staff_id": staff["coordinator"].pk}]},
    )  # fmt: skip


def _recording(
    path: str, body: dict[str, Any], other: dict[str, Any], role: str = "coordinator"
) -> Callable[[Fixtures], Write]:
    def build(fx: Fixtures) -> Write:
        url = f"/api/v1/patients/{fx.get('patient').pk}/{path}"
        return Write(role, "post", url, body, url, {**body, **other})

    return build


def _withdraw(fx: Fixtures) -> Write:
    url = f"/api/v1/observations/{fx.get('procedure').pk}/withdraw"
    return Write("physician", "post", url, {"reason": "Wrong patient"}, url, {"reason": "Never"})


def _task_create(fx: Fixtures) -> Write:
    url = f"/api/v1/patients/{fx.get('patient').pk}/tasks"
    body = {"discipline": "coordinator", "title": "Book the intake visit"}
    return Write("coordinator", "post", url, body, url, {**body, "title": "Call back"})


def _task_assign(fx: Fixtures) -> Write:
    task: CareTask = fx.get("task")
    therapist = fx.get("staff")["physical_therapist"]
    url = f"/api/v1/tasks/{task.pk}/assign"
    return Write("coordinator", "post", url, {"staff_id": therapist.pk}, url, {"staff_id": None})


def _task_cancel(fx: Fixtures) -> Write:
    url = f"/api/v1/tasks/{fx.get('task').pk}/cancel"
    return Write("coordinator", "post", url, {"reason": "Not needed"}, url, {"reason": "Done"})


def _checkin_open(fx: Fixtures) -> Write:
    from carehub.checkins.services import checkin_series_start

    enrolment: Enrolment = fx.get("enrolment")
    later = timezone.now() + timedelta(days=3)
    first, second = (
        checkin_series_start(
            enrolment=enrolment, series=name, instrument=name, every=timedelta(weeks=2), at=later
        ).checkins.get()
        for name in ("peg", "gad7")
    )
    return Write(
        "coordinator", "post", f"/api/v1/checkins/{first.pk}/open", None,
        f"/api/v1/checkins/{second.pk}/open", None,
    )  # fmt: skip


WRITES: dict[tuple[str, str], Callable[[Fixtures], Write]] = {
    ("post", "/api/v1/webhooks"): _webhook_create,
    ("patch", "/api/v1/webhooks/{id}"): _webhook_update,
    ("post", "/api/v1/webhook-deliveries/{id}/resend"): _webhook_resend,
    ("post", "/api/v1/patients/{id}/enrolments"): _start,
    ("post", "/api/v1/enrolments/{id}/events"): _event,
    ("post", "/api/v1/enrolments/{id}/pause"): _pause,
    ("post", "/api/v1/enrolments/{id}/resume"): _resume,
    ("post", "/api/v1/enrolments/{id}/discharge"): _discharge,
    ("post", "/api/v1/enrolments/{id}/migration/rollback"): _migration_rollback,
    ("post", "/api/v1/pathways/{id}/migrations/{id}/{id}/apply"): _migration_apply,
    ("post", "/api/v1/proposals/{id}/approve"): _approve,
    ("post", "/api/v1/proposals/{id}/reject"): _reject,
    ("post", "/api/v1/tasks/{id}/complete"): _task,
    ("post", "/api/v1/flags/{id}/acknowledge"): _flag("acknowledge"),
    ("post", "/api/v1/flags/{id}/resolve"): _flag("resolve"),
    ("post", "/api/v1/messages/{id}/resend"): _resend,
    ("put", "/api/v1/thresholds/{id}/{id}"): _threshold,
    ("post", "/api/v1/clinic/test-clock/advance"): _advance,
    ("post", "/api/v1/checkins/{id}/answers"): _answers,
    ("post", "/api/v1/patients/{id}/procedures"): _procedure,
    ("post", "/api/v1/patients/{id}/sessions"): _session,
    ("post", "/api/v1/patients/{id}/scores"): _score,
    ("post", "/api/v1/observations/{id}/result"): _result,
    ("post", "/api/v1/patients"): _register,
    ("patch", "/api/v1/patients/{id}"): _update,
    ("post", "/api/v1/patients/{id}/deactivate"): _deactivate,
    ("put", "/api/v1/patients/{id}/care-team"): _care_team,
    ("post", "/api/v1/patients/{id}/pain-onset"): _recording(
        "pain-onset", {"onset": "2024-01-01"}, {"onset": "2024-02-01"}
    ),
    ("post", "/api/v1/patients/{id}/conservative-care-start"): _recording(
        "conservative-care-start", {"started": "2025-01-01"}, {"started": "2025-02-01"}
    ),
    ("post", "/api/v1/patients/{id}/failed-treatments"): _recording(
        "failed-treatments",
        {"treatment_class": "nsaid", "reason": "adverse_effect", "observed_at": moment(1)},
        {"treatment_class": "snri"},
    ),
    ("post", "/api/v1/patients/{id}/psych-evaluations"): _recording(
        "psych-evaluations",
        {"outcome": "cleared", "observed_at": moment(1)},
        {"outcome": "not_cleared"},
        role="physician",
    ),
    ("post", "/api/v1/patients/{id}/statuses"): _recording(
        "statuses",
        {"code": "naloxone_offered", "value": True, "observed_at": moment(1)},
        {"value": False},
    ),
    ("post", "/api/v1/patients/{id}/medications"): _recording(
        "medications",
        {"drug": "oxycodone", "daily_dose": 20, "unit": "mg", "observed_at": moment(1)},
        {"daily_dose": 30},
        role="physician",
    ),
    ("post", "/api/v1/observations/{id}/withdraw"): _withdraw,
    ("post", "/api/v1/patients/{id}/tasks"): _task_create,
    ("post", "/api/v1/tasks/{id}/assign"): _task_assign,
    ("post", "/api/v1/tasks/{id}/cancel"): _task_cancel,
    ("post", "/api/v1/checkins/{id}/open"): _checkin_open,
}
OPERATIONS = sorted(WRITES)


def schema_writes() -> set[tuple[str, str]]:
    return {
        (method, path)
        for method, path in schema_operations()
        if method in ("post", "put", "patch", "delete")
    } - NOT_IDEMPOTENT


def send(client, method: str, url: str, body: dict[str, Any] | None, key: str | None):  # type: ignore[no-untyped-def]
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return getattr(client, method)(url, body or {}, format="json", **headers)


@pytest.fixture
def write(request: pytest.FixtureRequest, client_for) -> Callable[[tuple[str, str]], Any]:  # type: ignore[no-untyped-def]
    def build(operation: tuple[str, str]) -> tuple[Write, Any]:
        scenario = WRITES[operation](Fixtures(request))
        staff = request.getfixturevalue("staff")
        return scenario, client_for(scenario.user or staff[scenario.role])

    return build


# --- the list of writes is the schema's -----------------------------------------------------------


def test_every_write_of_the_schema_has_a_scenario() -> None:
    writes = schema_writes()
    assert set(WRITES) - writes == set(), "scenarios for writes the API no longer has"
    assert writes - set(WRITES) == set(), "writes without an idempotency scenario here"


def test_every_write_documents_the_key_and_its_answers() -> None:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method not in ("post", "put", "patch", "delete"):
                continue
            if path == "/api/v1/auth/token":
                assert not any(
                    p["name"] == "Idempotency-Key" for p in operation.get("parameters", [])
                )
                continue
            [header] = [p for p in operation["parameters"] if p["name"] == "Idempotency-Key"]
            assert (header["in"], header["required"]) == ("header", True), (method, path)
            responses = operation["responses"]
            assert {"200", "400", "409"} <= set(responses), (method, path)
            assert "application/problem+json" in responses["409"]["content"]
            assert "Idempotent-Replayed" in responses["200"]["headers"]


# --- every write ----------------------------------------------------------------------------------


@pytest.mark.parametrize("operation", OPERATIONS, ids="{0[0]} {0[1]}".format)
def test_the_same_key_and_request_replays_without_a_second_effect(write, operation) -> None:  # type: ignore[no-untyped-def]
    scenario, client = write(operation)
    before = world()
    first = send(client, scenario.method, scenario.url, scenario.body, "key-1")
    assert 200 <= first.status_code < 300, first.content
    after = world()
    assert after != before, "the first request changed nothing: the scenario proves nothing"
    assert "Idempotent-Replayed" not in first

    again = send(client, scenario.method, scenario.url, scenario.body, "key-1")
    assert again.status_code == 200, again.content
    assert again["Idempotent-Replayed"] == "true"
    expected = first.json()
    if "replayed" in expected:
        expected["replayed"] = True
    assert again.json() == expected
    assert world() == after
    replay = AuditEvent.objects.filter(actor__username=scenario.role).latest("id")
    assert replay.outcome == "ok"
    assert replay.detail == {"replayed": True, "status": first.status_code}


@pytest.mark.parametrize("operation", OPERATIONS, ids="{0[0]} {0[1]}".format)
def test_the_same_key_for_another_request_is_refused_and_changes_nothing(write, operation) -> None:  # type: ignore[no-untyped-def]
    scenario, client = write(operation)
    first = send(client, scenario.method, scenario.url, scenario.body, "key-1")
    assert 200 <= first.status_code < 300, first.content
    after = world()

    other = send(client, scenario.method, scenario.other_url, scenario.other_body, "key-1")
    body = assert_problem(other, 409, "idempotency_key_reused")
    assert body["first_use"]["target"] == scenario.url
    assert body["first_use"]["at"]
    assert world() == after
    # The other request is judged on its own with a key of its own.
    fresh = send(client, scenario.method, scenario.other_url, scenario.other_body, "key-2")
    assert fresh.json().get("code") != "idempotency_key_reused"


@pytest.mark.parametrize("operation", OPERATIONS, ids="{0[0]} {0[1]}".format)
def test_a_write_without_a_key_is_400_and_changes_nothing(write, operation) -> None:  # type: ignore[no-untyped-def]
    scenario, client = write(operation)
    before = world()
    for key in (None, "", " ", "x" * 101, "tab\there"):
        body = assert_problem(
            send(client, scenario.method, scenario.url, scenario.body, key), 400, "invalid_input"
        )
        assert list(body["errors"]) == ["Idempotency-Key"]
    assert world() == before
    assert not IdempotencyRecord.objects.exists()


# --- the fingerprint ------------------------------------------------------------------------------


def test_the_same_body_written_differently_is_the_same_request(
    client_for, staff: dict[str, User], patient: Patient
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["coordinator"])
    url = f"/api/v1/patients/{patient.pk}/scores"
    at = timezone.now().replace(microsecond=0)
    body = {"instrument": "odi", "score": 40, "observed_at": at.isoformat()}
    first = send(client, "post", url, body, "k")
    assert first.status_code == 201, first.content
    # Other key order, 40.0 for 40, Z for +00:00, the default `is_baseline` spelled out.
    same = {
        "observed_at": at.isoformat().replace("+00:00", "Z"),
        "is_baseline": None,
        "score": 40.0,
        "instrument": "odi",
    }
    again = send(client, "post", url, same, "k")
    assert (again.status_code, again["Idempotent-Replayed"]) == (200, "true")
    assert Observation.objects.filter(patient=patient, code="odi").count() == 1


def test_another_user_with_the_same_key_is_another_request(
    client_for, staff: dict[str, User], enrolment: Enrolment
) -> None:  # type: ignore[no-untyped-def]
    url = f"/api/v1/enrolments/{enrolment.public_id}/pause"
    paused = send(client_for(staff["coordinator"]), "post", url, {"reason": "Stay"}, "k")
    assert paused.status_code == 200
    # The physician's own key "k": not the coordinator's answer; the pathway is paused already.
    other = send(client_for(staff["physician"]), "post", url, {"reason": "Stay"}, "k")
    assert_problem(other, 409, "conflict")


# --- what happens to a key ------------------------------------------------------------------------


def test_a_refused_request_releases_its_key_for_the_corrected_one(
    client_for, staff: dict[str, User], enrolment: Enrolment
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["coordinator"])
    url = f"/api/v1/enrolments/{enrolment.public_id}/pause"
    assert_problem(send(client, "post", url, {"reason": ""}, "k"), 400, "invalid_input")
    assert not IdempotencyRecord.objects.exists()
    assert send(client, "post", url, {"reason": "Hospital stay"}, "k").status_code == 200
    record = IdempotencyRecord.objects.get()
    assert (record.status, record.response_status, record.operation, record.target) == (
        IdempotencyStatus.DONE, 200, "enrolment.pause", url,
    )  # fmt: skip


def test_a_key_whose_first_request_is_running_is_409_in_progress(
    client_for, staff: dict[str, User], enrolment: Enrolment
) -> None:  # type: ignore[no-untyped-def]
    user = staff["coordinator"]
    url = f"/api/v1/enrolments/{enrolment.public_id}/pause"
    # What a first request leaves while it runs: its claim, committed before the write.
    idempotency_begin(actor_id=user.pk, key="k", operation="enrolment.pause", target=url,
                      body={"reason": "Hospital stay"})  # fmt: skip
    before = world()
    body = assert_problem(
        send(client_for(user), "post", url, {"reason": "Hospital stay"}, "k"),
        409,
        "idempotency_key_in_progress",
    )
    assert body["first_use"]["operation"] == "enrolment.pause"
    assert world() == before
    # A claim whose request never answered (its process died) is taken over after a while.
    with time_machine.travel(timezone.now() + timedelta(minutes=6), tick=False):
        resumed = send(client_for(user), "post", url, {"reason": "Hospital stay"}, "k")
    assert resumed.status_code == 200, resumed.content
    enrolment.refresh_from_db()
    assert enrolment.status == "paused"


def test_a_failed_request_keeps_its_key_for_the_same_request_only(
    client_for, staff: dict[str, User], enrolment: Enrolment
) -> None:  # type: ignore[no-untyped-def]
    user = staff["coordinator"]
    url = f"/api/v1/enrolments/{enrolment.public_id}/pause"
    attempt = idempotency_begin(actor_id=user.pk, key="k", operation="enrolment.pause",
                                target=url, body={"reason": "Hospital stay"})  # fmt: skip
    idempotency_fail(attempt=attempt, status=500)  # what a server error leaves
    assert IdempotencyRecord.objects.get().status == IdempotencyStatus.INCOMPLETE
    client = client_for(user)
    assert_problem(send(client, "post", url, {"reason": "Holiday"}, "k"), 409,
                   "idempotency_key_reused")  # fmt: skip
    again = send(client, "post", url, {"reason": "Hospital stay"}, "k")
    assert again.status_code == 200, again.content
    assert "Idempotent-Replayed" not in again
    assert IdempotencyRecord.objects.get().status == IdempotencyStatus.DONE


@pytest.mark.django_db(transaction=True)
def test_a_recording_whose_event_failed_is_resumed_without_recording_twice(
    client_for, staff: dict[str, User], enrolment: Enrolment
) -> None:  # type: ignore[no-untyped-def]
    """The observation is committed, then the pathway cannot take the event (another change
    holds its row): 409, the key stays incomplete, and the same request sent again sends the
    event without recording the observation a second time."""
    to_conventional(enrolment, staff["coordinator"])
    pathway_dispatch(enrolment_id=enrolment.pk, event="esi_requested", idempotency_key="esi",
                     user=staff["physician"])  # fmt: skip
    proposal_approve(proposal=Proposal.objects.get(enrolment=enrolment), user=staff["physician"],
                     idempotency_key="approve")  # fmt: skip
    client = client_for(staff["physician"])
    url = f"/api/v1/patients/{enrolment.patient_id}/procedures"
    body = {"procedure": "esi", "performed_at": moment(1), "relief_pct": 60,
            "event": "block_result_recorded"}  # fmt: skip
    locked, release = threading.Event(), threading.Event()

    def hold_the_enrolment() -> None:
        try:
            with transaction.atomic():
                Enrolment.objects.select_for_update().get(pk=enrolment.pk)
                locked.set()
                release.wait(timeout=30)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_the_enrolment)
    holder.start()
    try:
        assert locked.wait(timeout=30)
        refused = send(client, "post", url, body, "k")
    finally:
        release.set()
        holder.join()
    problem = assert_problem(refused, 409, "conflict")
    assert "was recorded" in problem["detail"]
    assert Observation.objects.filter(patient=enrolment.patient, code="esi").count() == 1
    assert IdempotencyRecord.objects.get().status == IdempotencyStatus.INCOMPLETE

    again = send(client, "post", url, body, "k")
    assert again.status_code == 200, again.content
    assert again.json()["observation"]["id"] == problem["observation_id"]
    assert again.json()["events"][0]["outcome"] == "transitioned"
    assert Observation.objects.filter(patient=enrolment.patient, code="esi").count() == 1
    assert (
        PathwayStep.objects.filter(enrolment=enrolment, event="block_result_recorded").count() == 1
    )


# --- expiry ---------------------------------------------------------------------------------------


def test_keys_expire_after_the_setting_and_are_pruned_hourly(
    client_for, staff: dict[str, User], patient: Patient, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.IDEMPOTENCY_KEY_HOURS = 24
    client = client_for(staff["coordinator"])
    url = f"/api/v1/patients/{patient.pk}/scores"
    body = {"instrument": "odi", "score": 40, "observed_at": moment()}
    assert send(client, "post", url, body, "old").status_code == 201
    with time_machine.travel(clock.now() + timedelta(hours=23), tick=False):
        assert send(client, "post", url, body, "new").status_code == 201
        assert idempotency_keys_prune_task() == 0
        assert send(client, "post", url, {**body, "score": 41}, "old").status_code == 409
    with time_machine.travel(clock.now() + timedelta(hours=25), tick=False):
        # Expired: the key is a new request, even before the hourly prune forgets it.
        assert send(client, "post", url, {**body, "score": 41}, "old").status_code == 201
        assert IdempotencyRecord.objects.count() == 2
        assert idempotency_keys_prune_task() == 0  # "old" was replaced now, "new" is 2 h old
    with time_machine.travel(clock.now() + timedelta(hours=50), tick=False):
        assert idempotency_keys_prune_task() == 2
    assert not IdempotencyRecord.objects.exists()
    assert Observation.objects.filter(patient=patient, code="odi").count() == 3


# --- replays and scope ----------------------------------------------------------------------------


def test_a_replay_needs_the_object_in_scope(
    client_for, staff: dict[str, User], patient: Patient
) -> None:  # type: ignore[no-untyped-def]
    therapist = staff["physical_therapist"]
    client = client_for(therapist)
    url = f"/api/v1/patients/{patient.pk}/sessions"
    body = {"discipline": "pt", "attended": True, "observed_at": moment()}
    assert send(client, "post", url, body, "k").status_code == 201
    care_team_end(membership=patient.care_team.get(staff=therapist))
    assert_problem(send(client, "post", url, body, "k"), 404, "not_found")
    denied = AuditEvent.objects.filter(actor=therapist).latest("id")
    assert (denied.outcome, denied.patient_id) == ("denied", None)


# --- concurrent duplicates ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_identical_requests_at_once_act_once(
    live_server, staff: dict[str, User], patient: Patient
) -> None:  # type: ignore[no-untyped-def]
    """The same request sent twice at the same moment over real HTTP (a client retrying while
    its first attempt is still running): one records, the other waits for the claim and gets
    either 409 in progress or the first answer; never two observations."""
    status, body = call(
        f"{live_server.url}/api/v1/auth/token",
        None,
        {"username": "coordinator", "password": PASSWORD},
    )
    assert status == 201, body
    token = body["token"]
    url = f"{live_server.url}/api/v1/patients/{patient.pk}/scores"
    for trial in range(TRIALS):
        score = {"instrument": "odi", "score": 40 + trial, "observed_at": moment()}
        barrier = threading.Barrier(2)
        results: list[tuple[int, dict[str, Any]]] = []

        def send_once(
            key: str = f"same-{trial}",
            score: dict[str, Any] = score,
            barrier: threading.Barrier = barrier,
            results: list[tuple[int, dict[str, Any]]] = results,
        ) -> None:
            barrier.wait()
            results.append(call(url, token, score, key=key))

        threads = [threading.Thread(target=send_once) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        statuses = sorted(status for status, _ in results)
        assert statuses in ([200, 201], [201, 409]), (trial, results)
        if statuses == [201, 409]:
            assert max(results)[1]["code"] == "idempotency_key_in_progress"
        assert Observation.objects.filter(patient=patient, value_number=40 + trial).count() == 1


def test_the_admin_lists_keys_without_their_answers(
    client_for, staff: dict[str, User], patient: Patient
) -> None:  # type: ignore[no-untyped-def]
    url = f"/api/v1/patients/{patient.pk}/sessions"
    body = {"discipline": "pt", "attended": True, "observed_at": moment(), "notes": "Knee pain"}
    assert send(client_for(staff["physical_therapist"]), "post", url, body, "k").status_code == 201
    record = IdempotencyRecord.objects.get()
    assert record.response_body["observation"]["data"]["notes"] == "Knee pain"
    operator = User.objects.create_superuser("operator", password=None)
    admin = Client()
    admin.force_login(operator)
    listing = admin.get("/admin/core/idempotencyrecord/")
    assert listing.status_code == 200
    assert "observation.session" in listing.content.decode()
    page = admin.get(f"/admin/core/idempotencyrecord/{record.pk}/change/")
    assert page.status_code == 200
    assert record.fingerprint in page.content.decode()
    assert "Knee pain" not in page.content.decode()
