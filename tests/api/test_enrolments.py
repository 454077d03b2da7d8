"""Enrolment detail and events: outcome and new state, idempotent replays, conflicts, 422."""

from __future__ import annotations

import pytest

from carehub.accounts.models import User
from carehub.clinics.models import ClinicThreshold
from carehub.pathways.models import Enrolment, PathwayStep, ProcessedEvent
from tests.api.conftest import assert_problem, make_eligible, to_conventional

pytestmark = pytest.mark.django_db


def send(client, enrolment: Enrolment, body: dict, key: str | None = "k1"):  # type: ignore[no-untyped-def,type-arg]
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return client.post(
        f"/api/v1/enrolments/{enrolment.public_id}/events", body, format="json", **headers
    )


def test_detail_shows_tracks_status_version_proposals_and_available_events(
    client_for, staff: dict[str, User], proposal
) -> None:  # type: ignore[no-untyped-def]
    enrolment = proposal.enrolment
    body = client_for(staff["physician"]).get(f"/api/v1/enrolments/{enrolment.public_id}").json()
    assert body["public_id"] == str(enrolment.public_id)
    assert (body["status"], body["definition_key"]) == ("active", "stepped-care-example")
    assert body["version"] == enrolment.version
    assert {t["track"]: t["state"] for t in body["tracks"]} == {
        "ladder": "conventional", "pt": "active", "cbt": "evaluation",
    }  # fmt: skip
    [pending] = body["pending_proposals"]
    assert (pending["id"], pending["target"], pending["roles"]) == (
        proposal.pk,
        "esi",
        ["physician"],
    )
    assert "esi_requested" in body["available_events"]["ladder"]
    assert "review_due" not in body["available_events"]["ladder"]  # a timer's event


def test_patient_enrolments_list(client_for, staff: dict[str, User], enrolment: Enrolment) -> None:  # type: ignore[no-untyped-def]
    response = client_for(staff["physician"]).get(
        f"/api/v1/patients/{enrolment.patient_id}/enrolments"
    )
    [item] = response.json()["results"]
    assert item["public_id"] == str(enrolment.public_id)
    assert item["states"]["ladder"] == "intake"


