"""Tasks belong to what created them: a pathway task belongs to a state of its track and is closed
(cancelled, kept with the reason) when the track leaves that state or the pathway ends, in the
dispatch's own transaction; an effect that runs after its state was left creates the task closed.
An equal task is not opened twice, nor a flag raised twice while unresolved."""

from __future__ import annotations

import importlib
import threading
from datetime import date, timedelta
from typing import Any

import pytest
from django.apps import apps as django_apps
from django.db import IntegrityError, connection, connections, transaction
from django.utils import timezone

from carehub.accounts.models import Role, User
from carehub.accounts.services import staff_create
from carehub.clinics.services import clinic_create
from carehub.observations.services import (
    failed_treatment_record,
    medication_record,
    pain_onset_record,
    score_record,
)
from carehub.pathways.effects import effect_execute
from carehub.pathways.models import (
    EffectStatus,
    Enrolment,
    EnrolmentStatus,
    OutboxEffect,
    PathwayStep,
)
from carehub.pathways.services import (
    DispatchRequest,
    dispatch_in_transaction,
    enrolment_discharge,
    enrolment_start,
    pathway_dispatch,
)
from carehub.patients.models import Patient
from carehub.patients.services import care_team_add, patient_register
from carehub.worklists.models import CareTask, Flag, FlagStatus, TaskStatus
from carehub.worklists.services import (
    care_task_complete,
    care_task_create,
    flag_raise,
    flag_set_status,
)

INTAKE = "Complete the intake: baseline PEG, PHQ-9 and GAD-7, pain history, failed treatments"
REFERRAL = "Refer to physical therapy and to CBT for chronic pain"
CBT_REMINDER = "No CBT session logged for a week: contact the patient and rebook"


@pytest.fixture
def staff(db: None) -> dict[str, User]:
    clinic = clinic_create(name="Lifecycle Clinic", slug="life", time_zone="Europe/London")
    return {
        role.value: staff_create(clinic=clinic, username=role.value, role=role, password=None)
        for role in Role
        if role != Role.PATIENT
    }


@pytest.fixture
def patient(staff: dict[str, User]) -> Patient:
    patient = patient_register(
        clinic=staff["coordinator"].clinic, mrn="L-1", given_name="Lee", family_name="Cycle",
        time_zone="Europe/London",
    )  # fmt: skip
    for role in ("coordinator", "physician", "psychologist", "pharmacist"):
        care_team_add(patient=patient, staff=staff[role])
    return patient


@pytest.fixture
def enrolment(patient: Patient, staff: dict[str, User]) -> Enrolment:
    return enrolment_start(
        patient=patient, definition_key="intractable-pain", started_by=staff["coordinator"]
    )


def eligible(patient: Patient) -> None:
    """What the intractable-pain intake needs to move on to conventional care."""
    now = timezone.now()
    pain_onset_record(patient=patient, onset=date(2023, 1, 1))
    for treatment in ("gabapentinoid", "snri"):
        failed_treatment_record(
            patient=patient, treatment_class=treatment, reason="insufficient_effect",
            observed_at=now,
        )  # fmt: skip
    for instrument, value in (("peg", 7.0), ("phq9", 9), ("gad7", 7)):
        score_record(
            patient=patient, instrument=instrument, score=value, observed_at=now, is_baseline=True
        )


def run_effects(enrolment: Enrolment) -> None:
    pending = OutboxEffect.objects.filter(enrolment=enrolment, status=EffectStatus.PENDING)
    for pk in pending.order_by("pk").values_list("pk", flat=True):
        assert effect_execute(effect_id=pk) == EffectStatus.DONE


def send(enrolment: Enrolment, event: str, key: str, user: User | None = None) -> PathwayStep:
    return pathway_dispatch(
        enrolment_id=enrolment.pk, event=event, idempotency_key=key, user=user
    ).step


def task(enrolment: Enrolment, title: str, **filters: Any) -> CareTask:
    return CareTask.objects.get(enrolment=enrolment, title=title, **filters)


# --- tasks close when their state is left ---------------------------------------------------------


