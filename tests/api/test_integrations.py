"""The change feed (`GET /api/v1/events`) and webhook receivers (`/api/v1/webhooks`): every
change a door makes is in the feed, in an order no late commit can break, with ids and codes
only; the clinic's own rows only; the roles the matrix names."""

from __future__ import annotations

import threading

import psycopg
import pytest
from django.db import connection, connections, transaction

from carehub.accounts.models import Role, User
from carehub.accounts.services import staff_create
from carehub.integrations.models import (
    ChangeEvent,
    ChangeType,
    DeliveryStatus,
    WebhookDelivery,
    WebhookSubscription,
)
from carehub.integrations.services import change_record
from carehub.pathways.services import pathway_dispatch, proposal_approve
from carehub.worklists.models import FlagStatus
from carehub.worklists.services import flag_raise, flag_set_status
from tests.api.conftest import assert_problem, new_key, register, to_conventional

pytestmark = pytest.mark.django_db(transaction=True)


def feed(client, **params) -> dict:  # type: ignore[no-untyped-def,type-arg]
    response = client.get("/api/v1/events", params)
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def clinic_admin(staff: dict[str, User]) -> User:
    return staff["clinic_admin"]


def test_a_pathway_s_changes_are_in_the_feed_in_order_with_codes_only(
    client_for, staff, enrolment
) -> None:  # type: ignore[no-untyped-def]
    coordinator = staff["coordinator"]
    client = client_for(coordinator)
    start = feed(client)
    to_conventional(enrolment, coordinator)
    esi = pathway_dispatch(
        enrolment_id=enrolment.pk,
        event="esi_requested",
        idempotency_key="esi",
        user=staff["physician"],
    )
    assert esi.outcome == "proposed"
    [proposal] = enrolment.proposals.all()
    proposal_approve(proposal=proposal, user=staff["physician"], idempotency_key="approve")
    page = feed(client, after=start["next_after"]) if start["next_after"] else feed(client)
    types = [event["type"] for event in page["results"]]
    assert types[0] == "enrolment.transitioned"
    assert "proposal.opened" in types
    assert types.index("proposal.opened") < types.index("proposal.decided")
    transitioned = [e for e in page["results"] if e["type"] == "enrolment.transitioned"]
    first = transitioned[0]["data"]
    assert first["enrolment_id"] == str(enrolment.public_id)
    assert first["patient_id"] == enrolment.patient_id
    assert (first["track"], first["event"]) == ("ladder", "intake_complete")
    decided = next(e for e in page["results"] if e["type"] == "proposal.decided")["data"]
    assert decided["status"] == "approved"
    # Polling again from the last position: nothing new, the same position back.
    again = feed(client, after=page["next_after"])
    assert (again["results"], again["next_after"]) == ([], page["next_after"])
    # One more change: only it.
    flag = flag_raise(
        enrolment=enrolment, code="urgent-test", severity="urgent",
        message="Said something worrying", raised_at=proposal.proposed_at,
    )  # fmt: skip
    newer = feed(client, after=page["next_after"])
    assert [e["type"] for e in newer["results"]] == ["flag.raised"]
    assert newer["results"][0]["data"]["subject_id"] == flag.pk
    assert "worrying" not in str(newer)


def test_an_event_committed_late_is_never_skipped(client_for, staff, clinic) -> None:  # type: ignore[no-untyped-def]
    """A transaction that wrote an event first but commits last: the feed waits for it."""
    patient = register(clinic, "L-1")
    client = client_for(staff["coordinator"])
    written, release, done = threading.Event(), threading.Event(), threading.Event()

    def slow_writer() -> None:
        try:
            with transaction.atomic():
                change_record(
                    clinic_id=clinic.pk, patient_id=patient.pk, type=ChangeType.TASK_OPENED,
                    subject_id=1,
                )  # fmt: skip
                written.set()
                release.wait(30)
        finally:
            connections.close_all()
            done.set()

    thread = threading.Thread(target=slow_writer)
    thread.start()
    assert written.wait(30)
    with transaction.atomic():
        fast = change_record(clinic_id=clinic.pk, type=ChangeType.TASK_CLOSED, subject_id=2)
    assert feed(client)["results"] == []  # the later event waits behind the running one
    release.set()
    assert done.wait(30)
    thread.join()
    page = feed(client)
    assert [e["type"] for e in page["results"]] == ["task.opened", "task.closed"]
    assert page["results"][1]["id"] == str(fast.public_id)


