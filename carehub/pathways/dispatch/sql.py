"""The statements of a pathway dispatch, written by hand (the hot path of `pathway_dispatch`).
Only `store.PathwayStore` calls them, with plain data taken from the engine's values; the JSON
parameters are encoded here.

A dispatch is three statements inside its transaction, whatever the decision:

1. `lock_row`: the enrolment row, locked FOR NO KEY UPDATE NOWAIT, unless the event key
   was already processed (then no row is returned and nothing is locked: a redelivery never
   waits for, nor blocks, a change in progress);
2. `snapshot_rows`: what `decide` may read (pending timers, pending proposals, the clinic's
   thresholds, the patient's current observations), as JSON aggregates in one row. It runs
   after the lock, in a statement of its own, so under READ COMMITTED it sees everything the
   previous holder of the lock committed;
3. `write_rows`: one statement of data-modifying CTEs: the enrolment's new configuration and
   version, the append-only step with its explanation, the processed event key, the timers
   (closed, then started: the INSERT reads the UPDATE's output, so a timer restarted under the
   same key never meets the old pending one in the unique index), one outbox row per effect
   (with the step's id), and, when a track leaves a state that can have tasks or the pathway
   ends, the open tasks that belonged there closed as no longer needed.

The ORM did the same in 14 to 18 statements (a savepoint around the lock, a query per snapshot
part, an UPDATE and an INSERT per timer, reading back ids); on a small machine each statement
costs as much CPU in the client and the server as the decision itself. Proposals opened or
closed (rare) are still written by the ORM, after this statement, by the store.

Every column name comes from the models' metadata, so a renamed table or column fails loudly.

The three statements run as prepared statements (`cursor.prepared_cursor`, the one function
that reaches into Django's and psycopg's internals): PostgreSQL parses and plans each of their
shapes once per connection instead of once per dispatch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import OperationalError, connection

from carehub.clinics.models import ClinicThreshold
from carehub.core.sql import concrete_field
from carehub.integrations.models import ChangeEvent, ChangeType
from carehub.observations.models import Observation, current_observation_sql
from carehub.pathways.dispatch.cursor import prepared_cursor
from carehub.pathways.models import (
    EffectStatus,
    Enrolment,
    OutboxEffect,
    PathwayStep,
    PathwayTimer,
    ProcessedEvent,
    Proposal,
    ProposalStatus,
    TimerStatus,
)
from carehub.patients.models import Patient
from carehub.worklists.models import CareTask, TaskStatus

_ENROLMENT_FIELDS: tuple[str, ...] = tuple(f.attname for f in Enrolment._meta.concrete_fields)
# jsonb is read as text by Django's connection (JSONField decodes it); as json, psycopg decodes.
_ENROLMENT_COLUMNS = ", ".join(
    f"e.{f.column}::json" if f.get_internal_type() == "JSONField" else f"e.{f.column}"
    for f in Enrolment._meta.concrete_fields
)


_LOCK_SQL = f"""
SELECT {_ENROLMENT_COLUMNS}, p.time_zone
FROM {Enrolment._meta.db_table} e
JOIN {Patient._meta.db_table} p ON p.id = e.patient_id
WHERE e.id = %s
  AND NOT EXISTS (
    SELECT 1 FROM {ProcessedEvent._meta.db_table} pe
    WHERE pe.enrolment_id = e.id AND pe.idempotency_key = %s
  )
