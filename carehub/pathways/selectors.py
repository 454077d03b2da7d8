"""Reads of pathway enrolments, steps and proposals, within the user's scope
(carehub.care_access): anything outside it is NotFound."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet

from carehub.accounts.models import User
from carehub.care_access import enrolments_visible_to, proposals_visible_to
from carehub.core.exceptions import NotFound
from carehub.pathways.models import (
    Enrolment,
    EnrolmentStatus,
    PathwayStep,
    Proposal,
    ProposalStatus,
)
from carehub.pathways.registry import definition_get
from carehub.pathways.store import configuration_from_json
from carehub.patients.models import Patient
from workflows import Snapshot, available_events


@dataclass(frozen=True)
class TrackView:
    track: str
    title: str
    state: str
    entered_at: datetime
    final: bool


@dataclass(frozen=True)
class EnrolmentView:
    enrolment: Enrolment
    title: str
    tracks: list[TrackView]
    pending_proposals: list[Proposal]
    available_events: dict[str, list[str]]


def enrolment_list_for_patient(*, patient: Patient) -> QuerySet[Enrolment]:
    return Enrolment.objects.filter(patient=patient)


def enrolment_get_for_user(*, user: User, public_id: uuid.UUID | str) -> Enrolment:
    enrolment = (
        enrolments_visible_to(user).select_related("patient").filter(public_id=public_id).first()
    )
    if enrolment is None:
        raise NotFound("No such pathway enrolment.")
    return enrolment


def enrolment_view(*, enrolment: Enrolment, user: User | None = None) -> EnrolmentView:
    """State per track, pending proposals and the events a person may send now: with a `user`,
    only those the definition lets the user's role send."""
    definition = definition_get(enrolment.definition_key, enrolment.definition_version)
    configuration = configuration_from_json(enrolment.configuration)
    tracks = [
        TrackView(
            track=name,
            title=definition.tracks[name].title or name,
            state=state.state,
            entered_at=state.entered_at,
            final=definition.tracks[name].states[state.state].final,
        )
        for name, state in configuration.items()
    ]
    pending = list(
        Proposal.objects.filter(enrolment=enrolment, status=ProposalStatus.PENDING).order_by("pk")
    )
    events: dict[str, list[str]] = {}
    if enrolment.status == EnrolmentStatus.ACTIVE:
        events = available_events(
            definition,
            Snapshot(configuration=configuration),
            role=user.role if user is not None else None,
        )
    return EnrolmentView(
        enrolment=enrolment,
        title=definition.title,
        tracks=tracks,
        pending_proposals=pending,
        available_events=events,
    )


def enrolment_timeline(*, enrolment: Enrolment) -> QuerySet[PathwayStep]:
    """The enrolment's step log with the actors (ordering is the caller's: pagination)."""
    return PathwayStep.objects.filter(enrolment=enrolment).select_related("actor")


def proposal_list_for_user(*, user: User, status: str | None = None) -> QuerySet[Proposal]:
    proposals = proposals_visible_to(user).select_related("enrolment__patient", "decided_by")
    if status:
        proposals = proposals.filter(status=status)
    return proposals


def proposal_get_for_user(*, user: User, proposal_id: int) -> Proposal:
    proposal = (
        proposals_visible_to(user).select_related("enrolment__patient").filter(pk=proposal_id)
    ).first()
    if proposal is None:
        raise NotFound("No such proposal.")
    return proposal
