"""What the caseload's rows show, for the rows of one page, in one hand-written statement.

Tables and columns are named from the models' metadata (`Model._meta.db_table`,
`carehub.core.sql`), and current observations are read through the observation store's one
condition (`carehub.observations.models.current_observation_sql`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from django.db import connection

from carehub.checkins.models import Checkin, CheckinStatus
from carehub.messaging.models import Message, MessageStatus
from carehub.observations.models import Kind, Observation, current_observation_sql
from carehub.pathways.models import (
    Enrolment,
    EnrolmentStatus,
    PathwayStep,
    PathwayTimer,
    Proposal,
    ProposalStatus,
    TimerStatus,
)
from carehub.web.selectors.shared import MISSED_WINDOW, OVERDUE_AFTER
from carehub.worklists.models import CareTask, Flag, FlagStatus, Severity, TaskStatus

# What a page's rows show, for those rows only, in one statement: the numbers (unresolved and
# urgent unresolved flags, pending escalations, overdue or missed check-ins, the last progress,
# an active pathway), the next open task, pending timer and scheduled check-in, the top
# unresolved flag and the oldest pending escalation. Each LATERAL or subquery is the index
# probe the correlated subqueries of `caseload_counts`, `_conditions` and `_progress_key` make
# (same filters, same order). Written by hand: building that many ORM subqueries cost more
# CPU than PostgreSQL spends running them.
_PROPOSAL = Proposal._meta.db_table
_ENROLMENT = Enrolment._meta.db_table
_CHECKIN = Checkin._meta.db_table
_FLAG = Flag._meta.db_table
_TASK = CareTask._meta.db_table
_TIMER = PathwayTimer._meta.db_table
_STEP = PathwayStep._meta.db_table
_OBSERVATION = Observation._meta.db_table
_MESSAGE = Message._meta.db_table

_ROW_DETAILS_SQL = f"""
SELECT p.id,
       flags.open_flags, flags.urgent_flags,
       (SELECT count(*) FROM {_PROPOSAL} pr
          JOIN {_ENROLMENT} e ON e.id = pr.enrolment_id
         WHERE e.patient_id = p.id AND pr.status = %(proposal_pending)s),
       (SELECT count(*) FROM {_CHECKIN} c
         WHERE c.patient_id = p.id AND c.status IN (%(checkin_open)s, %(missed)s)
           AND (   (c.status = %(checkin_open)s AND c.due_at < %(overdue_before)s)
                OR (c.status = %(missed)s AND c.closes_at >= %(missed_since)s))),
       progress.at,
       EXISTS (SELECT 1 FROM {_ENROLMENT} e
                WHERE e.patient_id = p.id AND e.status = %(active)s),
       task.due_at, task.title,
       timer.due_at, timer.event,
       checkin.due_at, checkin.instrument,
       (SELECT f.message FROM {_FLAG} f
         WHERE f.patient_id = p.id AND f.status <> %(flag_resolved)s
         ORDER BY CASE f.severity WHEN %(urgent)s THEN 0 WHEN %(warning)s THEN 1 ELSE 2 END,
                  f.raised_at DESC
         LIMIT 1),
       (SELECT pr.summary FROM {_PROPOSAL} pr
          JOIN {_ENROLMENT} e ON e.id = pr.enrolment_id
         WHERE e.patient_id = p.id AND pr.status = %(proposal_pending)s
         ORDER BY pr.proposed_at
         LIMIT 1),
       progress.transitions,
       peg.value_number, peg.observed_at,
       (SELECT b.value_number FROM {_OBSERVATION} b
         WHERE b.patient_id = p.id AND b.kind = %(score)s AND b.code = 'peg'
           AND {current_observation_sql("b")}
         ORDER BY b.is_baseline DESC,
                  CASE WHEN b.is_baseline THEN b.observed_at END DESC,
                  b.observed_at
         LIMIT 1),
       dead.last_error
  FROM unnest(%(ids)s::bigint[]) AS p(id)
  CROSS JOIN LATERAL (
       SELECT count(*) AS open_flags,
              count(*) FILTER (WHERE f.severity = %(urgent)s) AS urgent_flags
         FROM {_FLAG} f
        WHERE f.patient_id = p.id AND f.status <> %(flag_resolved)s) flags
  LEFT JOIN LATERAL (
       SELECT t.due_at, t.title FROM {_TASK} t
        WHERE t.patient_id = p.id AND t.status = %(task_open)s AND t.due_at IS NOT NULL
        ORDER BY t.due_at, t.id
        LIMIT 1) task ON true
  LEFT JOIN LATERAL (
       SELECT pt.due_at, pt.event FROM {_TIMER} pt
         JOIN {_ENROLMENT} e ON e.id = pt.enrolment_id
        WHERE e.patient_id = p.id AND pt.status = %(timer_pending)s
        ORDER BY pt.due_at, pt.id
        LIMIT 1) timer ON true
  LEFT JOIN LATERAL (
       SELECT s.at, s.transitions FROM {_STEP} s
         JOIN {_ENROLMENT} e ON e.id = s.enrolment_id
        WHERE e.patient_id = p.id AND e.status = %(active)s
          AND s.outcome IN ('started', 'transitioned')
        ORDER BY s.at DESC
        LIMIT 1) progress ON true
  LEFT JOIN LATERAL (
       SELECT o.value_number, o.observed_at FROM {_OBSERVATION} o
        WHERE o.patient_id = p.id AND o.kind = %(score)s AND o.code = 'peg'
          AND {current_observation_sql("o")}
        ORDER BY o.observed_at DESC
        LIMIT 1) peg ON true
  LEFT JOIN LATERAL (
       SELECT m.last_error FROM {_MESSAGE} m
        WHERE m.patient_id = p.id AND m.status = %(message_dead)s AND m.to_staff_id IS NULL
        ORDER BY m.created_at DESC
        LIMIT 1) dead ON true
  LEFT JOIN LATERAL (
       SELECT c.due_at, c.instrument FROM {_CHECKIN} c
        WHERE c.patient_id = p.id AND c.status IN (%(scheduled)s, %(checkin_open)s)
          AND c.due_at >= %(now)s
        ORDER BY c.due_at, c.id
        LIMIT 1) checkin ON true