@pytest.mark.django_db
def test_the_intake_task_closes_when_the_ladder_leaves_intake(
    enrolment: Enrolment, staff: dict[str, User]
) -> None:
    run_effects(enrolment)
    intake = task(enrolment, INTAKE)
    start = PathwayStep.objects.get(enrolment=enrolment, event="started")
    assert (intake.status, intake.track, intake.state) == (TaskStatus.OPEN, "ladder", "intake")
    assert intake.source_step_id == start.pk
    eligible(enrolment.patient)

    step = send(enrolment, "intake_completed", "intake", staff["coordinator"])

    intake.refresh_from_db()  # kept in history, not deleted
    assert intake.status == TaskStatus.CANCELLED
    assert intake.closed_reason == (
        "No longer needed: Escalation ladder left 'Intake' (intake_completed)"
    )
    assert (intake.completed_at, intake.completed_by_id) == (step.at, None)
    # The transition's own task belongs to the state it entered.
    run_effects(enrolment)
    referral = task(enrolment, REFERRAL)
    assert (referral.status, referral.state, referral.source_step_id) == (
        TaskStatus.OPEN, "conventional", step.pk,
    )  # fmt: skip


@pytest.mark.django_db
def test_a_task_done_stays_done_and_other_tracks_tasks_stay_open(
    enrolment: Enrolment, staff: dict[str, User]
) -> None:
    eligible(enrolment.patient)
    send(enrolment, "intake_completed", "intake")
    send(enrolment, "cbt_started", "cbt", staff["psychologist"])
    send(enrolment, "cbt_session_due", "due-1")
    run_effects(enrolment)
    referral = task(enrolment, REFERRAL)
    care_task_complete(task=referral, user=staff["coordinator"])

    send(enrolment, "neuromodulation_referred", "neuromod", staff["physician"])  # leaves it

    referral.refresh_from_db()
    assert (referral.status, referral.closed_reason) == (TaskStatus.DONE, "")
    assert task(enrolment, CBT_REMINDER).status == TaskStatus.OPEN  # the CBT track stayed


@pytest.mark.django_db
def test_a_reminder_raised_in_a_state_closes_when_the_state_is_re_entered(
    enrolment: Enrolment, staff: dict[str, User]
) -> None:
    """The weekly CBT reminder is raised by an internal transition while in a phase; logging a
    session re-enters the phase (restarting its timer), so the reminder is no longer needed."""
    send(enrolment, "cbt_started", "cbt", staff["psychologist"])
    send(enrolment, "cbt_session_due", "due-1")
    run_effects(enrolment)
    reminder = task(enrolment, CBT_REMINDER)
    assert (reminder.status, reminder.track, reminder.state) == ("open", "cbt", "initial_phase")

    send(enrolment, "cbt_session_logged", "session-1", staff["psychologist"])

    reminder.refresh_from_db()
    assert reminder.status == TaskStatus.CANCELLED
    assert reminder.closed_reason == (
        "No longer needed: CBT for chronic pain re-entered 'Initial phase (sessions 1-3)' "
        "(cbt_session_logged)"
    )


@pytest.mark.django_db
def test_discharge_closes_every_pathway_task_and_leaves_the_others(
    enrolment: Enrolment, staff: dict[str, User]
) -> None:
    run_effects(enrolment)
    # A task decided before tasks knew their state (its effect has no state): closed at the end.
    legacy = OutboxEffect.objects.create(
        enrolment=enrolment, kind="create_task", idempotency_key="legacy",
        available_at=timezone.now(),
        payload={"kind": "create_task", "track": "ladder", "discipline": "physician",
                 "title": "Review the referral letter", "due_at": None, "priority": "routine"},
    )  # fmt: skip
    run_effects(enrolment)
    # Not a pathway effect's task: a progress note is still owed after discharge.
    note = care_task_create(
        enrolment=enrolment, discipline="psychologist", title="Progress note overdue",
        due_at=None, dedupe_key="session-notes:1",
    )  # fmt: skip

    result = enrolment_discharge(
        enrolment=enrolment, reason="Moved away", idempotency_key="bye", user=staff["coordinator"]
    )

    assert result.enrolment.status == EnrolmentStatus.COMPLETED
    closed = {
        t.title: (t.status, t.closed_reason, t.completed_at)
        for t in CareTask.objects.filter(enrolment=enrolment).exclude(pk=note.pk)
    }
    assert closed == {
        INTAKE: (
            TaskStatus.CANCELLED,
            "No longer needed: Escalation ladder left 'Intake' (discharge_recorded)",
            result.step.at,
        ),
        "Review the referral letter": (
            TaskStatus.CANCELLED,
            "No longer needed: the pathway ended (discharge_recorded)",
            result.step.at,
        ),
    }
    assert CareTask.objects.get(source_effect=legacy).state == ""
    note.refresh_from_db()
    assert note.status == TaskStatus.OPEN


