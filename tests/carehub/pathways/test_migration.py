"""Migrating running enrolments to a new version on PostgreSQL: the dry run writes nothing, apply
migrates each classification as it should under the enrolment lock, a re-run migrates nothing
twice, and a rollback restores the previous version, states and timers exactly."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from carehub.accounts.models import User
from carehub.audit.models import Action, AuditEvent
from carehub.checkins.models import CheckinSeries
from carehub.core.exceptions import Conflict, InvalidInput, NotPermitted
from carehub.observations.services import procedure_record
from carehub.pathways import registry as registry_module
from carehub.pathways.effects import effect_execute
from carehub.pathways.migration import migration_apply, migration_dry_run, migration_rollback
from carehub.pathways.models import (
    Enrolment,
    EnrolmentMigration,
    MigrationStatus,
    OutboxEffect,
    PathwayStep,
    PathwayTimer,
    Proposal,
    ProposalStatus,
    TimerStatus,
)
from carehub.pathways.services import enrolment_pause, enrolment_start, pathway_dispatch
from carehub.patients.models import Patient
from carehub.patients.services import care_team_add, patient_register
from carehub.worklists.models import CareTask, TaskStatus
from tests.workflows.test_migration import V1, v2

pytestmark = pytest.mark.django_db

KEY = "mig"
V2 = v2(
    migrations=(
        "  - from: 1\n"
        "    description: The review is now an assessment, after 8 weeks of conventional care.\n"
        "    states: {ladder: {review: assessment}}\n"
        "    timers: recompute\n"
    ),
    timers=(
        "      - {name: review, state: conventional, after: 8w, event: review_due}\n"
        "      - {name: nudge, state: conventional, after: 2w, event: review_due}\n"
    ),
).replace(
    "      review: {}\n",
    "      assessment:\n        on_enter:\n"
    "          - create_task: {discipline: physician, title: Assess}\n",
)
V2 = V2.replace("to: review}", "to: assessment}").replace("from: review", "from: assessment")
V1_WITH_TASK = V1.replace(
    "      review: {}\n",
    "      review:\n        on_enter:\n"
    "          - create_task: {discipline: physician, title: Review}\n",
)


@pytest.fixture(autouse=True)
def published(tmp_path: Path, settings) -> Iterator[None]:  # type: ignore[no-untyped-def]
    (tmp_path / "mig.v1.yaml").write_text(V1_WITH_TASK)
    (tmp_path / "mig.v2.yaml").write_text(V2)
    settings.PATHWAY_DIRS = [*django_settings.PATHWAY_DIRS, tmp_path]
    registry_module.registry.cache_clear()
    yield
    registry_module.registry.cache_clear()


def patient_on_v1(clinic, staff: dict[str, User], mrn: str) -> Enrolment:  # type: ignore[no-untyped-def]
    patient = patient_register(
        clinic=clinic, mrn=mrn, given_name="Pat", family_name=mrn, time_zone="America/New_York"
    )
    care_team_add(patient=patient, staff=staff["coordinator"])
    return enrolment_start(
        patient=patient, definition_key=KEY, version=1, started_by=staff["coordinator"]
    )


def send(enrolment: Enrolment, event: str, user: User | None = None, **kwargs: Any) -> None:
    """Dispatch, then execute the step's effects as the worker would (tasks, check-ins)."""
    pathway_dispatch(
        enrolment_id=enrolment.pk, event=event, idempotency_key=f"{event}:{enrolment.pk}",
        user=user, **kwargs,
    )  # fmt: skip
    run_effects(enrolment)


def run_effects(enrolment: Enrolment) -> None:
    for pk in OutboxEffect.objects.filter(enrolment=enrolment, status="pending").values_list(
        "pk", flat=True
    ):
        effect_execute(effect_id=pk)


