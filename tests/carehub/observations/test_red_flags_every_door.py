"""Red flags whatever the door: a PHQ-9 with item 9 at 1 or more raises the same urgent flag and
the same urgent care-team alerts (published at once, deaf to quiet hours) whether the patient
answers on the link page or in the portal, or staff enter it through the API (scores, or a
check-in's answers) or on the patient page. Staff-entered answer sets are scored like the
patient's own; one real-worker test shows the staff API door's alert delivered."""

from __future__ import annotations

import re
import time as wallclock
from datetime import time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from carehub.audit.models import AuditEvent
from carehub.checkins.models import Checkin, CheckinStatus
from carehub.instruments.registry import instrument_get
from carehub.messaging.delivery import message_send
from carehub.messaging.models import Message, MessageStatus
from carehub.observations.models import Observation
from carehub.pathways.models import Enrolment
from carehub.patients.models import Patient
from carehub.patients.services import care_team_add, patient_register
from carehub.worklists.models import Flag, FlagStatus
from carehub.worklists.services import flag_set_status
from tests.support.celery_worker import wait_until
from tests.support.patients import (
    Clinicians,
    clinic_with_team,
    enrolled_patient,
    open_checkin,
    patient_user,
    send_link,
)

pytestmark = pytest.mark.django_db

PHQ9_ITEM9 = {f"item{n}": 0 for n in range(1, 9)} | {"item9": 2}
TEAM_ROLES = {"coordinator", "physician", "psychologist"}


@pytest.fixture(autouse=True)
def frozen_clock() -> None:
    """Real time here (this package's conftest freezes it): a real worker sends the alerts."""


@pytest.fixture
def team() -> Clinicians:
    return clinic_with_team("rf")


@pytest.fixture
def enrolment(team: Clinicians) -> Enrolment:
    return enrolled_patient(team, "RF-1", username="rf-patient")


def quiet_now(patient: Patient) -> None:
    """Make every hour around now quiet for the patient (their send window is later)."""
    now_local = timezone.now().astimezone(ZoneInfo(patient.time_zone))
    start = (now_local + timedelta(hours=2)).time().replace(minute=0, second=0, microsecond=0)
    patient.send_window_start = start
    patient.send_window_end = time(min(start.hour + 1, 23), 30)
    patient.save(update_fields=["send_window_start", "send_window_end"])


def expected_alert_body() -> str:
    rule = next(r for r in instrument_get("phq9").red_flags if r.code == "phq9_item9_positive")
    return f"Red flag (immediate): {rule.staff_message}"


def assert_urgent_flag_and_alerts(patient: Patient, *, subject: str) -> None:
    """The urgent flag of the rule and one urgent alert per care-team role, queued for sending
    now (published after commit, not waiting for a window), each sendable in quiet hours."""
    flag = Flag.objects.get(patient=patient, code="phq9_item9_positive")
    assert (flag.severity, flag.status) == ("urgent", FlagStatus.OPEN)
    assert flag.dedupe_key == f"{subject}:redflag:phq9_item9_positive"
    alerts = list(Message.objects.filter(patient=patient, purpose="red_flag_alert"))
    assert sorted(m.to_staff.role for m in alerts if m.to_staff) == sorted(TEAM_ROLES)
    assert {m.urgency for m in alerts} == {"urgent"}
    assert {m.body for m in alerts} == {expected_alert_body()}
    assert {m.why for m in alerts} == {"phq9 answer: phq9_item9_positive"}
    assert {m.status for m in alerts} == {MessageStatus.QUEUED}
    assert all(m.not_before <= timezone.now() for m in alerts)
    quiet_now(patient)
    for alert in alerts:
        assert message_send(message_id=alert.pk) == "sent"