# --- the effect runs after its state was left -----------------------------------------------------


@pytest.mark.django_db
def test_a_task_whose_state_was_left_before_its_effect_ran_is_created_closed(
    enrolment: Enrolment, staff: dict[str, User]
) -> None:
    eligible(enrolment.patient)
    send(enrolment, "intake_completed", "intake", staff["coordinator"])  # before any effect ran

    run_effects(enrolment)

    intake = task(enrolment, INTAKE)
    assert intake.status == TaskStatus.CANCELLED
    assert intake.closed_reason == (
        "No longer needed: Escalation ladder had left 'Intake' before the task was created"
    )
    assert intake.completed_at is not None
    assert task(enrolment, REFERRAL).status == TaskStatus.OPEN


@pytest.mark.django_db
def test_a_reminder_whose_state_was_re_entered_before_its_effect_ran_is_created_closed(
    enrolment: Enrolment, staff: dict[str, User]
) -> None:
    send(enrolment, "cbt_started", "cbt", staff["psychologist"])
    send(enrolment, "cbt_session_due", "due-1")
    # A session logged before the reminder's effect ran: the track is back in the same state,
    # but in a new visit of it.
    send(enrolment, "cbt_session_logged", "session-1", staff["psychologist"])
    enrolment.refresh_from_db()
    assert enrolment.state_of("cbt") == "initial_phase"

    run_effects(enrolment)

    reminder = task(enrolment, CBT_REMINDER)
    assert reminder.status == TaskStatus.CANCELLED
    assert "had left 'Initial phase (sessions 1-3)'" in reminder.closed_reason


