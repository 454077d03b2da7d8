"""Translation between the engine's values (`workflows`) and the JSON and rows that persist
them: configurations, guard checks, explanations, snapshots."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from carehub.clinics.models import ClinicThreshold
from carehub.observations.selectors import (
    facts_and_occurrences_for_patient,
    facts_and_occurrences_from_rows,
)
from carehub.pathways.dispatch.sql import PROPOSAL_SHARED, SnapshotRows
from carehub.pathways.models import Enrolment, PathwayTimer, Proposal, ProposalStatus, TimerStatus
from workflows import Snapshot, ThresholdValue, TrackState
from workflows.model import ActiveTimer, Decision, FactReading, GuardCheck, as_dict
from workflows.model import Proposal as EngineProposal


def configuration_to_json(configuration: dict[str, TrackState] | Any) -> dict[str, Any]:
    return {
        track: {"state": ts.state, "entered_at": ts.entered_at.isoformat()}
        for track, ts in configuration.items()
    }


def configuration_from_json(data: dict[str, Any]) -> dict[str, TrackState]:
    return {
        track: TrackState(item["state"], datetime.fromisoformat(item["entered_at"]))
        for track, item in data.items()
    }


def guard_check_from_json(data: dict[str, Any] | None) -> GuardCheck | None:
    if not data:
        return None
    return GuardCheck(
        track=data["track"],
        transition_id=data["transition_id"],
        event=data["event"],
        source=data["source"],
        target=data["target"],
        expression=data["expression"],
        result=data["result"],
        readings=tuple(FactReading(**reading) for reading in data.get("readings", ())),
        missing=tuple(data.get("missing", ())),
        errors=tuple(data.get("errors", ())),
    )


def thresholds_for(enrolment: Enrolment) -> dict[str, ThresholdValue]:
    rows = ClinicThreshold.objects.filter(
        clinic_id=enrolment.clinic_id, pathway_key=enrolment.definition_key
    )
    return {row.name: ThresholdValue(row.value, row.source) for row in rows}


def proposal_from_model(p: Proposal) -> EngineProposal:
    """A pending proposal row as the engine's value."""
    shared = {name: getattr(p, name) for name in PROPOSAL_SHARED}
    evidence = guard_check_from_json(p.evidence)
    return EngineProposal(id=p.proposal_id, roles=tuple(p.roles), evidence=evidence, **shared)


def proposal_to_model(proposal: EngineProposal, enrolment: Enrolment) -> Proposal:
    """A proposal the engine opened as its (unsaved) row."""
    shared = {name: getattr(proposal, name) for name in PROPOSAL_SHARED}
    shared["summary"] = proposal.summary[:300]
    evidence = as_dict(proposal.evidence) if proposal.evidence else {}
    return Proposal(
        enrolment=enrolment,
        proposal_id=proposal.id,
        roles=list(proposal.roles),
        evidence=evidence,
        **shared,
    )


def snapshot_for(enrolment: Enrolment, *, now: datetime) -> Snapshot:
    """Everything `decide` may read about the enrolment, read inside the dispatch transaction."""
    timers = {
        t.key: ActiveTimer(key=t.key, track=t.track, state=t.state, event=t.event, due_at=t.due_at)
        for t in PathwayTimer.objects.filter(enrolment=enrolment, status=TimerStatus.PENDING)
    }
    proposals = {
        p.proposal_id: proposal_from_model(p)
        for p in Proposal.objects.filter(enrolment=enrolment, status=ProposalStatus.PENDING)
    }
    facts, occurrences = facts_and_occurrences_for_patient(patient=enrolment.patient, now=now)
    return Snapshot(
        configuration=configuration_from_json(enrolment.configuration),
        facts=facts,
        thresholds=thresholds_for(enrolment),
        occurrences=occurrences,
        timers=timers,
        proposals=proposals,
    )


def decision_explanation_json(decision: Decision) -> dict[str, Any]:
    data: dict[str, Any] = as_dict(decision.explanation)
    data["summary"] = decision.explanation.summary()
    return data


def proposal_from_row(item: list[Any]) -> EngineProposal:
    """A pending proposal from its JSON array (`sql.proposal_json_sql`: the snapshot's and the
    migration's reads)."""
    pid, roles, evidence, *shared = item
    values = dict(zip(PROPOSAL_SHARED, shared, strict=True))
    values["proposed_at"] = datetime.fromisoformat(values["proposed_at"])
    evidence = guard_check_from_json(evidence)
    return EngineProposal(id=pid, roles=tuple(roles), evidence=evidence, **values)


def snapshot_from_rows(
    enrolment: Enrolment, rows: SnapshotRows, *, time_zone: str, now: datetime
) -> Snapshot:
    """`snapshot_for` from the rows `sql.snapshot_rows` read in one statement."""
    facts, occurrences = facts_and_occurrences_from_rows(
        rows.observations, time_zone=time_zone, now=now
    )
    timers = {
        key: ActiveTimer(
            key=key, track=track, state=state, event=event, due_at=datetime.fromisoformat(due_at)
        )
        for key, track, state, event, due_at in rows.timers
    }
    return Snapshot(
        configuration=configuration_from_json(enrolment.configuration),
        facts=facts,
        thresholds={name: ThresholdValue(value, source) for name, value, source in rows.thresholds},
        occurrences=occurrences,
        timers=timers,
        proposals={item[0]: proposal_from_row(item) for item in rows.proposals},
    )
