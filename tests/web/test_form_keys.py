"""The one-time key of every staff page form goes through the core's idempotency mechanism
(carehub.web.actions, ADR 0013), like the API's `Idempotency-Key`: the same form sent twice acts
once and answers the first message; a different submission with a key already used (a form
tampered with, a stale copy edited and sent again) is refused and changes nothing.

Every action of the web UI has a scenario here (`ACTIONS`; a new POST page without one fails
`test_every_action_page_has_a_scenario`)."""

from __future__ import annotations

import html as html_text
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import get_resolver

from carehub.accounts.models import Role, User
from carehub.accounts.services import staff_create
from carehub.clinics.services import clinic_create
from carehub.core import clock
from carehub.core.models import IdempotencyRecord, IdempotencyStatus
from carehub.messaging.models import Message, MessageStatus
from carehub.messaging.services import message_enqueue
from carehub.observations.models import Observation
from carehub.observations.services import procedure_record
from carehub.pathways.models import Enrolment, PathwayStep, Proposal
from carehub.pathways.services import enrolment_pause, enrolment_start, proposal_approve
from carehub.patients.models import Patient
from carehub.web import urls as web_urls
from carehub.worklists.models import Flag
from carehub.worklists.services import care_task_create, flag_raise
from tests.api.test_idempotency import world
from tests.web.conftest import on_team, register

pytestmark = pytest.mark.django_db

KEY = "k" * 32
# Pages that only show something (and the login form, which has no one-time key).
READ_PAGES = {
    "home", "login", "logout", "caseload", "patient", "flags", "tasks", "dead-messages",
    "workspace", "test-clock",
}  # fmt: skip