def test_a_transaction_in_another_database_does_not_hold_the_feed_back(
    client_for, staff, clinic
) -> None:  # type: ignore[no-untyped-def]
    params = connection.get_connection_params()
    other = psycopg.connect(
        host=params.get("host"), port=params.get("port"), user=params.get("user"),
        dbname="postgres", autocommit=False,
    )  # fmt: skip
    try:
        other.execute("SELECT pg_current_xact_id()")  # a writing transaction, left open
        with transaction.atomic():
            change_record(clinic_id=clinic.pk, type=ChangeType.TASK_OPENED, subject_id=1)
        results = feed(client_for(staff["coordinator"]))["results"]
        assert [e["type"] for e in results] == ["task.opened"]
    finally:
        other.rollback()
        other.close()


def test_the_feed_pages_filters_and_refuses_bad_cursors(
    client_for, staff, clinic, other_clinic
) -> None:  # type: ignore[no-untyped-def]
    for n in range(5):
        with transaction.atomic():
            change_record(
                clinic_id=clinic.pk,
                type=ChangeType.FLAG_RAISED if n % 2 else ChangeType.TASK_OPENED,
                subject_id=n,
            )
    with transaction.atomic():
        change_record(clinic_id=other_clinic.pk, type=ChangeType.TASK_OPENED, subject_id=99)
    client = client_for(staff["coordinator"])
    first = feed(client, limit=2)
    second = feed(client, limit=2, after=first["next_after"])
    third = feed(client, limit=2, after=second["next_after"])
    subjects = [e["data"]["subject_id"] for p in (first, second, third) for e in p["results"]]
    assert subjects == [0, 1, 2, 3, 4]  # the other clinic's event never appears
    only_flags = feed(client, type="flag.raised")["results"]
    assert [e["data"]["subject_id"] for e in only_flags] == [1, 3]
    outsider = staff_create(
        clinic=other_clinic, username="o-admin", role=Role.COORDINATOR, password=None
    )
    foreign = client_for(outsider).get("/api/v1/events", {"after": first["next_after"]})
    assert_problem(foreign, 400, "invalid_input")  # another clinic's cursor
    assert_problem(client.get("/api/v1/events", {"after": "forged"}), 400, "invalid_input")
    assert_problem(client.get("/api/v1/events", {"limit": "0"}), 400, "invalid_input")
    assert_problem(client.get("/api/v1/events", {"type": "nope"}), 400, "invalid_input")


@pytest.mark.parametrize("role", ["physician", "physical_therapist", "psychologist"])
def test_the_feed_is_for_the_coordinator_and_the_clinic_admin(client_for, staff, role) -> None:  # type: ignore[no-untyped-def]
    assert_problem(client_for(staff[role]).get("/api/v1/events"), 403, "not_permitted")
    assert client_for(staff["clinic_admin"]).get("/api/v1/events").status_code == 200