"""  # noqa: S608 - names from the models' metadata, values bound


@dataclass(frozen=True)
class RowDetails:
    open_flags: int = 0
    urgent_flags: int = 0
    pending_proposals: int = 0
    overdue_checkins: int = 0
    last_progress_at: datetime | None = None
    has_active: bool = False
    next_task_due: datetime | None = None
    next_task_title: str | None = None
    next_timer_due: datetime | None = None
    next_timer_event: str | None = None
    next_checkin_due: datetime | None = None
    next_checkin_instrument: str | None = None
    top_flag_message: str | None = None
    pending_summary: str | None = None
    last_progress_transitions: list[dict[str, Any]] | None = None
    last_peg: float | None = None
    last_peg_at: datetime | None = None
    baseline_peg: float | None = None
    contact_problem: str | None = None


def row_details(patient_ids: Sequence[int], now: datetime) -> dict[int, RowDetails]:
    """What each patient's caseload row shows (`_ROW_DETAILS_SQL`)."""
    if not patient_ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(_ROW_DETAILS_SQL, row_details_params(patient_ids, now))
        rows = {pk: RowDetails(*values) for pk, *values in cursor.fetchall()}
    for pk, detail in rows.items():
        if isinstance(detail.last_progress_transitions, str):  # jsonb comes back as text
            rows[pk] = replace(
                detail, last_progress_transitions=json.loads(detail.last_progress_transitions)
            )
    return rows


def row_details_params(patient_ids: Sequence[int], now: datetime) -> dict[str, Any]:
    return {
        "ids": list(patient_ids),
        "now": now,
        "overdue_before": now - OVERDUE_AFTER,
        "missed_since": now - MISSED_WINDOW,
        "missed": CheckinStatus.MISSED.value,
        "active": EnrolmentStatus.ACTIVE.value,
        "flag_resolved": FlagStatus.RESOLVED.value,
        "urgent": Severity.URGENT.value,
        "warning": Severity.WARNING.value,
        "proposal_pending": ProposalStatus.PENDING.value,
        "task_open": TaskStatus.OPEN.value,
        "timer_pending": TimerStatus.PENDING.value,
        "scheduled": CheckinStatus.SCHEDULED.value,
        "checkin_open": CheckinStatus.OPEN.value,
        "score": Kind.SCORE.value,
        "message_dead": MessageStatus.DEAD.value,
    }
