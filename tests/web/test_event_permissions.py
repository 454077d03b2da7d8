"""Who may send which event, generated from the built-in definition: for every (role, event) the
dispatch service, the REST API and the staff patient page agree with the definition's `roles`
(0 disagreements), and every refusal names the roles that may.

A permitted event is sent with a stale `expected_version`, so it answers 409 and changes
nothing; a refused one is refused before that check. So each pair is tried on one enrolment
without moving it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator

import pytest
from django.test import Client
from rest_framework.test import APIClient

from carehub.accounts.models import STAFF_ROLES, User
from carehub.care_access import OPERATIONS, Operation
from carehub.core.exceptions import Conflict, NotPermitted
from carehub.pathways.models import Enrolment, PathwayStep
from carehub.pathways.registry import definition_get
from carehub.pathways.services import enrolment_start, pathway_event_send
from carehub.patients.models import Patient
from tests.web.conftest import on_team, register
from workflows import PathwayDefinition

pytestmark = pytest.mark.django_db

ROLES = [str(role) for role in STAFF_ROLES]


@pytest.fixture
def definition() -> PathwayDefinition:
    return definition_get("intractable-pain")


@pytest.fixture
def team_patient(clinic, staff: dict[str, User]) -> Patient:  # type: ignore[no-untyped-def]
    return on_team(register(clinic, "EP-1", "Eve", "Events"), staff, tuple(staff))


@pytest.fixture
def enrolment(team_patient: Patient, staff: dict[str, User]) -> Enrolment:
    return enrolment_start(
        patient=team_patient, definition_key="intractable-pain", started_by=staff["coordinator"]
    )


def _steps(enrolment: Enrolment) -> int:
    return PathwayStep.objects.filter(enrolment=enrolment).count()


def _person_events(definition: PathwayDefinition) -> list[str]:
    return list(definition.events)


def test_the_service_agrees_with_the_definition(
    definition: PathwayDefinition, enrolment: Enrolment, staff: dict[str, User]
) -> None:
    disagreements = []
    before = _steps(enrolment)
    for role in ROLES:
        for event in _person_events(definition):
            try:
                pathway_event_send(
                    enrolment=enrolment, event=event, idempotency_key=f"svc:{role}:{event}",
                    user=staff[role], expected_version=enrolment.version + 1000,
                    reason="checking permissions",
                )  # fmt: skip
            except NotPermitted as exc:
                allowed = False
                assert exc.extra["roles"] == sorted(definition.senders(event))
            except Conflict:
                allowed = True
            else:  # pragma: no cover - a stale version never applies
                raise AssertionError(f"{role} {event} applied with a stale version")
            if allowed != definition.may_send(role, event):
                disagreements.append((role, event, allowed))
    assert disagreements == []
    assert _steps(enrolment) == before


def test_the_api_agrees_with_the_definition(
    definition: PathwayDefinition, enrolment: Enrolment, staff: dict[str, User]
) -> None:
    disagreements = []
    url = f"/api/v1/enrolments/{enrolment.public_id}/events"
    for role in ROLES:
        client = APIClient()
        client.force_authenticate(staff[role])
        for event in _person_events(definition):
            response = client.post(
                url,
                {"event": event, "expected_version": enrolment.version + 1000, "reason": "x"},
                format="json",
                HTTP_IDEMPOTENCY_KEY=f"api-{role}-{event}",
            )
            assert response.status_code in (403, 409), (role, event, response.content)
            allowed = response.status_code == 409
            if not allowed:
                body = response.json()
                assert response["Content-Type"] == "application/problem+json"
                assert body["code"] == "not_permitted"
                # The clinic admin is refused by the role matrix before the definition is read:
                # the refusal names the operation and the roles the matrix allows.
                if role == "clinic_admin":
                    assert (body["operation"], body["roles"]) == (
                        Operation.ENROLMENT_EVENT_SEND.value,
                        sorted(OPERATIONS[Operation.ENROLMENT_EVENT_SEND]),
                    )
                else:
                    assert (body["event"], body["roles"]) == (
                        event,
                        sorted(definition.senders(event)),
                    )
            if allowed != definition.may_send(role, event):
                disagreements.append((role, event, response.status_code))
    assert disagreements == []


def _configurations(definition: PathwayDefinition) -> Iterator[dict[str, str]]:
    """States per track that, together, offer every event a person sends somewhere."""
    offered: dict[str, dict[str, set[str]]] = {
        name: {
            state: {t.event for t in track.transitions if t.leaves(state)}
            - definition.internal_events
            for state, spec in track.states.items()
            if not spec.final
        }
        for name, track in definition.tracks.items()
    }
    uncovered = set().union(*(set().union(*by_state.values()) for by_state in offered.values()))
    while uncovered:
        chosen = {
            name: max(by_state, key=lambda state, by=by_state: len(by[state] & uncovered))
            for name, by_state in offered.items()
        }
        uncovered -= set().union(*(offered[name][state] for name, state in chosen.items()))
        yield chosen


def _put_in(enrolment: Enrolment, states: dict[str, str]) -> None:
    """Test arrangement: place each track in a state (as a walk through the ladder would)."""
    enrolment.refresh_from_db()
    enrolment.configuration = {
        track: {**item, "state": states[track]} for track, item in enrolment.configuration.items()
    }
    enrolment.save(update_fields=["configuration"])


def test_the_patient_page_offers_and_accepts_exactly_what_the_definition_allows(
    definition: PathwayDefinition,
    enrolment: Enrolment,
    staff: dict[str, User],
    client_for: Callable[[User], Client],
) -> None:
    disagreements = []
    clients = {role: client_for(staff[role]) for role in ROLES}
    discharge = "discharge_recorded"
    seen: set[str] = set()
    for states in _configurations(definition):
        _put_in(enrolment, states)
        available = {
            t.event
            for name, track in definition.tracks.items()
            for t in track.transitions
            if t.leaves(states[name])
        } - definition.internal_events
        seen |= available
        for role, client in clients.items():
            html = client.get(f"/patients/{enrolment.patient_id}/").content.decode()
            form = html.split(f'action="/patients/{enrolment.patient_id}/enrolments/'
                              f'{enrolment.public_id}/event"', 1)  # fmt: skip
            offered: set[str] = set()
            if len(form) == 2:
                offered = set(
                    re.findall(r'<option value="([a-z0-9_]+)"', form[1].split("</form>")[0])
                )
            for event in sorted(available - {discharge}):
                if (event in offered) != definition.may_send(role, event):
                    disagreements.append((role, event, "offered" if event in offered else "not"))
            # Sending one the page does not offer is refused and changes nothing.
            refused = sorted(e for e in available - {discharge} if not definition.may_send(role, e))
            if refused:
                before = _steps(enrolment)
                prefix = f"e{enrolment.pk}"
                response = client.post(
                    f"/patients/{enrolment.patient_id}/enrolments/{enrolment.public_id}/event",
                    {
                        f"{prefix}-form_key": uuid.uuid4().hex,
                        f"{prefix}-expected_version": enrolment.version,
                        f"{prefix}-event": refused[0],
                    },
                )
                assert response.status_code in (400, 403), (role, refused[0])
                assert _steps(enrolment) == before
    assert disagreements == []
    assert seen >= set(definition.events) - definition.internal_events


# --- therapy sessions: only the roles of the event that reports them log them -----------------


def test_a_session_is_logged_only_by_its_disciplines_roles_through_the_service(
    team_patient: Patient, staff: dict[str, User]
) -> None:
    from django.utils import timezone

    from carehub.observations.models import Observation
    from carehub.observations.services import session_record

    for role, discipline in (("psychologist", "pt"), ("physical_therapist", "cbt"),
                             ("coordinator", "pt"), ("physician", "cbt")):  # fmt: skip
        with pytest.raises(NotPermitted) as refused:
            session_record(
                patient=team_patient, discipline=discipline, attended=True,
                observed_at=timezone.now(), recorded_by=staff[role],
            )  # fmt: skip
        assert refused.value.extra["roles"] == sorted(
            definition_get("intractable-pain").session_roles(discipline)
        )
    assert not Observation.objects.filter(patient=team_patient).exists()
    session_record(
        patient=team_patient, discipline="pt", attended=True, observed_at=timezone.now(),
        recorded_by=staff["physical_therapist"],
    )  # fmt: skip


def test_a_session_is_logged_only_by_its_disciplines_roles_through_the_api(
    enrolment: Enrolment, staff: dict[str, User]
) -> None:
    from django.utils import timezone

    from carehub.observations.models import Observation

    url = f"/api/v1/patients/{enrolment.patient_id}/sessions"
    body = {"discipline": "pt", "attended": True, "observed_at": timezone.now().isoformat()}
    for role in ("psychologist", "coordinator", "physician", "pharmacist"):
        client = APIClient()
        client.force_authenticate(staff[role])
        response = client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY=f"s-{role}")
        assert response.status_code == 403, (role, response.content)
        assert response.json()["code"] == "not_permitted"
    assert not Observation.objects.filter(patient=enrolment.patient, kind="session").exists()
    client = APIClient()
    client.force_authenticate(staff["physical_therapist"])
    response = client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="s-pt")
    assert response.status_code == 201, response.content


def test_each_therapist_is_offered_only_what_they_may_send(
    definition: PathwayDefinition,
    enrolment: Enrolment,
    staff: dict[str, User],
    client_for: Callable[[User], Client],
) -> None:
    _put_in(
        enrolment,
        {"ladder": "conventional", "physical_therapy": "active", "cbt": "referred",
         "medication_safety": "opioid_monitoring"},
    )  # fmt: skip
    offered_anywhere = set()
    for role in ("physical_therapist", "psychologist", "pharmacist"):
        # The workspace sends no bare events (sessions are logged with what happened); the
        # patient page offers the events.
        assert "/event" not in client_for(staff[role]).get("/my/").content.decode()
        html = client_for(staff[role]).get(f"/patients/{enrolment.patient_id}/").content.decode()
        offered = set(re.findall(r'<option value="([a-z0-9_]+)"', html)) & set(definition.events)
        assert all(definition.may_send(role, event) for event in offered), (role, offered)
        offered_anywhere |= offered
    # The pharmacist's track offers physician-only events (opioid_reassessed): never shown.
    assert "opioid_reassessed" not in offered_anywhere
    assert "medication_recorded" in offered_anywhere