def test_the_clinic_admin_registers_changes_and_lists_a_receiver(
    client_for, clinic_admin, settings
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(clinic_admin)
    body = {"url": "https://ehr.example/hooks", "event_types": ["flag.raised", "task.opened"]}
    created = client.post("/api/v1/webhooks", body, format="json", **new_key())
    assert created.status_code == 201, created.content
    receiver = created.json()
    assert receiver["secret"].startswith("whsec_")
    detail = client.get(f"/api/v1/webhooks/{receiver['id']}").json()
    assert "secret" not in detail
    assert detail["event_types"] == ["flag.raised", "task.opened"]
    rotated = client.patch(
        f"/api/v1/webhooks/{receiver['id']}", {"rotate_secret": True, "active": False},
        format="json", **new_key(),
    )  # fmt: skip
    assert rotated.status_code == 200
    assert rotated.json()["secret"] != receiver["secret"]
    assert rotated.json()["active"] is False
    listed = client.get("/api/v1/webhooks").json()["results"]
    assert [row["id"] for row in listed] == [receiver["id"]]
    settings.WEBHOOK_ALLOW_HTTP = False
    plain = client.post(
        "/api/v1/webhooks", {**body, "url": "http://ehr.example/hooks"}, format="json", **new_key()
    )
    assert_problem(plain, 400, "invalid_input")
    unknown = client.post(
        "/api/v1/webhooks", {**body, "event_types": ["everything"]}, format="json", **new_key()
    )
    assert unknown.status_code == 400
    assert WebhookSubscription.objects.count() == 1


def test_webhooks_are_the_clinic_admin_s_and_another_clinic_s_are_not_found(
    client_for, staff, clinic, other_clinic
) -> None:  # type: ignore[no-untyped-def]
    assert_problem(client_for(staff["coordinator"]).get("/api/v1/webhooks"), 403, "not_permitted")
    foreign = WebhookSubscription.objects.create(
        clinic=other_clinic, url="https://other.example/h", event_types=["flag.raised"]
    )
    with transaction.atomic():
        event = change_record(clinic_id=other_clinic.pk, type=ChangeType.FLAG_RAISED, subject_id=1)
    delivery = WebhookDelivery.objects.get(event=event)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.DEAD)
    client = client_for(staff["clinic_admin"])
    assert client.get("/api/v1/webhooks").json()["results"] == []
    assert_problem(client.get(f"/api/v1/webhooks/{foreign.pk}"), 404, "not_found")
    assert_problem(
        client.patch(f"/api/v1/webhooks/{foreign.pk}", {"active": False}, format="json",
                     **new_key()),
        404, "not_found",
    )  # fmt: skip
    assert_problem(client.get(f"/api/v1/webhooks/{foreign.pk}/deliveries"), 404, "not_found")
    assert_problem(
        client.post(f"/api/v1/webhook-deliveries/{delivery.pk}/resend", **new_key()),
        404, "not_found",
    )  # fmt: skip
    foreign.refresh_from_db()
    assert foreign.active
    assert WebhookDelivery.objects.get(pk=delivery.pk).status == DeliveryStatus.DEAD


def test_deliveries_are_listed_and_a_dead_one_resent(client_for, clinic_admin, clinic) -> None:  # type: ignore[no-untyped-def]
    subscription = WebhookSubscription.objects.create(
        clinic=clinic, url="https://ehr.example/h", event_types=["flag.resolved"]
    )
    with transaction.atomic():
        event = change_record(clinic_id=clinic.pk, type=ChangeType.FLAG_RESOLVED, subject_id=4)
    delivery = WebhookDelivery.objects.get(event=event)
    client = client_for(clinic_admin)
    resend = client.post(f"/api/v1/webhook-deliveries/{delivery.pk}/resend", **new_key())
    assert_problem(resend, 409, "conflict")  # pending, not dead
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.DEAD, attempts=8)
    resent = client.post(f"/api/v1/webhook-deliveries/{delivery.pk}/resend", **new_key())
    assert resent.status_code == 200
    assert (resent.json()["status"], resent.json()["attempts"]) == ("pending", 0)
    rows = client.get(f"/api/v1/webhooks/{subscription.pk}/deliveries").json()["results"]
    assert [(row["id"], row["event"]["id"]) for row in rows] == [
        (delivery.pk, str(event.public_id))
    ]


def test_flags_acknowledged_and_resolved_through_the_api_are_in_the_feed(
    client_for, staff, enrolment
) -> None:  # type: ignore[no-untyped-def]
    flag = flag_raise(
        enrolment=enrolment, code="phq9-item9", severity="urgent", message="Item 9 answered",
        raised_at=enrolment.started_at,
    )  # fmt: skip
    client = client_for(staff["coordinator"])
    acknowledged = client.post(
        f"/api/v1/flags/{flag.pk}/acknowledge", {"note": "Called her"}, format="json",
        **new_key(),
    )  # fmt: skip
    assert acknowledged.status_code == 200, acknowledged.content
    flag_set_status(flag=flag, status=FlagStatus.RESOLVED, user=staff["physician"], outcome="Ok")
    types = [
        e.type for e in ChangeEvent.objects.filter(subject_id=flag.pk, type__startswith="flag")
    ]
    assert types == ["flag.raised", "flag.acknowledged", "flag.resolved"]
