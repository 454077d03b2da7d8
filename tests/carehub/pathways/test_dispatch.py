"""pathway_dispatch on real PostgreSQL: state, log, timers, proposals, outbox, idempotency."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.db import DatabaseError, transaction
from django.utils import timezone

from carehub.accounts.models import User
from carehub.clinics.models import ClinicThreshold
from carehub.core.exceptions import Conflict, InvalidInput, NotPermitted
from carehub.observations.services import (
    failed_treatment_record,
    pain_onset_record,
)
from carehub.pathways.models import (
    EffectStatus,
    Enrolment,
    EnrolmentStatus,
    OutboxEffect,
    PathwayStep,
    PathwayTimer,
    ProcessedEvent,
    Proposal,
    ProposalStatus,
    TimerStatus,
)
from carehub.pathways.services import (
    enrolment_pause,
    enrolment_resume,
    enrolment_start,
    pathway_dispatch,
    proposal_approve,
    proposal_reject,
)
from carehub.patients.models import Patient

pytestmark = pytest.mark.django_db


def make_eligible(patient: Patient) -> None:
    today = timezone.now()
    pain_onset_record(patient=patient, onset=date(2024, 1, 1))
    for treatment in ("gabapentinoid", "snri"):
        failed_treatment_record(
            patient=patient, treatment_class=treatment, reason="insufficient_effect",
            observed_at=today,
        )  # fmt: skip


def to_conventional(enrolment: Enrolment, user: User) -> None:
    make_eligible(enrolment.patient)
    result = pathway_dispatch(
        enrolment_id=enrolment.pk, event="intake_complete", idempotency_key="intake", user=user
    )
    assert result.outcome == "transitioned"


def test_start_persists_configuration_log_timers_and_outbox(enrolment: Enrolment) -> None:
    assert enrolment.definition_key == "stepped-care-example"
    assert enrolment.definition_version == 1
    assert enrolment.status == EnrolmentStatus.ACTIVE
    assert {t: v["state"] for t, v in enrolment.configuration.items()} == {
        "ladder": "intake", "pt": "active", "cbt": "evaluation",
    }  # fmt: skip
    [step] = PathwayStep.objects.filter(enrolment=enrolment)
    assert (step.event, step.outcome, step.sequence) == ("started", "started", 1)
    [timer] = PathwayTimer.objects.filter(enrolment=enrolment)
    assert (timer.key, timer.status) == ("pt.programme_review", TimerStatus.PENDING)
    assert timer.due_at == enrolment.started_at + timedelta(weeks=6)
    [effect] = OutboxEffect.objects.filter(enrolment=enrolment)
    assert effect.kind == "create_task"
    assert effect.payload["discipline"] == "physical_therapist"


def test_second_open_enrolment_on_the_same_pathway_is_refused(
    enrolment: Enrolment, patient: Patient
) -> None:
    with pytest.raises(Conflict):
        enrolment_start(patient=patient, definition_key="stepped-care-example")


def test_unknown_pathway_is_invalid_input(patient: Patient) -> None:
    with pytest.raises(InvalidInput):
        enrolment_start(patient=patient, definition_key="no-such-pathway")
    assert not Enrolment.objects.exists()


def test_dispatch_moves_logs_explanation_and_writes_outbox(
    enrolment: Enrolment, staff: dict[str, User]
) -> None:
    to_conventional(enrolment, staff["coordinator"])
    enrolment.refresh_from_db()
    assert enrolment.state_of("ladder") == "conventional"
    assert enrolment.version == 2
    step = PathwayStep.objects.filter(enrolment=enrolment).latest("id")
    assert step.actor == staff["coordinator"]
    assert step.actor_role == "coordinator"
    [transition] = step.transitions
    assert (transition["source"], transition["target"]) == ("intake", "conventional")
    check = step.explanation["checks"][0]
    assert check["expression"] == "pain.months >= 6 and failed_treatment_classes >= 2"
    readings = {r["name"]: r["value"] for r in check["readings"]}
    assert readings["failed_treatment_classes"] == 2
    assert readings["pain.months"] >= 6
    assert "held" in step.explanation["summary"]
    timer = PathwayTimer.objects.get(enrolment=enrolment, key="ladder.conventional_review")
    assert timer.status == TimerStatus.PENDING
    assert OutboxEffect.objects.filter(enrolment=enrolment, kind="start_checkins").count() == 1


def test_a_decision_that_changes_nothing_is_logged_with_its_explanation(
    enrolment: Enrolment, staff: dict[str, User]
) -> None:
    result = pathway_dispatch(
        enrolment_id=enrolment.pk, event="intake_complete", idempotency_key="k1",
        user=staff["coordinator"],
    )  # fmt: skip
    assert result.outcome == "no_change"
    enrolment.refresh_from_db()
    assert enrolment.version == 1
    step = PathwayStep.objects.filter(enrolment=enrolment).latest("id")
    assert step.outcome == "no_change"
    assert "failed_treatment_classes = 0" in step.explanation["summary"]
    assert "missing: pain.months" in step.explanation["summary"]


def test_redelivered_event_key_changes_nothing(
    enrolment: Enrolment, staff: dict[str, User]
) -> None:
    make_eligible(enrolment.patient)
    first = pathway_dispatch(
        enrolment_id=enrolment.pk, event="intake_complete", idempotency_key="once"
    )
    counts = (
        PathwayStep.objects.count(),
        OutboxEffect.objects.count(),
        PathwayTimer.objects.count(),
    )
    again = pathway_dispatch(
        enrolment_id=enrolment.pk, event="intake_complete", idempotency_key="once"
    )
    assert again.replayed
    assert again.step == first.step
    assert again.outcome == first.outcome
    assert (
        PathwayStep.objects.count(),
        OutboxEffect.objects.count(),
        PathwayTimer.objects.count(),
    ) == counts
    assert ProcessedEvent.objects.filter(enrolment=enrolment, idempotency_key="once").count() == 1
    with pytest.raises(Conflict, match="already used"):
        pathway_dispatch(enrolment_id=enrolment.pk, event="discharge", idempotency_key="once")


def test_stale_expected_version_is_a_conflict_carrying_the_current_state(
    enrolment: Enrolment,
) -> None:
    with pytest.raises(Conflict) as raised:
        pathway_dispatch(
            enrolment_id=enrolment.pk, event="discharge", idempotency_key="k", expected_version=7
        )
    assert raised.value.extra["current"]["version"] == 1
    assert raised.value.extra["current"]["states"]["ladder"] == "intake"
    enrolment.refresh_from_db()
    assert enrolment.state_of("ladder") == "intake"


def test_unknown_event_is_invalid_input_and_changes_nothing(enrolment: Enrolment) -> None:
    with pytest.raises(InvalidInput):
        pathway_dispatch(enrolment_id=enrolment.pk, event="teleport", idempotency_key="k")
    assert not ProcessedEvent.objects.exists()
    assert PathwayStep.objects.count() == 1


def test_escalation_is_proposed_and_needs_an_allowed_role_to_approve(
    enrolment: Enrolment, staff: dict[str, User]
) -> None:
    to_conventional(enrolment, staff["coordinator"])
    result = pathway_dispatch(
        enrolment_id=enrolment.pk, event="esi_requested", idempotency_key="esi-1",
        user=staff["physician"],
    )  # fmt: skip
    assert result.outcome == "proposed"
    proposal = Proposal.objects.get(enrolment=enrolment)
    assert proposal.status == ProposalStatus.PENDING
    assert proposal.roles == ["physician"]
    assert proposal.evidence["result"] is True
    assert OutboxEffect.objects.filter(kind="propose_escalation").count() == 1

    with pytest.raises(NotPermitted):
        proposal_approve(proposal=proposal, user=staff["coordinator"], idempotency_key="a1")
    enrolment.refresh_from_db()
    assert enrolment.state_of("ladder") == "conventional"

    approved = proposal_approve(proposal=proposal, user=staff["physician"], idempotency_key="a2")
    assert approved.outcome == "transitioned"
    enrolment.refresh_from_db()
    assert enrolment.state_of("ladder") == "esi"
    proposal.refresh_from_db()
    assert (proposal.status, proposal.decided_by) == (ProposalStatus.APPROVED, staff["physician"])
    step = PathwayStep.objects.filter(enrolment=enrolment).latest("id")
    assert step.transitions[0]["proposal_id"] == proposal.proposal_id
    assert step.transitions[0]["approved_by"]["role"] == "physician"


def test_rejection_records_the_reason(enrolment: Enrolment, staff: dict[str, User]) -> None:
    to_conventional(enrolment, staff["coordinator"])
    pathway_dispatch(enrolment_id=enrolment.pk, event="esi_requested", idempotency_key="esi")
    proposal = Proposal.objects.get(enrolment=enrolment)
    with pytest.raises(InvalidInput):
        proposal_reject(
            proposal=proposal, user=staff["physician"], idempotency_key="r0", reason=" "
        )
    proposal_reject(
        proposal=proposal, user=staff["physician"], idempotency_key="r1",
        reason="No radicular signs on examination",
    )  # fmt: skip
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.REJECTED
    assert proposal.reason == "No radicular signs on examination"
    enrolment.refresh_from_db()
    assert enrolment.state_of("ladder") == "conventional"
    with pytest.raises(Conflict):
        proposal_approve(proposal=proposal, user=staff["physician"], idempotency_key="a")


def test_clinic_threshold_overrides_default_and_its_source_is_explained(
    enrolment: Enrolment, staff: dict[str, User]
) -> None:
    ClinicThreshold.objects.create(
        clinic=enrolment.clinic, pathway_key="stepped-care-example", name="esi_max_per_year",
        value=0, source="Clinic policy 2026-03: no injections this year",
    )  # fmt: skip
    to_conventional(enrolment, staff["coordinator"])
    result = pathway_dispatch(enrolment_id=enrolment.pk, event="esi_requested", idempotency_key="e")
    assert result.outcome == "no_change"
    [check] = result.step.explanation["checks"]
    readings = {r["name"]: (r["value"], r["source"]) for r in check["readings"]}
    assert readings["threshold.esi_max_per_year"] == (
        0, "Clinic policy 2026-03: no injections this year",
    )  # fmt: skip


def test_pause_suspends_timers_refuses_events_and_resume_shifts_them(
    enrolment: Enrolment, staff: dict[str, User]
) -> None:
    timer = PathwayTimer.objects.get(enrolment=enrolment)
    due = timer.due_at
    entered = enrolment.configuration["pt"]["entered_at"]
    t0 = timezone.now()
    enrolment_pause(
        enrolment_id=enrolment.pk, reason="Hospital admission", user=staff["coordinator"], at=t0
    )
    timer.refresh_from_db()
    assert timer.status == TimerStatus.SUSPENDED
    with pytest.raises(Conflict, match="paused"):
        pathway_dispatch(enrolment_id=enrolment.pk, event="discharge", idempotency_key="d")
    with pytest.raises(Conflict):
        enrolment_pause(enrolment_id=enrolment.pk, reason="again")

    enrolment_resume(
        enrolment_id=enrolment.pk, user=staff["coordinator"], at=t0 + timedelta(days=10)
    )
    timer.refresh_from_db()
    assert timer.status == TimerStatus.PENDING
    assert timer.due_at == due + timedelta(days=10)
    enrolment.refresh_from_db()
    assert enrolment.status == EnrolmentStatus.ACTIVE
    from datetime import datetime

    shifted = datetime.fromisoformat(enrolment.configuration["pt"]["entered_at"])
    assert shifted == datetime.fromisoformat(entered) + timedelta(days=10)
    events = list(PathwayStep.objects.filter(enrolment=enrolment).values_list("event", flat=True))
    assert events == ["started", "paused", "resumed"]


def test_pause_needs_a_reason(enrolment: Enrolment) -> None:
    with pytest.raises(InvalidInput):
        enrolment_pause(enrolment_id=enrolment.pk, reason="  ")


def test_discharge_completes_the_enrolment_and_closes_everything(enrolment: Enrolment) -> None:
    result = pathway_dispatch(enrolment_id=enrolment.pk, event="discharge", idempotency_key="bye")
    assert result.outcome == "transitioned"
    enrolment.refresh_from_db()
    assert enrolment.status == EnrolmentStatus.COMPLETED
    assert enrolment.completed_at is not None
    assert not PathwayTimer.objects.filter(enrolment=enrolment, status=TimerStatus.PENDING).exists()
    with pytest.raises(Conflict, match="ended"):
        pathway_dispatch(enrolment_id=enrolment.pk, event="discharge", idempotency_key="again")
    # A new enrolment on the same pathway is allowed once the old one has ended.
    enrolment_start(patient=enrolment.patient, definition_key="stepped-care-example")


def test_the_step_log_is_append_only(enrolment: Enrolment) -> None:
    step = PathwayStep.objects.get(enrolment=enrolment)
    # The application's role has no UPDATE or DELETE on the table; the trigger behind it refuses
    # the owner too (tests/carehub/security/test_database_roles.py).
    refused = "permission denied for table pathways_pathwaystep"
    with pytest.raises(DatabaseError, match=refused), transaction.atomic():
        PathwayStep.objects.filter(pk=step.pk).update(outcome="forged")
    with pytest.raises(DatabaseError, match=refused), transaction.atomic():
        PathwayStep.objects.filter(pk=step.pk).delete()
    step.refresh_from_db()
    assert step.outcome == "started"


def test_effects_are_outbox_rows_until_executed(enrolment: Enrolment) -> None:
    assert set(OutboxEffect.objects.values_list("status", flat=True)) == {EffectStatus.PENDING}
    keys = list(OutboxEffect.objects.values_list("idempotency_key", flat=True))
    assert len(keys) == len(set(keys))