def test_event_moves_the_pathway_and_answers_the_new_state(
    client_for, staff: dict[str, User], enrolment: Enrolment
) -> None:  # type: ignore[no-untyped-def]
    make_eligible(enrolment.patient)
    response = send(client_for(staff["coordinator"]), enrolment, {"event": "intake_complete"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["outcome"], body["replayed"]) == ("transitioned", False)
    assert body["step"]["event"] == "intake_complete"
    assert "held" in body["step"]["explanation"]["summary"]
    assert body["enrolment"]["version"] == 2
    states = {t["track"]: t["state"] for t in body["enrolment"]["tracks"]}
    assert states["ladder"] == "conventional"
    step = PathwayStep.objects.filter(enrolment=enrolment).latest("id")
    assert (step.actor, step.actor_role) == (staff["coordinator"], "coordinator")


def test_replay_with_the_same_key_answers_the_same_outcome_without_a_second_step(
    client_for, staff: dict[str, User], enrolment: Enrolment
) -> None:  # type: ignore[no-untyped-def]
    make_eligible(enrolment.patient)
    client = client_for(staff["coordinator"])
    first = send(client, enrolment, {"event": "intake_complete"}, key="same")
    steps = PathwayStep.objects.count()
    again = send(client, enrolment, {"event": "intake_complete"}, key="same")
    assert again.status_code == 200
    assert again["Idempotent-Replayed"] == "true"
    assert again.json()["replayed"] is True
    assert again.json()["outcome"] == first.json()["outcome"]
    assert again.json()["step"] == first.json()["step"]
    assert PathwayStep.objects.count() == steps
    assert ProcessedEvent.objects.filter(enrolment=enrolment).count() == 1
    # The same key for another event is refused, naming its first use; nothing changes.
    body = assert_problem(
        send(client, enrolment, {"event": "discharge"}, key="same"), 409, "idempotency_key_reused"
    )
    assert body["first_use"]["operation"] == "enrolment.event_send"
    assert PathwayStep.objects.count() == steps


def test_stale_expected_version_is_a_409_with_the_current_state(
    client_for, staff: dict[str, User], enrolment: Enrolment
) -> None:  # type: ignore[no-untyped-def]
    response = send(
        client_for(staff["coordinator"]), enrolment, {"event": "discharge", "expected_version": 7}
    )
    body = assert_problem(response, 409, "conflict")
    assert body["current"]["version"] == 1
    assert body["current"]["states"]["ladder"] == "intake"
    enrolment.refresh_from_db()
    assert enrolment.state_of("ladder") == "intake"


def test_event_that_changes_nothing_is_422_with_the_explanation(
    client_for, staff: dict[str, User], enrolment: Enrolment
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["coordinator"])
    response = send(client, enrolment, {"event": "intake_complete"}, key="early")
    body = assert_problem(response, 422, "no_change")
    assert "missing: pain.months" in body["detail"]
    assert body["explanation"]["checks"][0]["result"] is not True
    assert body["current"]["states"]["ladder"] == "intake"
    # The decision is logged all the same, and a replay answers it again.
    assert PathwayStep.objects.filter(enrolment=enrolment, outcome="no_change").count() == 1
    assert_problem(send(client, enrolment, {"event": "intake_complete"}, key="early"), 422,
                   "no_change")  # fmt: skip
    assert PathwayStep.objects.filter(enrolment=enrolment, outcome="no_change").count() == 1


def test_a_timer_event_sent_by_a_person_is_403_naming_nobody(
    client_for, staff: dict[str, User], enrolment: Enrolment
) -> None:  # type: ignore[no-untyped-def]
    response = send(client_for(staff["physician"]), enrolment, {"event": "review_due"})
    body = assert_problem(response, 403, "not_permitted")
    assert (body["event"], body["roles"]) == ("review_due", [])
    assert "raised by the pathway itself" in body["detail"]
    assert PathwayStep.objects.filter(enrolment=enrolment).count() == 1


@pytest.mark.parametrize("event", ["teleport", "approve", "reject"])
def test_unknown_event_or_a_decision_is_400_naming_the_field(
    client_for, staff: dict[str, User], enrolment: Enrolment, event: str
) -> None:  # type: ignore[no-untyped-def]
    response = send(client_for(staff["coordinator"]), enrolment, {"event": event})
    body = assert_problem(response, 400, "invalid_input")
    assert list(body["errors"]) == ["event"]
    assert PathwayStep.objects.filter(enrolment=enrolment).count() == 1


def test_missing_idempotency_key_or_event_is_400(
    client_for, staff: dict[str, User], enrolment: Enrolment
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["coordinator"])
    body = assert_problem(send(client, enrolment, {"event": "discharge"}, key=None), 400,
                          "invalid_input")  # fmt: skip
    assert list(body["errors"]) == ["Idempotency-Key"]
    body = assert_problem(send(client, enrolment, {}), 400, "invalid_input")
    assert list(body["errors"]) == ["event"]


def test_a_proposal_opened_by_an_event_is_a_200(
    client_for, staff: dict[str, User], enrolment: Enrolment
) -> None:  # type: ignore[no-untyped-def]
    to_conventional(enrolment, staff["coordinator"])
    response = send(client_for(staff["physician"]), enrolment, {"event": "esi_requested"})
    assert response.status_code == 200
    assert response.json()["outcome"] == "proposed"
    assert response.json()["enrolment"]["pending_proposals"][0]["target"] == "esi"


def test_clinic_threshold_blocks_and_is_explained(
    client_for, staff: dict[str, User], enrolment: Enrolment
) -> None:  # type: ignore[no-untyped-def]
    ClinicThreshold.objects.create(
        clinic=enrolment.clinic, pathway_key="stepped-care-example", name="esi_max_per_year",
        value=0, source="Clinic policy",
    )  # fmt: skip
    to_conventional(enrolment, staff["coordinator"])
    response = send(client_for(staff["physician"]), enrolment, {"event": "esi_requested"})
    body = assert_problem(response, 422, "no_change")
    readings = {r["name"]: r["source"] for r in body["explanation"]["checks"][0]["readings"]}
    assert readings["threshold.esi_max_per_year"] == "Clinic policy"