@pytest.fixture
def cohort(clinic, staff: dict[str, User]) -> dict[str, Enrolment]:  # type: ignore[no-untyped-def]
    """One enrolment of each classification."""
    automatic = patient_on_v1(clinic, staff, "A-1")  # intake: nothing changes
    changes = patient_on_v1(clinic, staff, "C-1")  # conventional: the review timer moves
    send(changes, "intake_done", staff["coordinator"])
    approval = patient_on_v1(clinic, staff, "N-1")  # review with a pending block proposal
    send(approval, "intake_done", staff["coordinator"])
    send(approval, "review_due")
    procedure_record(
        patient=approval.patient, procedure="mbb1", performed_at=timezone.now() - timedelta(days=1),
        relief_pct=90,
    )  # fmt: skip
    send(approval, "block_result", staff["physician"])
    assert Proposal.objects.filter(enrolment=approval, status=ProposalStatus.PENDING).count() == 1
    # Blocked: its stored configuration names a track neither version has. (The registry's
    # validation leaves no other way to reach a state without a mapping; the engine's tests
    # cover the rest of `blocked`.)
    blocked = patient_on_v1(clinic, staff, "B-1")
    Enrolment.objects.filter(pk=blocked.pk).update(
        configuration={**blocked.configuration,
                       "legacy": {"state": "old", "entered_at": timezone.now().isoformat()}}
    )  # fmt: skip
    paused = patient_on_v1(clinic, staff, "P-1")  # paused in conventional care: migrates too
    send(paused, "intake_done", staff["coordinator"])
    enrolment_pause(enrolment_id=paused.pk, reason="Hospital stay")
    return {"automatic": automatic, "changes": changes, "needs_approval": approval,
            "blocked": blocked, "paused": paused}  # fmt: skip


def classifications(report) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {row.patient.split("MRN ")[1][:-1]: row.classification for row in report.enrolments}


def test_the_dry_run_classifies_and_writes_nothing(cohort: dict[str, Enrolment]) -> None:
    with CaptureQueriesContext(connection) as queries:
        report = migration_dry_run(definition_key=KEY, from_version=1, to_version=2)
    writes = [q["sql"] for q in queries if q["sql"].split()[0].upper() in
              ("INSERT", "UPDATE", "DELETE")]  # fmt: skip
    assert writes == []
    assert classifications(report) == {
        "A-1": "automatic", "C-1": "changes", "N-1": "needs_approval", "B-1": "blocked",
        "P-1": "changes",
    }  # fmt: skip
    rows = {row.patient.split("MRN ")[1][:-1]: row for row in report.enrolments}
    # Times in the patient's own zone, named.
    assert any("'review_due'" in line and ("EST" in line or "EDT" in line)
               for line in rows["C-1"].lines)  # fmt: skip
    assert "with a pending proposal" in rows["N-1"].reasons[0]
    assert any("1 open task(s) of review (review) now belong to assessment" in line
               for line in rows["N-1"].lines)  # fmt: skip
    assert "track 'legacy' is not in version 2: no valid mapping" in rows["B-1"].reasons[0]
    text = report.text()
    assert "5 running enrolment(s): 1 automatic, 2 with changes, 1 needing" in text
    assert all(e.definition_version == 1 for e in Enrolment.objects.all())


def test_apply_migrates_what_it_may_and_a_rerun_migrates_nothing_twice(
    cohort: dict[str, Enrolment], staff: dict[str, User]
) -> None:
    changes = cohort["changes"]
    review = PathwayTimer.objects.get(enrolment=changes, key="ladder.review", status="pending")
    result = migration_apply(
        definition_key=KEY, from_version=1, to_version=2, user=staff["coordinator"]
    )
    assert sorted(result.migrated) == sorted(
        [cohort["automatic"].pk, changes.pk, cohort["paused"].pk]
    )
    assert result.needs_approval == [cohort["needs_approval"].pk]
    assert result.blocked == [cohort["blocked"].pk]

    changes.refresh_from_db()
    assert changes.definition_version == 2
    moved = PathwayTimer.objects.get(enrolment=changes, key="ladder.review", status="pending")
    entered = changes.configuration["ladder"]["entered_at"]
    assert moved.due_at == review.due_at - timedelta(weeks=4)
    assert (
        moved.due_at.isoformat()
        == (timezone.datetime.fromisoformat(entered) + timedelta(weeks=8)).isoformat()
    )
    step = PathwayStep.objects.filter(enrolment=changes).order_by("-pk").first()
    assert step is not None
    assert (step.event, step.outcome, step.sequence) == ("migration", "migrated", changes.version)
    assert "Version 1 → 2: changes" in step.explanation["summary"]
    assert step.explanation["migration"]["classification"] == "changes"
    # A paused enrolment's moved timer waits, suspended, for the resume.
    moved_paused = PathwayTimer.objects.get(enrolment=cohort["paused"], key="ladder.review",
                                            status__in=["pending", "suspended"])  # fmt: skip
    assert moved_paused.status == TimerStatus.SUSPENDED
    audited = AuditEvent.objects.filter(action=Action.ENROLMENT_MIGRATE)
    assert {a.patient_id for a in audited} == {
        cohort["automatic"].patient_id, changes.patient_id, cohort["paused"].patient_id
    }  # fmt: skip
    assert {a.actor_id for a in audited} == {staff["coordinator"].pk}

    steps = PathwayStep.objects.count()
    again = migration_apply(
        definition_key=KEY, from_version=1, to_version=2, user=staff["coordinator"],
        enrolment_ids=[cohort["automatic"].pk, changes.pk],
    )  # fmt: skip
    assert again.migrated == []
    assert sorted(again.already) == sorted([cohort["automatic"].pk, changes.pk])
    assert PathwayStep.objects.count() == steps
    assert EnrolmentMigration.objects.count() == 3