FOR NO KEY UPDATE OF e NOWAIT
"""  # noqa: S608 - names from the models' metadata, values bound


LOCK_NOT_AVAILABLE = "55P03"  # SQLSTATE of a refused NOWAIT lock


class RowLocked(Exception):
    """The enrolment's row is locked by another transaction (NOWAIT refused it). The statement
    failed, so the transaction (or the savepoint around the lock) must be rolled back."""


@dataclass(frozen=True)
class LockedEnrolment:
    enrolment: Enrolment
    time_zone: str  # the patient's, for the facts counted in calendar time


def lock_row(enrolment_id: int, idempotency_key: str) -> LockedEnrolment | None:
    """Lock the enrolment row NOWAIT (`RowLocked` when another transaction holds it). None when
    there is no such enrolment or when the event key was already processed: the caller tells
    which."""
    with prepared_cursor() as cursor:
        try:
            cursor.execute(_LOCK_SQL, [enrolment_id, idempotency_key])
        except OperationalError as exc:
            if getattr(exc.__cause__, "sqlstate", None) == LOCK_NOT_AVAILABLE:
                raise RowLocked from exc
            raise
        row = cursor.fetchone()
    if row is None:
        return None
    enrolment = Enrolment.from_db(connection.alias, _ENROLMENT_FIELDS, row[:-1])
    return LockedEnrolment(enrolment=enrolment, time_zone=row[-1])


_OBSERVATION_FIELDS: tuple[str, ...] = (
    "id",
    "kind",
    "code",
    "value_number",
    "value_text",
    "value_bool",
    "data",
    "observed_at",
    "is_baseline",
)
_OBSERVATION_COLUMNS = ", ".join(
    f"o.{concrete_field(Observation, name).column}" for name in _OBSERVATION_FIELDS
)
# The attributes a proposal row and the engine's proposal share by name and value (the row's
# `proposal_id` is the engine's `id`, its `roles` a list, its `evidence` the guard check's JSON).
PROPOSAL_SHARED = ("track", "transition_id", "source", "target", "event", "summary", "proposed_at")


def proposal_json_sql(alias: str) -> str:
    """A pending proposal as a JSON array: its id, roles and evidence, then `PROPOSAL_SHARED`
    (`codec.proposal_from_row` reads it in that order)."""
    names = ("proposal_id", "roles", "evidence", *PROPOSAL_SHARED)
    columns = ", ".join(f"{alias}.{concrete_field(Proposal, name).column}" for name in names)
    return f"json_build_array({columns})"


_SNAPSHOT_SQL = f"""
SELECT
  (SELECT coalesce(json_agg(json_build_array(t.key, t.track, t.state, t.event, t.due_at)), '[]')
   FROM {PathwayTimer._meta.db_table} t
   WHERE t.enrolment_id = %(enrolment)s AND t.status = '{TimerStatus.PENDING.value}'),
  (SELECT coalesce(json_agg({proposal_json_sql("r")}), '[]')
   FROM {Proposal._meta.db_table} r
   WHERE r.enrolment_id = %(enrolment)s AND r.status = '{ProposalStatus.PENDING.value}'),
  (SELECT coalesce(json_agg(json_build_array(c.name, c.value, c.source)), '[]')
   FROM {ClinicThreshold._meta.db_table} c
   WHERE c.clinic_id = %(clinic)s AND c.pathway_key = %(definition_key)s),
  (SELECT coalesce(json_agg(json_build_array({_OBSERVATION_COLUMNS})
                            ORDER BY o.observed_at, o.id), '[]')
   FROM {Observation._meta.db_table} o
   WHERE o.patient_id = %(patient)s AND {current_observation_sql("o")})
