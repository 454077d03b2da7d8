"""What the top of the patient page says, and its timeline, escalation decisions and failed
treatments in words (sentences from `carehub.web.presentation`; the template only places them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from carehub.accounts.models import Role
from carehub.core import clock
from carehub.observations.models import Observation
from carehub.observations.reference import FAILED_TREATMENT_REASONS, TREATMENT_CLASSES
from carehub.pathways.registry import definition_get
from carehub.web.presentation import (
    ScoreSeries,
    StepText,
    event_title,
    explain_step,
    humanise,
    instrument_title,
    moved_text,
    score_sentence,
    short_date,
)
from carehub.web.selectors.patient import PatientRecord

# The scores the summary names first (others follow when the patient has them).
SUMMARY_INSTRUMENTS = ("peg", "phq9", "gad7", "psfs", "nrs", "odi")
NEXT_DUE_SHOWN = 4


@dataclass
class Summary:
    flags: list[str] = field(default_factory=list)
    urgent: int = 0
    escalations: list[tuple[int, str]] = field(default_factory=list)  # (proposal id, words)
    states: list[str] = field(default_factory=list)
    next_due: list[tuple[datetime, str]] = field(default_factory=list)
    scores: list[str] = field(default_factory=list)
    contact: list[str] = field(default_factory=list)


def patient_summary(
    record: PatientRecord, panels: list[dict[str, Any]], scores: dict[str, ScoreSeries]
) -> Summary:
    now = clock.now()
    summary = Summary()
    for flag in record.unresolved_flags:
        state = "acknowledged" if flag.status == "acknowledged" else "not acknowledged"
        summary.flags.append(
            f"{flag.get_severity_display()}: {flag.message} "
            f"(raised {short_date(flag.raised_at, now)}, {state})"
        )
    summary.urgent = len(record.urgent_flags)
    for panel in panels:
        for item in panel["proposals"]:
            proposal = item["proposal"]
            summary.escalations.append(
                (
                    proposal.pk,
                    f"{proposal.summary} ({item['move']}), proposed "
                    f"{short_date(proposal.proposed_at, now)}: decided by "
                    f"{', '.join(role_label(r).lower() for r in proposal.roles)}",
                )
            )
        if panel["enrolment"].status == "completed":
            continue
        for track in panel["tracks"]:
            summary.states.append(
                f"{track['title']}: {track['state']} since {short_date(track['entered_at'], now)}"
            )
    due: list[tuple[datetime, str]] = []
    for task in record.tasks:
        if task.due_at is not None:
            due.append((task.due_at, f"Task: {task.title}"))
    for timer in record.timers:
        definition = definition_get(
            timer.enrolment.definition_key, timer.enrolment.definition_version
        )
        due.append((timer.due_at, f"Pathway: {event_title(definition, timer.event)}"))
    upcoming = [c for c in record.checkins if c.status in ("scheduled", "open") and c.due_at >= now]
    if upcoming:
        soonest = min(upcoming, key=lambda c: c.due_at)
        due.append((soonest.due_at, f"Check-in: {instrument_title(soonest.instrument)}"))
    summary.next_due = sorted(due, key=lambda item: item[0])[:NEXT_DUE_SHOWN]
    for code in (*SUMMARY_INSTRUMENTS, *sorted(set(scores) - set(SUMMARY_INSTRUMENTS))):
        if code in scores and scores[code].latest is not None:
            summary.scores.append(score_sentence(scores[code], now))
    for message in record.contact_problems[:3]:
        summary.contact.append(
            f"A message of {short_date(message.created_at, now)} could not be delivered: "
            f"{message.last_error or message.get_status_display()}"
        )
    return summary


def role_label(role: str) -> str:
    return str(dict(Role.choices).get(role, humanise(role)))


@dataclass
class TimelineEntry:
    step: Any  # PathwayStep
    text: StepText
    by: str = ""  # "Pain Glance (Physician)"


def timeline(record: PatientRecord, scores: dict[str, ScoreSeries]) -> list[TimelineEntry]:
    now = clock.now()
    entries = []
    for step in record.steps:
        definition = definition_get(
            step.enrolment.definition_key, step.enrolment.definition_version
        )
        by = ""
        if step.actor is not None:
            role = role_label(step.actor_role)
            by = f"{step.actor.get_full_name() or step.actor.username}" + (
                f" ({role})" if step.actor_role else ""
            )
        entries.append(
            TimelineEntry(
                by=by,
                step=step,
                text=explain_step(
                    definition,
                    event=step.event,
                    outcome=step.outcome,
                    transitions=step.transitions,
                    explanation=step.explanation,
                    scores=scores,
                    now=now,
                ),
            )
        )
    return entries


@dataclass
class Decision:
    approved: bool
    status: str
    summary: str
    move: str
    by: str
    at: datetime | None
    reason: str


def decisions(record: PatientRecord) -> list[Decision]:
    """Decided escalations with who decided, when and why (the approval's reason too)."""
    result = []
    for proposal in record.decisions:
        enrolment = proposal.enrolment
        definition = definition_get(enrolment.definition_key, enrolment.definition_version)
        who = proposal.decided_by
        result.append(
            Decision(
                approved=proposal.status == "approved",
                status=proposal.get_status_display(),
                summary=proposal.summary,
                move=moved_text(
                    definition,
                    {"track": proposal.track, "source": proposal.source, "target": proposal.target},
                ),
                by=(who.get_full_name() or who.username) if who is not None else "",
                at=proposal.decided_at,
                reason=proposal.reason,
            )
        )
    return result


def failed_treatments(record: PatientRecord) -> list[str]:
    """`SNRI (duloxetine, venlafaxine): insufficient effect, 8 weeks, recorded 3 Sep`."""
    now = clock.now()
    lines = []
    for obs in record.failed_treatments:
        lines.append(_failed_treatment(obs, now))
    return lines


def _failed_treatment(obs: Observation, now: datetime) -> str:
    choice = TREATMENT_CLASSES.get(obs.code)
    text = choice.title if choice is not None else obs.code
    data = obs.data or {}
    reason = FAILED_TREATMENT_REASONS.get(obs.value_text)
    details = []
    if reason is not None:
        details.append(reason.title[:1].lower() + reason.title[1:])
    if data.get("max_dose"):
        details.append(f"up to {data['max_dose']}")
    if data.get("duration_weeks"):
        details.append(f"tried {data['duration_weeks']:g} weeks")
    details.append(f"recorded {short_date(obs.observed_at, now)}")
    return f"{text}: {', '.join(details)}"