def test_needs_approval_is_migrated_only_with_a_physicians_approval(
    cohort: dict[str, Enrolment], staff: dict[str, User]
) -> None:
    enrolment = cohort["needs_approval"]
    with pytest.raises(NotPermitted):
        migration_apply(
            definition_key=KEY, from_version=1, to_version=2, user=staff["coordinator"],
            enrolment_ids=[enrolment.pk], approve=True,
        )  # fmt: skip
    result = migration_apply(
        definition_key=KEY, from_version=1, to_version=2, user=staff["physician"],
        enrolment_ids=[enrolment.pk], approve=True,
    )  # fmt: skip
    assert result.migrated == [enrolment.pk]
    enrolment.refresh_from_db()
    assert enrolment.state_of("ladder") == "assessment"
    proposal = Proposal.objects.get(enrolment=enrolment)
    assert proposal.status == ProposalStatus.WITHDRAWN
    assert "migrated to version 2" in proposal.reason
    task = CareTask.objects.get(enrolment=enrolment, title="Review")
    assert (task.status, task.state) == (TaskStatus.OPEN, "assessment")
    step = PathwayStep.objects.filter(enrolment=enrolment).order_by("-pk").first()
    assert step is not None
    assert "approved by a physician" in step.explanation["notes"]


def state_of(enrolment: Enrolment) -> dict[str, Any]:
    """Everything a rollback must restore exactly."""
    enrolment.refresh_from_db()
    return {
        "definition_version": enrolment.definition_version,
        "configuration": enrolment.configuration,
        "timers": sorted(
            PathwayTimer.objects.filter(
                enrolment=enrolment, status=TimerStatus.PENDING
            ).values_list(
                "pk", "key", "track", "state", "event", "due_at", "attempts", "next_attempt_at"
            )
        ),
        "proposals": sorted(
            Proposal.objects.filter(enrolment=enrolment).values_list(
                "pk", "status", "transition_id", "source", "target"
            )
        ),
        "tasks": sorted(
            CareTask.objects.filter(enrolment=enrolment).values_list("pk", "status", "state")
        ),
    }


def test_rollback_restores_version_states_and_timers_exactly(
    cohort: dict[str, Enrolment], staff: dict[str, User]
) -> None:
    for name in ("changes", "needs_approval", "paused"):
        enrolment = cohort[name]
        before = state_of(enrolment)
        migration_apply(definition_key=KEY, from_version=1, to_version=2, user=staff["physician"],
                        enrolment_ids=[enrolment.pk], approve=True)  # fmt: skip
        assert state_of(enrolment) != before
        done = migration_rollback(enrolment_id=enrolment.pk, user=staff["physician"])
        assert done.status == MigrationStatus.ROLLED_BACK
        assert state_of(enrolment) == before
        step = PathwayStep.objects.filter(enrolment=enrolment).order_by("-pk").first()
        assert step is not None
        assert step.event == "migration_rollback"
        assert AuditEvent.objects.filter(
            action=Action.ENROLMENT_MIGRATE_ROLLBACK, patient=enrolment.patient
        ).exists()
        # Rolled back: it can be migrated again, once.
        again = migration_apply(definition_key=KEY, from_version=1, to_version=2,
                                user=staff["physician"], enrolment_ids=[enrolment.pk],
                                approve=True)  # fmt: skip
        assert again.migrated == [enrolment.pk]
    with pytest.raises(Conflict, match="no migration to roll back"):
        migration_rollback(enrolment_id=cohort["automatic"].pk, user=None)