def staff_api(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def post_scores(client: APIClient, patient_id: int, body: dict[str, Any], key: str):  # type: ignore[no-untyped-def]
    return client.post(
        f"/api/v1/patients/{patient_id}/scores", body, format="json", HTTP_IDEMPOTENCY_KEY=key
    )


# --- one test per door -------------------------------------------------------------------------


def test_the_link_page(enrolment: Enrolment) -> None:
    checkin = open_checkin(enrolment, "phq9")
    token = send_link(checkin)
    page = Client().post(f"/c/{token}", {k: str(v) for k, v in PHQ9_ITEM9.items()})
    assert page.status_code == 200
    assert_urgent_flag_and_alerts(enrolment.patient, subject=f"checkin:{checkin.pk}")


def test_the_portal(enrolment: Enrolment) -> None:
    checkin = open_checkin(enrolment, "phq9")
    client = logged_in(patient_user(enrolment))
    page = client.post(f"/me/checkins/{checkin.pk}/", {k: str(v) for k, v in PHQ9_ITEM9.items()})
    assert page.status_code == 200
    assert_urgent_flag_and_alerts(enrolment.patient, subject=f"checkin:{checkin.pk}")


def test_the_staff_api_scores(team: Clinicians, enrolment: Enrolment) -> None:
    body = {"instrument": "phq9", "items": PHQ9_ITEM9, "observed_at": timezone.now().isoformat()}
    response = post_scores(staff_api(team.coordinator), enrolment.patient_id, body, "phq9-1")
    assert response.status_code == 201, response.content
    recorded = response.json()["observation"]
    assert (recorded["value_number"], recorded["data"]["band"]) == (2, "minimal")
    assert_urgent_flag_and_alerts(enrolment.patient, subject=f"observation:{recorded['id']}")
    flag = Flag.objects.get(patient_id=enrolment.patient_id)
    assert flag.enrolment_id == enrolment.pk
    # A retry with the same key answers the first outcome and alerts nobody twice.
    again = post_scores(staff_api(team.coordinator), enrolment.patient_id, body, "phq9-1")
    assert again.status_code == 200
    assert Flag.objects.filter(patient_id=enrolment.patient_id).count() == 1
    assert Message.objects.filter(purpose="red_flag_alert").count() == len(TEAM_ROLES)


def test_the_api_checkin_answers_entered_by_staff(team: Clinicians, enrolment: Enrolment) -> None:
    checkin = open_checkin(enrolment, "phq9")
    response = staff_api(team.physician).post(
        f"/api/v1/checkins/{checkin.pk}/answers",
        {"answers": PHQ9_ITEM9},
        format="json",
        HTTP_IDEMPOTENCY_KEY="staff-answers",
    )
    assert response.status_code == 201, response.content
    assert response.json()["red_flags"][0]["code"] == "phq9_item9_positive"
    assert Observation.objects.get(patient=enrolment.patient).source == "staff"
    assert_urgent_flag_and_alerts(enrolment.patient, subject=f"checkin:{checkin.pk}")


def score_form(client: Client, patient_id: int, instrument: str) -> tuple[str, dict[str, str]]:
    """The page's "Record a score" form for the instrument: its URL and hidden fields."""
    url = f"/patients/{patient_id}/score/{instrument}"
    html = client.get(f"/patients/{patient_id}/").content.decode()
    start = html.index(f'action="{url}"')
    form = html[start : html.index("</form>", start)]
    hidden = dict(re.findall(r'type="hidden" name="([^"]+)" value="([^"]+)"', form))
    return url, hidden


def test_the_staff_patient_page(team: Clinicians, enrolment: Enrolment) -> None:
    client = logged_in(team.coordinator)
    url, hidden = score_form(client, enrolment.patient_id, "phq9")
    answered = (timezone.localtime() - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M")
    data = {**hidden, "sc-phq9-observed_at": answered}
    data |= {f"sc-phq9-{key}": str(value) for key, value in PHQ9_ITEM9.items()}
    response = client.post(url, data)
    assert response.status_code == 302
    observation = Observation.objects.get(patient=enrolment.patient, code="phq9")
    assert (observation.value_number, observation.recorded_by, observation.data["items"]) == (
        2, team.coordinator, PHQ9_ITEM9,
    )  # fmt: skip
    assert_urgent_flag_and_alerts(enrolment.patient, subject=f"observation:{observation.pk}")
    html = client.get(response["Location"]).content.decode()
    assert "Red flag raised (phq9_item9_positive): the care team has been alerted." in html
    # The same form sent again acts once; each answer is audited; the form needs its CSRF token.
    assert client.post(url, data).status_code == 302
    assert Observation.objects.filter(patient=enrolment.patient, code="phq9").count() == 1
    audited = AuditEvent.objects.filter(
        action="observation.score", patient=enrolment.patient
    ).order_by("id")
    assert [(a.outcome, a.detail.get("instrument"), a.detail["replayed"]) for a in audited] == [
        ("ok", "phq9", False), ("ok", None, True),
    ]  # fmt: skip
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(team.coordinator)
    assert strict.post(url, data).status_code == 403


# --- staff entries are scored like the patient's answers -----------------------------------------


def answer_set(item9: int, others: int) -> dict[str, int]:
    """Items 1-8 at `others`, item 9 at `item9`."""
    return {f"item{n}": others for n in range(1, 9)} | {"item9": item9}


# Twelve PHQ-9 answer sets, nine of which raise a red flag: item 9 at 1 or more, or a total of
# 20 or more (severe).
TWELVE = [
    (answer_set(1, 0), {"phq9_item9_positive"}),
    (answer_set(2, 1), {"phq9_item9_positive"}),
    (answer_set(3, 0), {"phq9_item9_positive"}),
    (answer_set(1, 2), {"phq9_item9_positive"}),
    (answer_set(3, 3), {"phq9_item9_positive", "phq9_total_severe"}),
    (answer_set(2, 3), {"phq9_item9_positive", "phq9_total_severe"}),
    (answer_set(1, 1), {"phq9_item9_positive"}),
    (answer_set(0, 3), {"phq9_total_severe"}),
    (answer_set(0, 2) | {f"item{n}": 3 for n in range(1, 5)}, {"phq9_total_severe"}),  # 20
    (answer_set(0, 0), set()),
    (answer_set(0, 2), set()),
    (answer_set(0, 1), set()),
]  # fmt: skip


def test_twelve_staff_entered_phq9_raise_the_nine_flags_their_answers_call_for(
    team: Clinicians, enrolment: Enrolment
) -> None:
    client = staff_api(team.physician)
    at = (timezone.now() - timedelta(hours=1)).isoformat()
    flagged = 0
    for number, (items, codes) in enumerate(TWELVE):
        body = {"instrument": "phq9", "items": items, "observed_at": at}
        response = post_scores(client, enrolment.patient_id, body, f"set-{number}")
        assert response.status_code == 201, response.content
        observation = response.json()["observation"]
        assert observation["value_number"] == sum(items.values())
        raised = Flag.objects.filter(dedupe_key__startswith=f"observation:{observation['id']}:")
        assert set(raised.values_list("code", flat=True)) == codes, items
        flagged += bool(codes)
        # The team deals with each before the next (an unresolved flag of a code is not raised
        # twice: a new answer meeting it finds it and alerts again).
        for flag in Flag.objects.filter(patient_id=enrolment.patient_id).exclude(status="resolved"):
            flag_set_status(
                flag=flag, status=FlagStatus.RESOLVED, user=team.physician, outcome="Seen"
            )
    assert flagged == 9
    assert Flag.objects.filter(patient_id=enrolment.patient_id).count() == 11  # two sets raise two


def test_an_intake_phq9_before_any_pathway_still_alerts_the_team(team: Clinicians) -> None:
    patient = patient_register(
        clinic=team.clinic, mrn="RF-9", given_name="In", family_name="Take",
        time_zone="Europe/London",
    )  # fmt: skip
    for user in (team.coordinator, team.physician, team.psychologist):
        care_team_add(patient=patient, staff=user)
    body = {"instrument": "phq9", "items": PHQ9_ITEM9, "observed_at": timezone.now().isoformat()}
    response = post_scores(staff_api(team.coordinator), patient.pk, body, "intake")
    assert response.status_code == 201, response.content
    observation = response.json()["observation"]
    assert observation["is_baseline"] is True  # the first PHQ-9 of the patient
    flag = Flag.objects.get(patient=patient)
    assert (flag.code, flag.severity, flag.enrolment_id) == ("phq9_item9_positive", "urgent", None)
    assert_urgent_flag_and_alerts(patient, subject=f"observation:{observation['id']}")


def test_a_refused_checkin_still_acts_on_its_red_flag_and_stays_open(
    team: Clinicians, enrolment: Enrolment
) -> None:
    """Incomplete answers are refused, but an item 9 answer among them is not lost: the flag and
    alerts are raised once for the check-in, which stays open for the complete answers."""
    checkin = open_checkin(enrolment, "phq9")
    partial = {k: v for k, v in PHQ9_ITEM9.items() if k != "item4"}
    client = staff_api(team.coordinator)
    url = f"/api/v1/checkins/{checkin.pk}/answers"
    refused = client.post(url, {"answers": partial}, format="json", HTTP_IDEMPOTENCY_KEY="p1")
    assert refused.status_code == 400
    assert list(refused.json()["errors"]) == ["answers.item4"]
    checkin.refresh_from_db()
    assert (checkin.status, checkin.observation_id) == (CheckinStatus.OPEN, None)
    assert_urgent_flag_and_alerts(enrolment.patient, subject=f"checkin:{checkin.pk}")
    done = client.post(url, {"answers": PHQ9_ITEM9}, format="json", HTTP_IDEMPOTENCY_KEY="p2")
    assert done.status_code == 201, done.content
    assert Flag.objects.filter(patient=enrolment.patient).count() == 1
    assert Message.objects.filter(purpose="red_flag_alert").count() == len(TEAM_ROLES)
    assert Checkin.objects.get(pk=checkin.pk).status == CheckinStatus.ANSWERED


# --- delivered by a real worker ----------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_staff_entered_phq9_alert_is_delivered_in_quiet_hours(
    celery_worker_process: str, team: Clinicians, enrolment: Enrolment
) -> None:
    quiet_now(enrolment.patient)
    body = {"instrument": "phq9", "items": PHQ9_ITEM9, "observed_at": timezone.now().isoformat()}
    entered = wallclock.monotonic()
    response = post_scores(staff_api(team.coordinator), enrolment.patient_id, body, "phq9-live")
    assert response.status_code == 201, response.content

    def all_sent() -> bool:
        statuses = list(
            Message.objects.filter(purpose="red_flag_alert").values_list("status", flat=True)
        )
        return len(statuses) == len(TEAM_ROLES) and all(s == MessageStatus.SENT for s in statuses)

    wait_until(all_sent, timeout=60)
    assert wallclock.monotonic() - entered < 60
    alerts = Message.objects.filter(purpose="red_flag_alert")
    assert {m.to_staff.role for m in alerts if m.to_staff} == TEAM_ROLES
    assert not alerts.filter(status=MessageStatus.DEFERRED).exists()