@pytest.mark.django_db(transaction=True)
def test_a_dispatch_leaving_the_state_while_the_effect_runs_closes_the_task(
    staff: dict[str, User], patient: Patient
) -> None:
    """The dispatch's close cannot see the task the effect has not committed, and the effect
    cannot see the dispatch's step until it commits: after its commit the effect waits for the
    change in progress and looks again."""
    enrolment = enrolment_start(patient=patient, definition_key="intractable-pain")
    effect = OutboxEffect.objects.get(enrolment=enrolment, kind="create_task")
    eligible(patient)
    moved, release = threading.Event(), threading.Event()

    def leave_intake_and_hold() -> None:
        try:
            with transaction.atomic():
                dispatch_in_transaction(
                    DispatchRequest(
                        enrolment_id=enrolment.pk, event="intake_completed",
                        idempotency_key="intake",
                    )
                )  # fmt: skip
                moved.set()
                release.wait(10)
        finally:
            connections.close_all()

    def release_once_the_effect_waits() -> None:
        """The dispatch commits only once the effect waits for its lock, however loaded the
        machine is (a fixed delay let a slow effect start after the commit)."""
        try:
            with connections["default"].cursor() as cursor:
                for _ in range(1000):
                    cursor.execute(
                        "SELECT count(*) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                    )
                    if cursor.fetchone()[0]:
                        break
                    release.wait(0.01)
        finally:
            release.set()
            connections.close_all()

    dispatcher = threading.Thread(target=leave_intake_and_hold)
    dispatcher.start()
    releaser = threading.Thread(target=release_once_the_effect_waits)
    try:
        assert moved.wait(10)
        releaser.start()
        assert effect_execute(effect_id=effect.pk) == EffectStatus.DONE
    finally:
        release.set()
        dispatcher.join()
        if releaser.is_alive():
            releaser.join()
    intake = CareTask.objects.get(source_effect=effect)
    assert intake.status == TaskStatus.CANCELLED
    assert "had left 'Intake'" in intake.closed_reason


# --- an equal task is not opened twice ------------------------------------------------------------


@pytest.mark.django_db
def test_a_repeated_cbt_reminder_does_not_open_a_second_task(
    enrolment: Enrolment, staff: dict[str, User]
) -> None:
    send(enrolment, "cbt_started", "cbt", staff["psychologist"])
    for n in range(3):  # the reminder's timer event, three times in the same phase
        send(enrolment, "cbt_session_due", f"due-{n}")
    run_effects(enrolment)
    reminders = OutboxEffect.objects.filter(enrolment=enrolment, payload__title=CBT_REMINDER)
    assert [effect.status for effect in reminders] == [EffectStatus.DONE] * 3
    [reminder] = CareTask.objects.filter(enrolment=enrolment, title=CBT_REMINDER)
    assert reminder.status == TaskStatus.OPEN

    care_task_complete(task=reminder, user=staff["psychologist"])  # a done one does not count
    send(enrolment, "cbt_session_due", "due-again")
    run_effects(enrolment)
    assert sorted(
        CareTask.objects.filter(enrolment=enrolment, title=CBT_REMINDER).values_list(
            "status", flat=True
        )
    ) == [TaskStatus.DONE, TaskStatus.OPEN]


@pytest.mark.django_db
def test_the_database_refuses_a_second_equal_open_task(enrolment: Enrolment) -> None:
    first = care_task_create(
        enrolment=enrolment, discipline="coordinator", title="Call", due_at=None
    )
    assert (
        care_task_create(enrolment=enrolment, discipline="coordinator", title="Call", due_at=None)
        == first
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        CareTask.objects.create(
            clinic_id=enrolment.clinic_id, patient_id=enrolment.patient_id, enrolment=enrolment,
            discipline="coordinator", title="Call",
        )  # fmt: skip
    other = care_task_create(enrolment=enrolment, discipline="physician", title="Call", due_at=None)
    assert other != first


# --- flags ----------------------------------------------------------------------------------------


def raise_flag(enrolment: Enrolment, severity: str = "warning", code: str = "naloxone") -> Flag:
    return flag_raise(
        enrolment=enrolment, code=code, severity=severity, message=f"{code} ({severity})",
        raised_at=timezone.now(),
    )  # fmt: skip


@pytest.mark.django_db
def test_a_flag_is_not_raised_twice_while_unresolved(
    enrolment: Enrolment, staff: dict[str, User]
) -> None:
    first = raise_flag(enrolment)
    assert raise_flag(enrolment) == first
    assert raise_flag(enrolment, code="other") != first
    flag_set_status(
        flag=first, status=FlagStatus.ACKNOWLEDGED, user=staff["physician"], note="Called"
    )
    assert raise_flag(enrolment) == first  # acknowledged is not resolved
    flag_set_status(
        flag=first, status=FlagStatus.RESOLVED, user=staff["physician"], outcome="Settled"
    )
    again = raise_flag(enrolment)  # a resolved flag does not block a new one
    assert again != first
    assert (again.status, Flag.objects.filter(code="naloxone").count()) == (FlagStatus.OPEN, 2)
    with pytest.raises(IntegrityError), transaction.atomic():
        Flag.objects.create(
            clinic_id=enrolment.clinic_id, patient_id=enrolment.patient_id, code="naloxone",
            severity="info", message="again", raised_at=timezone.now(),
        )  # fmt: skip


@pytest.mark.django_db
def test_a_more_severe_raise_raises_the_open_flags_severity_never_lowers_it(
    enrolment: Enrolment,
) -> None:
    flag = raise_flag(enrolment, "warning")
    assert raise_flag(enrolment, "info").severity == "warning"
    assert raise_flag(enrolment, "urgent") == flag
    flag.refresh_from_db()
    assert flag.severity == "urgent"
    raise_flag(enrolment, "warning")
    flag.refresh_from_db()
    assert flag.severity == "urgent"


@pytest.mark.django_db(transaction=True)
def test_two_raises_at_once_make_one_flag(patient: Patient) -> None:
    """The second raise does not see the first (not committed yet); the unique index makes it
    wait for it, and its IntegrityError returns the flag the first committed."""
    enrolment = enrolment_start(patient=patient, definition_key="intractable-pain")
    raised, release = threading.Event(), threading.Event()
    holder: dict[str, Flag] = {}

    def raise_and_hold() -> None:
        try:
            with transaction.atomic():
                holder["flag"] = raise_flag(enrolment, "warning")
                raised.set()
                release.wait(10)
        finally:
            connections.close_all()

    first = threading.Thread(target=raise_and_hold)
    first.start()
    releaser = threading.Timer(0.5, release.set)
    try:
        assert raised.wait(10)
        releaser.start()
        second = raise_flag(enrolment, "urgent")
    finally:
        release.set()
        first.join()
        releaser.cancel()
    assert second.pk == holder["flag"].pk
    assert Flag.objects.filter(patient=patient).count() == 1
    assert Flag.objects.get(patient=patient).severity == "urgent"


@pytest.mark.django_db
def test_the_naloxone_check_raises_one_flag_and_one_task(
    enrolment: Enrolment, staff: dict[str, User]
) -> None:
    """Starting opioids and then recording the medication both run the overdose-risk check."""
    patient = enrolment.patient
    medication_record(
        patient=patient, drug="oxycodone", daily_dose=60, unit="mg", observed_at=timezone.now()
    )
    send(enrolment, "opioid_started", "opioids", staff["physician"])
    send(enrolment, "medication_recorded", "medication", staff["pharmacist"])
    run_effects(enrolment)
    assert OutboxEffect.objects.filter(enrolment=enrolment, kind="raise_flag").count() == 2
    [flag] = Flag.objects.filter(patient=patient, code="naloxone_indicated")
    assert flag.status == FlagStatus.OPEN
    [offer] = CareTask.objects.filter(enrolment=enrolment, title="Offer naloxone")
    assert (offer.status, offer.state) == (TaskStatus.OPEN, "opioid_initiation")


@pytest.mark.django_db
@pytest.mark.db_owner  # drops the unique indexes: the owner's right
def test_the_migration_merges_the_duplicates_already_open(enrolment: Enrolment) -> None:
    """Existing duplicates are merged before the unique indexes are built (the indexes are
    dropped inside this test's transaction to make some, and come back with its rollback)."""
    migration = importlib.import_module(
        "carehub.worklists.migrations.0004_task_origin_and_open_uniqueness"
    )
    with connection.schema_editor() as editor:
        for model, name in (
            (CareTask, "task_one_open_per_title"), (Flag, "flag_one_unresolved_per_code"),
        ):  # fmt: skip
            editor.remove_constraint(
                model, next(c for c in model._meta.constraints if c.name == name)
            )
    now = timezone.now()
    tasks = [
        CareTask.objects.create(
            clinic_id=enrolment.clinic_id,
            patient_id=enrolment.patient_id,
            enrolment=enrolment,
            discipline="psychologist",
            title=CBT_REMINDER,
        )
        for _ in range(3)
    ]
    flags = [
        Flag.objects.create(
            clinic_id=enrolment.clinic_id,
            patient_id=enrolment.patient_id,
            code="naloxone",
            severity=severity,
            message="Naloxone",
            raised_at=now + timedelta(minutes=minutes),
        )
        for minutes, severity in ((0, "warning"), (5, "urgent"))
    ]

    migration.merge_duplicates(django_apps, None)

    for item in (*tasks, *flags):
        item.refresh_from_db()
    assert [t.status for t in tasks] == [
        TaskStatus.OPEN,
        TaskStatus.CANCELLED,
        TaskStatus.CANCELLED,
    ]
    assert tasks[1].closed_reason == f"Duplicate of the open task #{tasks[0].pk}"
    assert [(f.status, f.severity) for f in flags] == [
        (FlagStatus.OPEN, "urgent"), (FlagStatus.RESOLVED, "urgent"),
    ]  # fmt: skip
