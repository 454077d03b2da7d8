"""The demo clinic: seeded once for this module (the histories take a while), then checked."""

from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import override_settings

from carehub.accounts.models import Role, User
from carehub.checkins.models import Checkin, CheckinStatus
from carehub.clinics.models import Clinic
from carehub.messaging.models import DeliveryEvent, Message, MessageStatus, RecordedMessage
from carehub.patients.models import CareTeamMembership, Patient

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module", autouse=True)
def seeded(django_db_setup: None, django_db_blocker) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """Seed with the demo's SMS gateway (it refuses one number: dead messages), committed, so
    that the histories are built in parallel processes as `make demo` builds them; the rows are
    removed afterwards."""
    import io

    out = io.StringIO()
    with django_db_blocker.unblock():
        with override_settings(MESSAGING_SMS_GATEWAY="carehub.demo.gateway.DemoSmsGateway"):
            call_command("seed_demo", stdout=out)
        try:
            yield out.getvalue()
        finally:
            call_command("flush", interactive=False, verbosity=0)


def counts() -> tuple[int, int, int, int, int, int]:
    return (
        Clinic.objects.count(),
        User.objects.count(),
        Patient.objects.count(),
        CareTeamMembership.objects.count(),
        Checkin.objects.count(),
        Message.objects.count(),
    )


def test_staff_of_every_discipline_and_patients_with_care_teams(seeded: str) -> None:
    clinic = Clinic.objects.get(slug="riverside")
    assert set(User.objects.filter(clinic=clinic).values_list("role", flat=True)) == set(
        Role.values
    )
    patients = Patient.objects.filter(clinic=clinic)
    assert patients.count() >= 30
    assert len(set(patients.values_list("time_zone", flat=True))) >= 10
    for patient in patients:
        roles = set(patient.care_team.values_list("staff__role", flat=True))
        assert {Role.COORDINATOR, Role.PHYSICIAN, Role.PHYSICAL_THERAPIST} <= roles
    assert "carehub-demo" in seeded
    assert "nurse" in seeded
    assert "james" in seeded
    assert "/dev/sent-messages/" in seeded
    admin = User.objects.get(username="admin")
    assert admin.is_staff
    assert admin.check_password("carehub-demo")
    james = User.objects.get(username="james")
    assert (james.role, james.patient_record.mrn) == (Role.PATIENT, "RP-1002")
    assert james.check_password("carehub-demo")


def test_seeding_again_changes_nothing() -> None:
    first = counts()
    call_command("seed_demo")
    assert counts() == first


def test_patients_stand_at_every_stage_of_the_ladder() -> None:
    from carehub.pathways.models import Enrolment, PathwayStep, Proposal
    from carehub.pathways.registry import definition_get

    states = {
        e.patient.mrn: e.state_of("ladder")
        for e in Enrolment.objects.select_related("patient").filter(
            definition_key="intractable-pain"
        )
    }
    assert {
        "RP-1001": "intake",
        "RP-1002": "conventional",
        "RP-1003": "interventional_review",
        "RP-1004": "rfa_followup",
        "RP-1005": "psych_treatment",
        "RP-1006": "scs_trial",
        "RP-1007": "scs_followup",
        "RP-1008": "pump_active",
    }.items() <= states.items()
    ladder = set(definition_get("intractable-pain").tracks["ladder"].states)
    assert set(states.values()) == ladder  # every state of the ladder has a patient
    assert Enrolment.objects.filter(status="paused").exists()
    # RP-1003's block waits for the physician; most escalations were approved.
    pending = {
        (p.enrolment.patient.mrn, p.target) for p in Proposal.objects.filter(status="pending")
    }
    assert ("RP-1003", "mbb1") in pending
    assert Proposal.objects.filter(status="approved").count() >= 20
    # Months of history: a long step log and weekly scores.
    steps = PathwayStep.objects.filter(enrolment__patient__mrn="RP-1004")
    assert steps.count() >= 10
    assert steps.order_by("at").first().at < steps.order_by("at").last().at - timedelta(days=90)
    assert Patient.objects.get(mrn="RP-1004").observations.filter(kind="score").count() >= 15


def test_months_of_checkins_answered_missed_and_red_flags() -> None:
    from carehub.worklists.models import Flag

    checkins = Checkin.objects.all()
    assert checkins.filter(status=CheckinStatus.ANSWERED).count() >= 300
    assert checkins.filter(status=CheckinStatus.MISSED).count() >= 10
    answered = checkins.filter(status=CheckinStatus.ANSWERED, observation__isnull=False)
    assert answered.filter(observation__source="patient").exists()
    # The portal patient has a check-in to answer now.
    assert checkins.filter(patient__mrn="RP-1002", status=CheckinStatus.OPEN).exists()
    # Red flags from answers: PHQ-9 item 9, a wound problem during a stimulator trial.
    urgent = set(Flag.objects.filter(severity="urgent").values_list("patient__mrn", "code"))
    assert ("RP-1005", "phq9_item9_positive") in urgent
    assert any(mrn == "RP-1006" for mrn, _ in urgent)
    assert Message.objects.filter(purpose="red_flag_alert", urgency="urgent").exists()
    # Two missed in a row: a task to call the patient.
    from carehub.worklists.models import CareTask

    assert CareTask.objects.filter(title__contains="missed in a row").exists()