"""  # noqa: S608 - names from the models' metadata, values bound


@dataclass(frozen=True)
class SnapshotRows:
    """The rows of a snapshot, decoded: timers and proposals as JSON arrays (timestamps as ISO
    8601 text), thresholds as (name, value, source), observations as unsaved-looking model
    instances (current ones only: neither replaced nor withdrawals, oldest first)."""

    timers: list[list[Any]]
    proposals: list[list[Any]]
    thresholds: list[list[Any]]
    observations: list[Observation]


def _observation(item: list[Any]) -> Observation:
    pk, kind, code, number, text, flag, data, observed_at, is_baseline = item
    return Observation.from_db(
        connection.alias,
        _OBSERVATION_FIELDS,
        # JSON has one number type: a float8 of 7.0 arrives as 7, the ORM would give 7.0.
        (
            pk,
            kind,
            code,
            float(number) if number is not None else None,
            text,
            flag,
            data,
            datetime.fromisoformat(observed_at),
            is_baseline,
        ),
    )


def snapshot_rows(enrolment: Enrolment) -> SnapshotRows:
    """Pending timers and proposals, thresholds and current observations in one statement (the
    same rows as `codec.snapshot_for`'s selectors)."""
    with prepared_cursor() as cursor:
        cursor.execute(
            _SNAPSHOT_SQL,
            {
                "enrolment": enrolment.pk,
                "clinic": enrolment.clinic_id,
                "definition_key": enrolment.definition_key,
                "patient": enrolment.patient_id,
            },
        )
        timers, proposals, thresholds, observations = cursor.fetchone()
    return SnapshotRows(
        timers=timers,
        proposals=proposals,
        thresholds=thresholds,
        observations=[_observation(item) for item in observations],
    )


# --- the write ---------------------------------------------------------------------------------


TimerRow = tuple[str, str, str, str, datetime, str, datetime | None]
# (key, track, state, event, due_at, status, closed_at) of a timer to insert


@dataclass
class DecisionRows:
    """What one decision writes, as plain data (the store fills it from the engine's decision;
    the JSON parameters are encoded by `write_rows`)."""

    enrolment: Enrolment  # configuration, version, status, completed_at already set
    enrolment_changed: bool
    configuration: dict[str, Any]  # the enrolment's and the step's (encoded once)
    # The step (its sequence is the enrolment's version)
    event: str
    event_key: str
    outcome: str
    actor_id: int | None
    actor_role: str
    transitions: list[dict[str, Any]]
    explanation: dict[str, Any]
    effects: list[dict[str, Any]]  # the step's effects and the outbox rows' payloads
    timers_closed: list[tuple[str, str]]  # (key, status) of the pending timers to close
    timers_started: list[TimerRow]
    processed_key: str | None  # the event key to record as processed (None: enrolment start)
    at: datetime  # the decision's time
    wall: datetime  # the clock's time: created_at / updated_at / the outbox's available_at
    # (track, state, reason) of the states left: their open tasks are closed with the reason
    tasks_closed: list[tuple[str, str, str]] = field(default_factory=list)
    # The pathway ended: every open task a pathway effect created is closed (this reason
    # unless a state left gives one)
    tasks_ended_reason: str | None = None
    # The change feed (carehub.integrations): the data of each transition taken (an
    # `enrolment.transitioned` event each); closed tasks add a `task.closed` event each.
    clinic_id: int | None = None
    patient_id: int | None = None
    transitioned: list[dict[str, Any]] = field(default_factory=list)


_e, _s, _t, _x, _p = (
    Enrolment._meta.db_table,
    PathwayStep._meta.db_table,
    PathwayTimer._meta.db_table,
    OutboxEffect._meta.db_table,
    ProcessedEvent._meta.db_table,
)

_UPDATE_ENROLMENT = f"""
enrolment_row AS (
  UPDATE {_e} SET configuration = %(configuration)s::jsonb, version = %(version)s,
    status = %(status)s, completed_at = %(completed_at)s, updated_at = %(wall)s
  WHERE id = %(enrolment)s
)"""  # noqa: S608 - names from the models' metadata, values bound
_INSERT_STEP = f"""
step AS (
  INSERT INTO {_s} (enrolment_id, sequence, event, event_key, outcome, actor_id, actor_role,
                    transitions, explanation, configuration, effects, at)
  VALUES (%(enrolment)s, %(version)s, %(event)s, %(event_key)s, %(outcome)s, %(actor)s,
          %(actor_role)s, %(transitions)s::jsonb, %(explanation)s::jsonb,
          %(configuration)s::jsonb, %(effects)s::jsonb, %(at)s)
  RETURNING id
)"""  # noqa: S608 - names from the models' metadata, values bound
_INSERT_PROCESSED = f"""
processed AS (
  INSERT INTO {_p} (enrolment_id, idempotency_key, event, outcome, step_id, processed_at)
  SELECT %(enrolment)s, %(event_key)s, %(event)s, %(outcome)s, step.id, %(at)s FROM step
)"""  # noqa: S608 - names from the models' metadata, values bound
_CLOSE_TIMERS = f"""
timers_closed AS (
  UPDATE {_t} t SET status = c.status, closed_at = %(at)s
  FROM unnest(%(close_keys)s::text[], %(close_statuses)s::text[]) AS c(key, status)
  WHERE t.enrolment_id = %(enrolment)s AND t.key = c.key
    AND t.status = '{TimerStatus.PENDING.value}'
  RETURNING t.id
)"""  # noqa: S608 - names from the models' metadata, values bound
_START_TIMERS = f"""
timers_started AS (
  INSERT INTO {_t} (created_at, updated_at, enrolment_id, key, track, state, event, due_at,
                    status, closed_at)
  SELECT %(wall)s, %(wall)s, %(enrolment)s, n.key, n.track, n.state, n.event, n.due_at,
         n.status, n.closed_at
  FROM unnest(%(start_keys)s::text[], %(start_tracks)s::text[], %(start_states)s::text[],
              %(start_events)s::text[], %(start_due)s::timestamptz[],
              %(start_statuses)s::text[], %(start_closed)s::timestamptz[])
       AS n(key, track, state, event, due_at, status, closed_at)
  {{after_close}}
)"""  # noqa: S608 - names from the models' metadata, values bound
# Reading the UPDATE's output makes it run to completion before the first row is inserted.
_AFTER_CLOSE = "WHERE (SELECT count(*) FROM timers_closed) >= 0"
_INSERT_EFFECTS = f"""
effects AS (
  INSERT INTO {_x} (created_at, updated_at, enrolment_id, step_id, kind, payload,
                    idempotency_key, decided_at, status, attempts, available_at, last_error)
  SELECT %(wall)s, %(wall)s, %(enrolment)s, (SELECT id FROM step), x.payload ->> 'kind',
         x.payload, %(effect_key_prefix)s || (x.n - 1), %(at)s, '{EffectStatus.PENDING.value}',
         0, %(wall)s, ''
  FROM jsonb_array_elements(%(effects)s::jsonb) WITH ORDINALITY AS x(payload, n)
  ORDER BY x.n
  RETURNING id
)"""  # noqa: S608 - names from the models' metadata, values bound
_k = CareTask._meta.db_table
_TASKS_LEFT = "unnest(%(task_tracks)s::text[], %(task_states)s::text[], %(task_reasons)s::text[])"
# A task created by an effect not yet executed is not here: the effect's handler sees that its
# state was left (`carehub.pathways.effects`).
_CLOSE_TASKS = f"""
tasks_closed AS (
  UPDATE {_k} k SET status = '{TaskStatus.CANCELLED.value}', closed_reason = c.reason,
    completed_at = %(at)s, updated_at = %(wall)s
  FROM {_TASKS_LEFT} AS c(track, state, reason)
  WHERE k.enrolment_id = %(enrolment)s AND k.status = '{TaskStatus.OPEN.value}'
    AND k.track = c.track AND k.state = c.state
  RETURNING k.id
)"""  # noqa: S608 - names from the models' metadata, values bound
_CLOSE_TASKS_ENDED = f"""
tasks_closed AS (
  UPDATE {_k} k SET status = '{TaskStatus.CANCELLED.value}',
    closed_reason = coalesce((SELECT c.reason FROM {_TASKS_LEFT} AS c(track, state, reason)
                              WHERE c.track = k.track AND c.state = k.state LIMIT 1),
                             %(tasks_ended_reason)s),
    completed_at = %(at)s, updated_at = %(wall)s
  WHERE k.enrolment_id = %(enrolment)s AND k.status = '{TaskStatus.OPEN.value}'
    AND k.source_effect_id IS NOT NULL
  RETURNING k.id
)"""  # noqa: S608 - names from the models' metadata, values bound

_c = ChangeEvent._meta.db_table
_CHANGE_COLUMNS = (
    "public_id, clinic_id, patient_id, enrolment_id, type, subject_id, data, occurred_at"
)
# The feed's rows are written by the same statement (their webhook deliveries by its trigger).
_TRANSITIONED = f"""
transitioned AS (
  INSERT INTO {_c} ({_CHANGE_COLUMNS})
  SELECT gen_random_uuid(), %(clinic)s, %(patient)s, %(enrolment)s,
         '{ChangeType.ENROLMENT_TRANSITIONED.value}', (SELECT id FROM step), c.data, %(at)s
  FROM jsonb_array_elements(%(transitioned)s::jsonb) WITH ORDINALITY AS c(data, n)
  ORDER BY c.n
)"""  # noqa: S608 - names from the models' metadata, values bound
_TASKS_CLOSED_CHANGES = f"""
tasks_closed_changes AS (
  INSERT INTO {_c} ({_CHANGE_COLUMNS})
  SELECT gen_random_uuid(), %(clinic)s, %(patient)s, %(enrolment)s,
         '{ChangeType.TASK_CLOSED.value}', k.id,
         jsonb_build_object('status', '{TaskStatus.CANCELLED.value}'), %(at)s
  FROM tasks_closed k ORDER BY k.id
)"""  # noqa: S608 - names from the models' metadata, values bound


def write_rows(rows: DecisionRows) -> tuple[int, list[int]]:
    """Write the decision in one statement; returns the step's id and the outbox rows' ids (in
    the order of the decision's effects)."""
    enrolment = rows.enrolment
    parts = [_INSERT_STEP]
    if rows.enrolment_changed:
        parts.insert(0, _UPDATE_ENROLMENT)
    if rows.processed_key is not None:
        parts.append(_INSERT_PROCESSED)
    if rows.timers_closed:
        parts.append(_CLOSE_TIMERS)
    if rows.timers_started:
        parts.append(_START_TIMERS.format(after_close=_AFTER_CLOSE if rows.timers_closed else ""))
    if rows.tasks_ended_reason is not None:
        parts.append(_CLOSE_TASKS_ENDED)
    elif rows.tasks_closed:
        parts.append(_CLOSE_TASKS)
    if rows.clinic_id is not None:
        if rows.tasks_ended_reason is not None or rows.tasks_closed:
            parts.append(_TASKS_CLOSED_CHANGES)
        if rows.transitioned:
            parts.append(_TRANSITIONED)
    if rows.effects:
        parts.append(_INSERT_EFFECTS)
        tail = "SELECT (SELECT id FROM step), ARRAY(SELECT id FROM effects ORDER BY id)"
    else:
        tail = "SELECT (SELECT id FROM step), ARRAY[]::bigint[]"
    started = rows.timers_started
    params: dict[str, Any] = {
        "enrolment": enrolment.pk,
        "configuration": _dumps(rows.configuration),
        "version": enrolment.version,
        "status": enrolment.status,
        "completed_at": enrolment.completed_at,
        "wall": rows.wall,
        "at": rows.at,
        "event": rows.event,
        "event_key": rows.event_key,
        "outcome": rows.outcome,
        "actor": rows.actor_id,
        "actor_role": rows.actor_role,
        "transitions": _dumps(rows.transitions),
        "explanation": _dumps(rows.explanation),
        "effects": _dumps(rows.effects),
        "effect_key_prefix": f"{enrolment.public_id}:{rows.event_key}:",
        "close_keys": [key for key, _ in rows.timers_closed],
        "close_statuses": [status for _, status in rows.timers_closed],
        "start_keys": [t[0] for t in started],
        "start_tracks": [t[1] for t in started],
        "start_states": [t[2] for t in started],
        "start_events": [t[3] for t in started],
        "start_due": [t[4] for t in started],
        "start_statuses": [t[5] for t in started],
        "start_closed": [t[6] for t in started],
        "task_tracks": [track for track, _, _ in rows.tasks_closed],
        "task_states": [state for _, state, _ in rows.tasks_closed],
        "task_reasons": [reason for _, _, reason in rows.tasks_closed],
        "tasks_ended_reason": rows.tasks_ended_reason,
        "clinic": rows.clinic_id,
        "patient": rows.patient_id,
        "transitioned": _dumps(rows.transitioned),
    }
    sql = "WITH " + ",".join(parts) + "\n" + tail
    with prepared_cursor() as cursor:
        cursor.execute(sql, params)
        step_id, effect_ids = cursor.fetchone()
    return step_id, list(effect_ids)


def _dumps(value: Any) -> str:
    """JSON text for a jsonb parameter, as the ORM's JSONField encodes it."""
    return json.dumps(value)