def local(hours: float) -> str:
    return (clock.now() - timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M")


@dataclass
class Form:
    role: str
    url: str
    data: dict[str, object]
    # Another submission with the same key: other values, or the same form for another row.
    other_url: str
    other_data: dict[str, object]
    row: bool = False  # a worklist row's form (answered with the row, through htmx)
    user: User | None = None  # who sends it, when not the `staff` fixture's `role`


class Fixtures:
    def __init__(self, request: pytest.FixtureRequest) -> None:
        self.request = request

    def get(self, name: str):  # type: ignore[no-untyped-def]
        return self.request.getfixturevalue(name)


def enrolment_url(enrolment: Enrolment, action: str) -> str:
    return f"/patients/{enrolment.patient_id}/enrolments/{enrolment.public_id}/{action}"


def _decide(fx: Fixtures) -> Form:
    proposal: Proposal = fx.get("proposed")
    prefix = f"p{proposal.pk}"
    url = f"/patients/{proposal.enrolment.patient_id}/proposals/{proposal.pk}/decide"
    data = {f"{prefix}-form_key": KEY, f"{prefix}-expected_version": proposal.enrolment.version,
            f"{prefix}-decision": "approve", f"{prefix}-reason": "Facet pain"}  # fmt: skip
    return Form("physician", url, data, url, {**data, f"{prefix}-reason": "Something else"})


def _pause(fx: Fixtures) -> Form:
    enrolment = fx.get("patient").enrolments.get()
    prefix = f"pa{enrolment.pk}"
    data = {f"{prefix}-form_key": KEY, f"{prefix}-reason": "Hospital stay"}
    url = enrolment_url(enrolment, "pause")
    return Form("coordinator", url, data, url, {**data, f"{prefix}-reason": "Holiday"})


def _paused(fx: Fixtures, mrn: str) -> Enrolment:
    patient = register(fx.get("clinic"), mrn)
    enrolment = enrolment_start(patient=patient, definition_key="intractable-pain")
    return enrolment_pause(enrolment_id=enrolment.pk, reason="Hospital stay")


def _resume(fx: Fixtures) -> Form:
    first, second = _paused(fx, "R-1"), _paused(fx, "R-2")
    return Form(
        "coordinator", enrolment_url(first, "resume"), {f"re{first.pk}-form_key": KEY},
        enrolment_url(second, "resume"), {f"re{second.pk}-form_key": KEY},
    )  # fmt: skip


def _discharge(fx: Fixtures) -> Form:
    enrolment = fx.get("patient").enrolments.get()
    prefix = f"d{enrolment.pk}"
    data = {f"{prefix}-form_key": KEY, f"{prefix}-expected_version": enrolment.version,
            f"{prefix}-confirm": "on", f"{prefix}-reason": "Moved away"}  # fmt: skip
    url = enrolment_url(enrolment, "discharge")
    return Form("physician", url, data, url, {**data, f"{prefix}-expected_version": 0})


def _event(fx: Fixtures) -> Form:
    patient = register(fx.get("clinic"), "N-1", "Nia", "New")
    enrolment = enrolment_start(patient=patient, definition_key="intractable-pain")
    prefix = f"e{enrolment.pk}"
    data = {f"{prefix}-form_key": KEY, f"{prefix}-expected_version": enrolment.version,
            f"{prefix}-event": "intake_completed"}  # fmt: skip
    url = enrolment_url(enrolment, "event")
    return Form("coordinator", url, data, url, {**data, f"{prefix}-expected_version": 0})


def _procedure(fx: Fixtures) -> Form:
    proposal: Proposal = fx.get("proposed")
    staff = fx.get("staff")
    proposal_approve(proposal=proposal, user=staff["physician"], idempotency_key="approve-mbb1")
    url = f"/patients/{proposal.enrolment.patient_id}/procedure"
    data = {"pp-form_key": KEY, "pp-procedure": "mbb1", "pp-performed_at": local(3),
            "pp-relief_pct": "90", "pp-region": "L4-L5 right"}  # fmt: skip
    return Form("physician", url, data, url, {**data, "pp-relief_pct": "40"})


def _procedure_result(fx: Fixtures) -> Form:
    proposal: Proposal = fx.get("proposed")
    staff = fx.get("staff")
    proposal_approve(proposal=proposal, user=staff["physician"], idempotency_key="approve-mbb1")
    block = procedure_record(
        patient=proposal.enrolment.patient, procedure="mbb1",
        performed_at=clock.now() - timedelta(hours=6), recorded_by=staff["physician"],
    )  # fmt: skip
    url = f"/patients/{block.patient_id}/procedure-result"
    data = {"pr-form_key": KEY, "pr-procedure": block.pk, "pr-relief_pct": "85",
            "pr-assessed_at": local(1)}  # fmt: skip
    return Form("physician", url, data, url, {**data, "pr-relief_pct": "50"})


def _session(fx: Fixtures) -> Form:
    patient: Patient = fx.get("patient")
    url = f"/patients/{patient.pk}/session"
    data = {"s-form_key": KEY, "s-attended": "yes", "s-observed_at": local(1),
            "s-notes": "Graded activity", "s-measure_score": "4.5"}  # fmt: skip
    return Form("physical_therapist", url, data, url, {**data, "s-notes": "Other notes"})


def _score(fx: Fixtures) -> Form:
    patient: Patient = fx.get("patient")
    url = f"/patients/{patient.pk}/score/peg"
    data = {"sc-peg-form_key": KEY, "sc-peg-observed_at": local(1), "sc-peg-pain": "6",
            "sc-peg-enjoyment": "5", "sc-peg-activity": "4"}  # fmt: skip
    return Form("coordinator", url, data, url, {**data, "sc-peg-pain": "2"})


def _flags(patient: Patient) -> tuple[Flag, Flag]:
    enrolment = patient.enrolments.get()
    return tuple(  # type: ignore[return-value]
        flag_raise(enrolment=enrolment, code=f"test_{n}", severity="urgent",
                   message=f"Flag {n}", raised_at=clock.now())
        for n in (1, 2)
    )  # fmt: skip


def _flag(action: str) -> Callable[[Fixtures], Form]:
    # What was done (acknowledging an urgent flag) or the outcome (resolving) is required.
    text = {"note": "Called the patient"} if action == "acknowledge" else {"outcome": "Seen"}

    def build(fx: Fixtures) -> Form:
        flag, other = _flags(fx.get("patient"))
        return Form(
            "coordinator", f"/flags/{flag.pk}/{action}", {"form_key": KEY, **text},
            f"/flags/{other.pk}/{action}", {"form_key": KEY, **text}, row=True,
        )  # fmt: skip

    return build


def _task(fx: Fixtures) -> Form:
    enrolment = fx.get("patient").enrolments.get()
    task, other = (
        care_task_create(enrolment=enrolment, discipline="coordinator", title=title, due_at=None)
        for title in ("Call back", "Book review")
    )
    return Form(
        "coordinator", f"/tasks/{task.pk}/complete", {"form_key": KEY},
        f"/tasks/{other.pk}/complete", {"form_key": KEY}, row=True,
    )  # fmt: skip


def _dead(patient: Patient, key: str) -> Message:
    message = message_enqueue(
        patient=patient, recipient="patient", purpose="pathway_notice", body="Hello",
        idempotency_key=key, why="test",
    )  # fmt: skip
    Message.objects.filter(pk=message.pk).update(status=MessageStatus.DEAD, attempts=5)
    return message


def _resend(fx: Fixtures) -> Form:
    patient = fx.get("patient")
    message, other = _dead(patient, "dead-1"), _dead(patient, "dead-2")
    return Form(
        "coordinator", f"/messages/{message.pk}/resend", {"form_key": KEY},
        f"/messages/{other.pk}/resend", {"form_key": KEY}, row=True,
    )  # fmt: skip


def _fix_contact(fx: Fixtures) -> Form:
    patient = fx.get("patient")
    message, other = _dead(patient, "dead-1"), _dead(patient, "dead-2")
    Message.objects.filter(pk__in=[message.pk, other.pk]).update(
        last_error="attempt 1/5 failed: UnreachableContact: number not in service"
    )
    data = {"form_key": KEY, "phone": "+447700900123", "email": ""}
    return Form(
        "coordinator", f"/messages/{message.pk}/fix-contact", data,
        f"/messages/{message.pk}/fix-contact", {**data, "phone": "+447700900999"}, row=True,
    )  # fmt: skip


def _advance(fx: Fixtures) -> Form:
    """A sandbox clinic's admin advances its test clock (the advance waits in the queue)."""
    sandbox = clinic_create(name="Sandbox", slug="sandbox", sandbox=True)
    admin = staff_create(
        clinic=sandbox, username="sandbox-admin", role=Role.CLINIC_ADMIN, password=None
    )
    url = "/test-clock/advance"
    data = {"form_key": KEY, "amount": 1, "unit": "days"}
    return Form("sandbox-admin", url, data, url, {**data, "amount": 2}, user=admin)


ACTIONS: dict[str, Callable[[Fixtures], Form]] = {
    "proposal-decide": _decide,
    "enrolment-pause": _pause,
    "enrolment-resume": _resume,
    "enrolment-discharge": _discharge,
    "enrolment-event": _event,
    "procedure": _procedure,
    "procedure-result": _procedure_result,
    "session-log": _session,
    "score": _score,
    "flag-update acknowledge": _flag("acknowledge"),
    "flag-update resolve": _flag("resolve"),
    "task-complete": _task,
    "test-clock-advance": _advance,
    "message-resend": _resend,
    "message-fix-contact": _fix_contact,
}


@pytest.fixture
def form(request: pytest.FixtureRequest, client_for) -> Callable[[str], tuple[Form, Client]]:  # type: ignore[no-untyped-def]
    def build(action: str) -> tuple[Form, Client]:
        scenario = ACTIONS[action](Fixtures(request))
        staff = request.getfixturevalue("staff")
        return scenario, client_for(scenario.user or staff[scenario.role])

    return build


def send(client: Client, scenario: Form, url: str, data: dict[str, object]):  # type: ignore[no-untyped-def]
    if scenario.row:
        return client.post(url, data, HTTP_HX_REQUEST="true")
    return client.post(url, data)


def shown(client: Client, response) -> str:  # type: ignore[no-untyped-def]
    """What the user reads after the response: the row, the page, or where it redirects."""
    if response.status_code == 302:
        response = client.get(response["Location"].split("#")[0])
    return html_text.unescape(response.content.decode())


def test_every_action_page_has_a_scenario() -> None:
    names = {pattern.name for pattern in web_urls.urlpatterns}
    actions = {name.split(" ")[0] for name in ACTIONS}
    assert names - READ_PAGES == actions
    assert get_resolver().resolve("/flags/1/acknowledge").url_name == "flag-update"


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_the_same_form_sent_twice_acts_once(form, action: str) -> None:  # type: ignore[no-untyped-def]
    scenario, client = form(action)
    before = world()
    first = send(client, scenario, scenario.url, scenario.data)
    assert first.status_code in (200, 302), first.content.decode()[:2000]
    after = world()
    assert after != before, "the first submission changed nothing: the scenario proves nothing"
    record = IdempotencyRecord.objects.get()
    assert (record.key, record.status) == (KEY, IdempotencyStatus.DONE)
    assert record.message

    again = send(client, scenario, scenario.url, scenario.data)
    assert again.status_code == first.status_code
    assert world() == after
    assert f"This form was already sent once: {record.message}" in shown(client, again)


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_a_form_key_sent_with_other_values_is_refused(form, action: str) -> None:  # type: ignore[no-untyped-def]
    scenario, client = form(action)
    assert send(client, scenario, scenario.url, scenario.data).status_code in (200, 302)
    after = world()

    other = send(client, scenario, scenario.other_url, scenario.other_data)
    assert other.status_code == 409
    assert "This form was already sent once with other values" in shown(client, other)
    assert world() == after


def test_a_refused_form_comes_back_with_a_new_key(
    patient: Patient, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["physician"])
    url = f"/patients/{patient.pk}/procedure"
    data = {"pp-form_key": KEY, "pp-procedure": "esi", "pp-performed_at": local(3)}
    assert client.post(url, data).status_code == 302
    refused = client.post(url, {**data, "pp-procedure": "mbb1"})
    assert refused.status_code == 409
    page = refused.content.decode()
    start = page.index(f'action="{url}"')
    match = re.search(r'name="pp-form_key" value="([^"]+)"', page[start:])
    assert match
    assert match.group(1) != KEY
    assert 'value="mbb1" selected' in page[start:]  # what the user chose is kept
    codes = Observation.objects.filter(patient=patient, kind="procedure").values_list("code")
    assert list(codes) == [("esi",)]


def test_a_form_refused_by_the_services_may_be_sent_again_corrected(
    clinic, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    """A refusal changes nothing and releases the key: the corrected form acts."""
    patient = on_team(register(clinic, "T-5"), staff)
    block = procedure_record(
        patient=patient, procedure="mbb1", performed_at=clock.now() - timedelta(hours=6)
    )
    client = client_for(staff["physician"])
    url = f"/patients/{patient.pk}/procedure-result"
    data = {"pr-form_key": KEY, "pr-procedure": block.pk, "pr-relief_pct": "85",
            "pr-assessed_at": local(24)}  # fmt: skip
    refused = client.post(url, data)
    assert refused.status_code == 400
    assert "before the procedure" in refused.content.decode()
    assert not IdempotencyRecord.objects.exists()
    assert client.post(url, {**data, "pr-assessed_at": local(1)}).status_code == 302
    assert Observation.objects.get(corrects=block).value_number == 85
    assert PathwayStep.objects.filter(enrolment__patient=patient).count() == 0