def test_messages_with_delivery_records_some_dead() -> None:
    statuses = set(Message.objects.values_list("status", flat=True))
    assert {MessageStatus.SENT, MessageStatus.SUPPRESSED, MessageStatus.DEAD} <= statuses
    dead = Message.objects.filter(status=MessageStatus.DEAD).first()
    assert dead is not None
    assert "not in service" in dead.events.latest("pk").reason
    assert DeliveryEvent.objects.count() >= Message.objects.count()
    # What the recording backends "sent": check-in links, stored redacted.
    assert RecordedMessage.objects.filter(body__contains="/c/[redacted]").count() >= 100
    assert RecordedMessage.objects.filter(body__regex=r"/c/[A-Za-z0-9_-]{8}").count() == 0


def test_open_tasks_are_not_duplicated_nor_left_behind_by_their_state() -> None:
    from django.db.models import Count

    from carehub.pathways.effects import task_state_left
    from carehub.worklists.models import CareTask, Flag

    open_tasks = CareTask.objects.filter(status="open").select_related("enrolment")
    duplicates = (
        open_tasks.values("patient_id", "discipline", "title")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    assert list(duplicates) == []
    assert not open_tasks.filter(source_effect__isnull=False, state="").exists()
    left_behind = [
        (task.patient_id, task.title)
        for task in open_tasks.exclude(state="")
        if task_state_left(
            enrolment=task.enrolment,
            track=task.track,
            state=task.state,
            step_id=task.source_step_id,
        )
    ]
    assert left_behind == []
    # Closed ones stay in the history with their reason, e.g. the discharged patient's.
    closed = CareTask.objects.filter(status="cancelled", closed_reason__startswith="No longer")
    assert closed.filter(patient__mrn="RP-1017").exists()
    assert closed.filter(title="Book the stimulator trial", patient__mrn="RP-1007").exists()
    unresolved = Flag.objects.exclude(status="resolved")
    assert not unresolved.values("patient_id", "code").annotate(n=Count("id")).filter(n__gt=1)
    assert Flag.objects.filter(patient__mrn="RP-1015", code="naloxone_indicated").count() == 1


def test_a_sandbox_clinic_for_trainers_with_patients_at_intake() -> None:
    """Its own admin login moves its test clock; its patients wait at intake, on that clock."""
    from carehub.pathways.models import Enrolment

    sandbox = Clinic.objects.get(slug="sandbox")
    assert sandbox.is_sandbox
    assert sandbox.test_clock_at is not None
    admin = User.objects.get(username="sandbox-admin")
    assert (admin.clinic_id, admin.role) == (sandbox.pk, Role.CLINIC_ADMIN)
    assert admin.check_password("carehub-demo")
    enrolments = Enrolment.objects.filter(clinic=sandbox)
    assert enrolments.count() == 3
    for enrolment in enrolments:
        assert enrolment.configuration["ladder"]["state"] == "intake"
        assert enrolment.started_at == sandbox.test_clock_at
    # The real clinic's patients and the sandbox's never mix.
    assert not Patient.objects.filter(clinic__slug="riverside", mrn__startswith="SB-").exists()


def test_the_demo_patients_migrate_to_version_2_through_a_dry_run_report() -> None:
    """Last (it moves the demo's enrolments): the thirty patients on intractable-pain v1 move to
    v2, first through the dry-run report a clinician reads, then applied by a physician; a
    re-run migrates nothing twice."""
    import io

    from carehub.pathways.models import Enrolment, EnrolmentMigration

    running = Enrolment.objects.filter(
        clinic__slug="riverside", definition_key="intractable-pain", status__in=["active", "paused"]
    )
    assert Patient.objects.count() >= 30
    assert running.count() >= 29  # every patient but the one discharged
    assert set(running.values_list("definition_version", flat=True)) == {1}
    out = io.StringIO()
    call_command("pathway", "migrate", "intractable-pain", "1", "2", "--dry-run", stdout=out)
    report = out.getvalue()
    print(report)  # the report, as a clinician reads it (pytest -s)
    assert f"{running.count()} running enrolment(s):" in report
    assert "0 blocked" in report
    # The pump patient in the refill cycle: the clinic's 42-day interval moves the reminders.
    pump = report[report.index("(MRN RP-1008)") :].split("\n\n")[0]
    assert "[changes]" in pump.splitlines()[0]
    assert "Timer 'Pump refill" in pump
    assert set(running.values_list("definition_version", flat=True)) == {1}
    out = io.StringIO()
    call_command(
        "pathway", "migrate", "intractable-pain", "1", "2", "--user", "physician", "--approve",
        stdout=out,
    )  # fmt: skip
    assert f"{running.count()} migrated" in out.getvalue()
    assert set(running.values_list("definition_version", flat=True)) == {2}
    assert EnrolmentMigration.objects.count() == running.count()
    out = io.StringIO()
    call_command("pathway", "migrate", "intractable-pain", "1", "2", stdout=out)
    assert "0 migrated" in out.getvalue()
    assert EnrolmentMigration.objects.count() == running.count()