def test_a_rollback_after_another_change_is_refused(
    cohort: dict[str, Enrolment], staff: dict[str, User]
) -> None:
    enrolment = cohort["changes"]
    migration_apply(definition_key=KEY, from_version=1, to_version=2, user=None,
                    enrolment_ids=[enrolment.pk])  # fmt: skip
    send(enrolment, "review_due")
    with pytest.raises(Conflict, match="changed since it was migrated"):
        migration_rollback(enrolment_id=enrolment.pk, user=None)


def test_checkin_series_stopped_by_a_migration_go_through_the_outbox(
    clinic,
    staff: dict[str, User],
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    stopping = V2.replace("    timers: recompute\n", "    timers: recompute\n    checkins: stop\n")
    (tmp_path / "mig.v2.yaml").write_text(stopping)
    registry_module.registry.cache_clear()
    enrolment = patient_on_v1(clinic, staff, "S-1")
    send(enrolment, "intake_done", staff["coordinator"])
    assert CheckinSeries.objects.filter(enrolment=enrolment, stopped_at__isnull=True).count() == 1
    report = migration_dry_run(definition_key=KEY, from_version=1, to_version=2)
    (row,) = report.enrolments
    assert any("Check-ins 'peg_weekly'" in line and "stopped" in line for line in row.lines)
    migration_apply(definition_key=KEY, from_version=1, to_version=2, user=None)
    stop = OutboxEffect.objects.get(enrolment=enrolment, kind="stop_checkins")
    assert stop.step is not None
    assert stop.step.event == "migration"
    effect_execute(effect_id=stop.pk)
    stop.refresh_from_db()
    assert stop.last_error == ""
    assert CheckinSeries.objects.filter(enrolment=enrolment, stopped_at__isnull=True).count() == 0


def test_bad_input_is_refused(cohort: dict[str, Enrolment]) -> None:
    with pytest.raises(InvalidInput, match="no pathway 'nope'"):
        migration_dry_run(definition_key="nope", from_version=1, to_version=2)
    with pytest.raises(InvalidInput, match="does not say how to migrate from version 2"):
        migration_dry_run(definition_key=KEY, from_version=2, to_version=2)


def test_the_command_reports_applies_and_rolls_back(
    cohort: dict[str, Enrolment], staff: dict[str, User], tmp_path: Path
) -> None:
    out = io.StringIO()
    call_command("pathway", "migrate", KEY, "1", "2", "--dry-run", "--json",
                 str(tmp_path / "r.json"), stdout=out)  # fmt: skip
    assert "1 automatic, 2 with changes, 1 needing a clinician's approval, 1 blocked" in (
        out.getvalue()
    )
    assert "[needs approval]" in out.getvalue()
    assert '"classification": "changes"' in (tmp_path / "r.json").read_text()
    assert all(e.definition_version == 1 for e in Enrolment.objects.all())
    out = io.StringIO()
    call_command("pathway", "migrate", KEY, "1", "2", "--user", "coordinator", stdout=out)
    assert "3 migrated" in out.getvalue()
    assert "1 waiting for a clinician's approval" in (out.getvalue())
    out = io.StringIO()
    public_id = str(cohort["changes"].public_id)
    call_command("pathway", "migrate", KEY, "1", "2", "--rollback", "--enrolment", public_id,
                 stdout=out)  # fmt: skip
    assert "back on version 1" in out.getvalue()
    with pytest.raises(CommandError, match="no pathway 'nope'"):
        call_command("pathway", "migrate", "nope", "1", "2", "--dry-run")
    with pytest.raises(CommandError, match="no user"):
        call_command("pathway", "migrate", KEY, "1", "2", "--user", "ghost")
    with pytest.raises(CommandError, match="Only a physician"):
        call_command("pathway", "migrate", KEY, "1", "2", "--approve", "--user", "coordinator")
    assert Patient.objects.count() == 5


def test_an_event_sent_under_the_key_migration_does_not_hide_the_enrolment(
    clinic,
    staff: dict[str, User],  # type: ignore[no-untyped-def]
) -> None:
    """The migration's lock is not an event's: no processed key can make it find nothing."""
    enrolment = patient_on_v1(clinic, staff, "K-1")
    pathway_dispatch(
        enrolment_id=enrolment.pk, event="intake_done", idempotency_key="migration",
        user=staff["coordinator"],
    )  # fmt: skip
    result = migration_apply(
        definition_key=KEY, from_version=1, to_version=2, user=staff["coordinator"],
        enrolment_ids=[enrolment.pk],
    )  # fmt: skip
    assert result.migrated == [enrolment.pk]
