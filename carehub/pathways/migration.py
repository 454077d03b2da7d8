"""Moving running enrolments to a new version of their pathway (README, "Changing a pathway").

- `migration_dry_run` (a selector: it writes nothing): every running enrolment of the old
  version, its snapshot evaluated under the new one by `workflows.migration.plan_migration`,
  classified (automatic, changes, needs approval, blocked) with every change in the patient's
  local time.
- `migration_apply`: in batches, each enrolment in its own transaction under the enrolment's
  row lock (the dispatch's store, `dispatch.store.lock_for_change`): the new version and
  configuration, timers, proposals and tasks, one `PathwayStep` (event `migration`) with the
  plan's explanation, effects (check-in series) through the outbox, an `EnrolmentMigration`
  row with what a rollback needs, the audit trail. A re-run migrates nothing twice.
- `migration_rollback`: one enrolment back to its previous version, states and timers exactly
  (the same timer rows), while nothing else changed it since.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction

from carehub.accounts.models import Role, User
from carehub.audit.models import Action
from carehub.audit.services import audit_record
from carehub.clinics.models import ClinicThreshold
from carehub.core import clock
from carehub.core.exceptions import Conflict, InvalidInput, NotPermitted
from carehub.observations.selectors import facts_and_occurrences_for_patient
from carehub.pathways.dispatch.codec import (
    configuration_from_json,
    configuration_to_json,
    proposal_from_model,
    proposal_from_row,
)
from carehub.pathways.dispatch.sql import proposal_json_sql
from carehub.pathways.dispatch.store import store
from carehub.pathways.models import (
    Enrolment,
    EnrolmentMigration,
    EnrolmentStatus,
    MigrationStatus,
    PathwayTimer,
    Proposal,
    ProposalStatus,
    TimerStatus,
)
from carehub.pathways.registry import definition_get
from carehub.worklists.models import CareTask, TaskStatus
from workflows import PathwayDefinition, Snapshot, ThresholdValue, UnknownPathway
from workflows.definition import MigrationSpec, format_duration
from workflows.migration import (
    ActiveSeries,
    Classification,
    MigrationPlan,
    ProposalChange,
    SeriesChange,
    StateChange,
    TaskMove,
    TimerChange,
    plan_migration,
)
from workflows.model import ActiveTimer
from workflows.model import Proposal as EngineProposal

logger = logging.getLogger(__name__)

RUNNING = (EnrolmentStatus.ACTIVE, EnrolmentStatus.PAUSED)
# Roles that may confirm a migration a clinician must approve (`needs_approval`).
APPROVING_ROLES = frozenset({Role.PHYSICIAN.value})
# A timer still to fire: pending, or suspended while its pathway is paused (a paused enrolment
# migrates too; resuming moves its timers and times in state together, as always).
_WAITING = (TimerStatus.PENDING, TimerStatus.SUSPENDED)


@dataclass(frozen=True)
class Migration:
    """Which migration: a pathway, the version enrolments are on, the version they move to."""

    definition_key: str
    from_version: int
    to_version: int
    old: PathwayDefinition
    new: PathwayDefinition
    spec: MigrationSpec


def migration_get(definition_key: str, from_version: int, to_version: int) -> Migration:
    """The two published versions and the new one's migration spec; InvalidInput otherwise."""
    try:
        old = definition_get(definition_key, from_version)
        new = definition_get(definition_key, to_version)
    except UnknownPathway as exc:
        raise InvalidInput(str(exc), extra={"field": "definition_key"}) from exc
    spec = new.migration_from(from_version)
    if spec is None:
        raise InvalidInput(
            f"{new.ref} does not say how to migrate from version {from_version} "
            "(add it under `migrations:`).",
            extra={"field": "from_version"},
        )
    return Migration(definition_key, from_version, to_version, old, new, spec)


# --- the report ------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnrolmentReport:
    enrolment_id: int
    enrolment_public_id: str
    patient_id: int
    patient: str  # name and MRN, for the clinician reading the report
    time_zone: str
    classification: str
    lines: tuple[str, ...]  # every change, each in one sentence, times in the patient's zone
    reasons: tuple[str, ...]  # why it is blocked, or what a clinician must confirm
    plan: MigrationPlan | None = field(default=None, compare=False, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "enrolment": self.enrolment_public_id,
            "patient_id": self.patient_id,
            "patient": self.patient,
            "time_zone": self.time_zone,
            "classification": self.classification,
            "reasons": list(self.reasons),
            "changes": list(self.lines),
        }


@dataclass(frozen=True)
class DryRunReport:
    definition_key: str
    from_version: int
    to_version: int
    description: str
    at: datetime
    enrolments: tuple[EnrolmentReport, ...]

    def counts(self) -> dict[str, int]:
        counts = {c.value: 0 for c in Classification}
        for row in self.enrolments:
            counts[row.classification] += 1
        return counts

    def as_dict(self) -> dict[str, Any]:
        return {
            "definition_key": self.definition_key,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "description": self.description,
            "at": self.at.isoformat(),
            "counts": self.counts(),
            "enrolments": [row.as_dict() for row in self.enrolments],
        }

    def text(self) -> str:
        """The report as a clinician reads it: counts, then each patient that is not automatic."""
        counts = self.counts()
        out = [
            f"{self.definition_key}: version {self.from_version} → {self.to_version} "
            f"(dry run at {self.at:%Y-%m-%d %H:%M} UTC, nothing written)",
        ]
        if self.description:
            out.append(self.description)
        out.append(
            f"{len(self.enrolments)} running enrolment(s): {counts['automatic']} automatic, "
            f"{counts['changes']} with changes, {counts['needs_approval']} needing a "
            f"clinician's approval, {counts['blocked']} blocked"
        )
        for row in self.enrolments:
            if row.classification == Classification.AUTOMATIC.value:
                continue
            out.append("")
            out.append(f"{row.patient} [{_LABELS[row.classification]}] ({row.time_zone})")
            out += [f"  ! {reason}" for reason in row.reasons]
            out += [f"  - {line}" for line in row.lines]
        return "\n".join(out)


_LABELS = {
    "automatic": "automatic",
    "changes": "changes",
    "needs_approval": "needs approval",
    "blocked": "blocked",
}


def _when(value: datetime | None, zone: ZoneInfo) -> str:
    if value is None:
        return "—"
    return value.astimezone(zone).strftime("%a %d %b %Y %H:%M %Z")


def plan_lines(
    plan: MigrationPlan, migration: Migration, zone: ZoneInfo, *, tasks: dict[str, int]
) -> list[str]:
    """Each change of a plan in one sentence, with state and event titles and times in the
    patient's zone. `tasks`: open tasks per "track:state" (to say how many move)."""
    new, old = migration.new, migration.old
    lines: list[str] = []

    def state_title(definition: PathwayDefinition, track: str, state: str | None) -> str:
        if state is None:
            return "—"
        spec = definition.tracks.get(track)
        title = spec.states[state].title if spec and state in spec.states else ""
        return f"{title or state} ({state})"

    def track_title(track: str) -> str:
        spec = new.tracks.get(track) or old.tracks.get(track)
        return (spec.title if spec else "") or track

    for change in plan.changes():
        if isinstance(change, StateChange):
            if change.source is None:
                lines.append(
                    f"{track_title(change.track)}: new in version {new.version}, starts in "
                    f"{state_title(new, change.track, change.target)}"
                )
            else:
                lines.append(
                    f"{track_title(change.track)}: {state_title(old, change.track, change.source)}"
                    f" becomes {state_title(new, change.track, change.target)}"
                )
        elif isinstance(change, TimerChange):
            event = new.events.get(change.event)
            what = f"'{(event.title if event else '') or change.event}'"
            if change.action == "cancel":
                lines.append(
                    f"Timer {what}: cancelled (was due {_when(change.before, zone)}): {change.why}"
                )
            elif change.action == "start":
                lines.append(
                    f"Timer {what}: starts, due {_when(change.after, zone)} ({change.why})"
                )
            else:
                lines.append(
                    f"Timer {what}: due {_when(change.before, zone)} → "
                    f"{_when(change.after, zone)} ({change.why})"
                )
        elif isinstance(change, ProposalChange):
            verb = {"close": "withdrawn", "remap": "kept"}.get(change.action, change.action)
            lines.append(f"Pending proposal on {track_title(change.track)}: {verb} ({change.why})")
        elif isinstance(change, SeriesChange):
            upcoming = _when(change.next_due_before, zone)
            if change.action == "stop":
                lines.append(
                    f"Check-ins '{change.series}' ({change.instrument}, every "
                    f"{format_duration(change.every_before)}): stopped; the next one "
                    f"({upcoming}) and its messages are cancelled ({change.why})"
                )
            else:
                every = format_duration(change.every_after) if change.every_after else "—"
                lines.append(
                    f"Check-ins '{change.series}' ({change.instrument}): every "
                    f"{format_duration(change.every_before)} → every {every} from the migration; "
                    f"the next one ({upcoming}) is replaced ({change.why})"
                )
        elif isinstance(change, TaskMove):
            count = tasks.get(f"{change.track}:{change.source}", 0)
            lines.append(
                f"{track_title(change.track)}: {count} open task(s) of "
                f"{state_title(old, change.track, change.source)} now belong to "
                f"{state_title(new, change.track, change.target)}"
            )
    lines += list(plan.notes)
    return lines


# --- reading what a plan needs ---------------------------------------------------------------


@dataclass(frozen=True)
class SeriesReader:
    """How the running check-in series of enrolments are read, each with its next occurrence.
    `bulk(enrolment_ids)`: enrolment id → its series, in one query (a dry run). `sql`: one scalar
    subquery for the plan read of one enrolment (`%(enrolment)s`): a JSON array of [series,
    instrument, every in seconds, next due or null], in the series' order (an apply)."""

    bulk: Callable[[Sequence[int]], dict[int, list[ActiveSeries]]]
    sql: str


# The reader of running check-in series, registered by check-ins from CheckinsConfig.ready()
# (ADR 0032): a plan stops, restarts or keeps them, so pathways reads them without importing
# check-ins.
SERIES_READERS: list[SeriesReader] = []


def register_series_reader(reader: SeriesReader) -> None:
    """The reader of running check-in series (registering again replaces it)."""
    SERIES_READERS[:] = [reader]


def _series_reader() -> SeriesReader:
    # Refused rather than planned blind: a plan that cannot see the running series would leave
    # the ones the new version stops or changes running as they were.
    if not SERIES_READERS:
        raise ImproperlyConfigured(
            "No check-in series reader is registered: a migration plan would not see them."
        )
    return SERIES_READERS[0]


def _active_series(enrolment_ids: Sequence[int]) -> dict[int, list[ActiveSeries]]:
    """The running check-in series of each enrolment, with its next occurrence (one query)."""
    return _series_reader().bulk(enrolment_ids)


def _open_tasks(enrolment_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    result: dict[int, dict[str, int]] = defaultdict(dict)
    rows = CareTask.objects.filter(enrolment_id__in=enrolment_ids, status=TaskStatus.OPEN).exclude(
        state=""
    )
    for enrolment_id, track, state in rows.values_list("enrolment_id", "track", "state"):
        key = f"{track}:{state}"
        result[enrolment_id][key] = result[enrolment_id].get(key, 0) + 1
    return result


def _snapshots(enrolments: Sequence[Enrolment], now: datetime) -> dict[int, Snapshot]:
    """Snapshots of many enrolments in a few statements: pending timers, pending proposals and
    thresholds read in bulk; the patient's facts only where a pending proposal's criteria may
    need re-checking (the other parts of a plan do not read facts)."""
    ids = [e.pk for e in enrolments]
    timers: dict[int, dict[str, ActiveTimer]] = defaultdict(dict)
    for t in PathwayTimer.objects.filter(enrolment_id__in=ids, status__in=_WAITING):
        timers[t.enrolment_id][t.key] = ActiveTimer(t.key, t.track, t.state, t.event, t.due_at)
    proposals: dict[int, dict[str, EngineProposal]] = defaultdict(dict)
    for p in Proposal.objects.filter(enrolment_id__in=ids, status=ProposalStatus.PENDING):
        proposals[p.enrolment_id][p.proposal_id] = proposal_from_model(p)
    thresholds: dict[tuple[int, str], dict[str, ThresholdValue]] = defaultdict(dict)
    clinics = {e.clinic_id for e in enrolments}
    keys = {e.definition_key for e in enrolments}
    for row in ClinicThreshold.objects.filter(clinic_id__in=clinics, pathway_key__in=keys):
        thresholds[(row.clinic_id, row.pathway_key)][row.name] = ThresholdValue(
            row.value, row.source
        )
    result = {}
    for e in enrolments:
        facts: dict[str, Any] = {}
        occurrences: dict[str, tuple[datetime, ...]] = {}
        if proposals.get(e.pk):
            facts, occurrences = facts_and_occurrences_for_patient(patient=e.patient, now=now)
        result[e.pk] = Snapshot(
            configuration=configuration_from_json(e.configuration),
            facts=facts,
            thresholds=thresholds.get((e.clinic_id, e.definition_key), {}),
            occurrences=occurrences,
            timers=timers.get(e.pk, {}),
            proposals=proposals.get(e.pk, {}),
        )
    return result


def _plan(
    migration: Migration,
    enrolment: Enrolment,
    snapshot: Snapshot,
    series: list[ActiveSeries],
    now: datetime,
) -> MigrationPlan:
    return plan_migration(
        snapshot, migration.old, migration.new, migration.spec, now, checkins=series
    )


def _report_row(
    migration: Migration,
    enrolment: Enrolment,
    plan: MigrationPlan,
    tasks: dict[str, int],
    *,
    time_zone: str | None = None,
) -> EnrolmentReport:
    """The report of one enrolment. With `time_zone` (an apply, which has it from the lock), the
    patient row is not read and the report names no one (the step log is the patient's own)."""
    if time_zone is None:
        patient = enrolment.patient
        time_zone = patient.time_zone
        label = f"{patient.given_name} {patient.family_name} (MRN {patient.mrn})"
    else:
        label = ""
    zone = ZoneInfo(time_zone)
    return EnrolmentReport(
        enrolment_id=enrolment.pk,
        enrolment_public_id=str(enrolment.public_id),
        patient_id=enrolment.patient_id,
        patient=label,
        time_zone=time_zone,
        classification=plan.classification.value,
        lines=tuple(plan_lines(plan, migration, zone, tasks=tasks)),
        reasons=(*plan.blocked, *plan.approval),
        plan=plan,
    )


def running_enrolments(
    migration: Migration,
    *,
    clinic_id: int | None = None,
    enrolment_ids: Iterable[int] | None = None,
) -> Any:
    """The enrolments a migration concerns: running (active or paused) on the old version."""
    rows = Enrolment.objects.filter(
        definition_key=migration.definition_key,
        definition_version=migration.from_version,
        status__in=RUNNING,
    )
    if clinic_id is not None:
        rows = rows.filter(clinic_id=clinic_id)
    if enrolment_ids is not None:
        rows = rows.filter(pk__in=list(enrolment_ids))
    return rows.select_related("patient").order_by("pk")


def migration_dry_run(
    *,
    definition_key: str,
    from_version: int,
    to_version: int,
    clinic_id: int | None = None,
    enrolment_ids: Iterable[int] | None = None,
    now: datetime | None = None,
    chunk: int = 1000,
) -> DryRunReport:
    """What the migration would do to every running enrolment of the old version (of a clinic,
    or those listed). Reads only: nothing is written."""
    migration = migration_get(definition_key, from_version, to_version)
    now = now or clock.now()
    rows: list[EnrolmentReport] = []
    enrolments = list(
        running_enrolments(migration, clinic_id=clinic_id, enrolment_ids=enrolment_ids)
    )
    for start in range(0, len(enrolments), chunk):
        part = enrolments[start : start + chunk]
        ids = [e.pk for e in part]
        snapshots = _snapshots(part, now)
        series = _active_series(ids)
        tasks = _open_tasks(ids)
        for enrolment in part:
            plan = _plan(
                migration, enrolment, snapshots[enrolment.pk], series.get(enrolment.pk, []), now
            )
            rows.append(_report_row(migration, enrolment, plan, tasks.get(enrolment.pk, {})))
    return DryRunReport(
        definition_key=definition_key,
        from_version=from_version,
        to_version=to_version,
        description=migration.spec.description,
        at=now,
        enrolments=tuple(rows),
    )


# --- applying --------------------------------------------------------------------------------

_t, _r, _c = (
    PathwayTimer._meta.db_table,
    Proposal._meta.db_table,
    ClinicThreshold._meta.db_table,
)
_WAITING_SQL = ", ".join(f"'{status.value}'" for status in _WAITING)
# What a plan reads of one enrolment, in one statement after its lock: timers still to fire
# (pending, or suspended while paused), pending proposals, the clinic's thresholds and the
# running check-in series with their next occurrence (the registered reader's subquery). The
# patient's facts are read only when a proposal is pending (the other parts of a plan do not
# read them). It also turns the commit's wait for the log flush off for this transaction (see
# `migration_apply_one`).
_PLAN_READ_SQL = f"""
SELECT
  set_config('synchronous_commit', 'off', true),
  (SELECT coalesce(json_agg(json_build_array(t.key, t.track, t.state, t.event, t.due_at)), '[]')
   FROM {_t} t WHERE t.enrolment_id = %(enrolment)s AND t.status IN ({_WAITING_SQL})),
  (SELECT coalesce(json_agg({proposal_json_sql("r")}), '[]')
   FROM {_r} r
   WHERE r.enrolment_id = %(enrolment)s AND r.status = '{ProposalStatus.PENDING.value}'),
  (SELECT coalesce(json_agg(json_build_array(c.name, c.value, c.source)), '[]')
   FROM {_c} c WHERE c.clinic_id = %(clinic)s AND c.pathway_key = %(definition_key)s),
  ({{series}})
"""  # noqa: S608 - names from the models' metadata, values bound


def _read_for_plan(enrolment: Enrolment, now: datetime) -> tuple[Snapshot, list[ActiveSeries]]:
    with connection.cursor() as cursor:
        cursor.execute(
            _PLAN_READ_SQL.format(series=_series_reader().sql),
            {
                "enrolment": enrolment.pk,
                "clinic": enrolment.clinic_id,
                "definition_key": enrolment.definition_key,
            },
        )
        _, timers, proposals, thresholds, series = cursor.fetchone()
    timers, proposals, thresholds, series = (
        json.loads(x) if isinstance(x, str) else x for x in (timers, proposals, thresholds, series)
    )
    facts: dict[str, Any] = {}
    occurrences: dict[str, tuple[datetime, ...]] = {}
    if proposals:
        from carehub.patients.models import Patient

        patient = Patient.objects.get(pk=enrolment.patient_id)
        facts, occurrences = facts_and_occurrences_for_patient(patient=patient, now=now)
    snapshot = Snapshot(
        configuration=configuration_from_json(enrolment.configuration),
        facts=facts,
        thresholds={name: ThresholdValue(value, source) for name, value, source in thresholds},
        occurrences=occurrences,
        timers={
            key: ActiveTimer(key, track, state, event, datetime.fromisoformat(due))
            for key, track, state, event, due in timers
        },
        proposals={item[0]: proposal_from_row(item) for item in proposals},
    )
    active = [
        ActiveSeries(
            name,
            instrument,
            timedelta(seconds=float(every)),
            datetime.fromisoformat(due) if due else None,
        )
        for name, instrument, every, due in series
    ]
    return snapshot, active


class _Request:
    """The audit trail's view of a command-line run: the acting user, no HTTP request."""

    def __init__(self, user: User | None, agent: str) -> None:
        self.user = user
        self.META = {"HTTP_USER_AGENT": agent}


@dataclass
class ApplyResult:
    migrated: list[int] = field(default_factory=list)  # enrolment ids
    already: list[int] = field(default_factory=list)  # on the new version: nothing to do
    blocked: list[int] = field(default_factory=list)
    needs_approval: list[int] = field(default_factory=list)  # left for a clinician
    locked: list[int] = field(default_factory=list)  # a change was in progress: run again
    skipped: list[int] = field(default_factory=list)  # ended, or on another version

    def counts(self) -> dict[str, int]:
        names = ("migrated", "already", "blocked", "needs_approval", "locked", "skipped")
        return {name: len(getattr(self, name)) for name in names}


def migration_apply(
    *,
    definition_key: str,
    from_version: int,
    to_version: int,
    user: User | None,
    clinic_id: int | None = None,
    enrolment_ids: Iterable[int] | None = None,
    approve: bool = False,
    request: Any = None,
    now: datetime | None = None,
) -> ApplyResult:
    """Migrate the running enrolments (of a clinic, or those listed), each in its own
    transaction. `approve`: also those a clinician must confirm (the user must be a physician).
    Enrolments already on the new version are counted, not migrated again."""
    migration = migration_get(definition_key, from_version, to_version)
    if approve and (user is None or user.role not in APPROVING_ROLES):
        raise NotPermitted("Only a physician may approve the migrations that need approval.")
    ids: list[int]
    if enrolment_ids is not None:
        ids = list(dict.fromkeys(int(i) for i in enrolment_ids))
    else:
        ids = list(running_enrolments(migration, clinic_id=clinic_id).values_list("pk", flat=True))
    result = ApplyResult()
    audit = request or _Request(user, "manage.py pathway migrate")
    for enrolment_id in ids:
        try:
            outcome = migration_apply_one(
                migration=migration,
                enrolment_id=enrolment_id,
                user=user,
                approve=approve,
                request=audit,
                now=now,
            )
        except Conflict:
            result.locked.append(enrolment_id)
            continue
        getattr(result, outcome).append(enrolment_id)
    return result


@transaction.atomic(durable=True)
def migration_apply_one(
    *,
    migration: Migration,
    enrolment_id: int,
    user: User | None,
    approve: bool = False,
    request: Any = None,
    now: datetime | None = None,
) -> str:
    """Migrate one enrolment under its row lock. Returns what happened: `migrated`, `already`,
    `blocked`, `needs_approval` or `skipped`; Conflict when its lock is held (run again).

    The commit does not wait for the write-ahead log's flush (`synchronous_commit = off`, this
    transaction only): a server crash may forget the last migrations committed (with their
    step, audit and outbox rows, all or nothing), which leaves those enrolments on the old
    version for the next run: migrating is idempotent. Without it, the flush of one commit
    per enrolment bounds a batch's rate."""
    # The dispatch's row lock, without a savepoint: a refused lock fails this transaction.
    locked = store.lock_for_change(enrolment_id, savepoint=False)
    enrolment = locked.enrolment
    if enrolment.definition_key != migration.definition_key:
        return "skipped"
    if enrolment.definition_version == migration.to_version:
        return "already"
    if enrolment.definition_version != migration.from_version or enrolment.status not in RUNNING:
        return "skipped"
    now = now or clock.now()
    snapshot, series = _read_for_plan(enrolment, now)
    plan = _plan(migration, enrolment, snapshot, series, now)
    if plan.classification is Classification.BLOCKED:
        return "blocked"
    if plan.classification is Classification.NEEDS_APPROVAL and not approve:
        return "needs_approval"
    from carehub.patients.models import Patient

    tasks = _open_tasks([enrolment.pk]).get(enrolment.pk, {}) if plan.tasks else {}
    report = _report_row(migration, enrolment, plan, tasks, time_zone=locked.time_zone)
    _write(migration, enrolment, plan, report, user, now, approved=approve)
    audit_record(
        request=request or _Request(user, "carehub"),
        action=Action.ENROLMENT_MIGRATE,
        # The patient's id and clinic, without reading the row again.
        patient=Patient(pk=enrolment.patient_id, clinic_id=enrolment.clinic_id),
        obj=enrolment,
        detail={
            "from": migration.from_version,
            "to": migration.to_version,
            "classification": plan.classification.value,
        },
    )
    return "migrated"


def _write(
    migration: Migration,
    enrolment: Enrolment,
    plan: MigrationPlan,
    report: EnrolmentReport,
    user: User | None,
    now: datetime,
    *,
    approved: bool,
) -> EnrolmentMigration:
    wall = clock.now()
    previous: dict[str, Any] = {
        "definition_version": enrolment.definition_version,
        "configuration": enrolment.configuration,
        "version": enrolment.version,
        "timers_closed": [],
        "timers_opened": [],
        "proposals": [],
        "tasks": [],
        "series": [],
    }
    # Timers: the pending row of each changed key is closed (kept, for an exact rollback), and
    # the new due time is a new pending row.
    waiting = PathwayTimer.objects.filter(enrolment=enrolment, status__in=_WAITING)
    pending = {t.key: t for t in waiting} if plan.timers else {}
    paused = enrolment.status == EnrolmentStatus.PAUSED
    for change in plan.timers:
        current = pending.get(change.key)
        if current is not None:
            previous["timers_closed"].append([current.pk, current.status])
            current.status = TimerStatus.CANCELLED
            current.closed_at = now
            current.save(update_fields=["status", "closed_at", "updated_at"])
        if change.action != "cancel":
            assert change.after is not None
            opened = PathwayTimer.objects.create(
                enrolment=enrolment,
                key=change.key,
                track=change.track,
                state=change.state,
                event=change.event,
                due_at=change.after,
                status=TimerStatus.SUSPENDED if paused else TimerStatus.PENDING,
            )
            previous["timers_opened"].append(opened.pk)
    for decided in plan.proposals:
        if decided.action == "keep":
            continue
        row = Proposal.objects.select_for_update().get(
            enrolment=enrolment, proposal_id=decided.proposal_id, status=ProposalStatus.PENDING
        )
        previous["proposals"].append(
            {"id": row.pk, "transition_id": row.transition_id, "status": row.status}
        )
        if decided.action == "close":
            row.status = ProposalStatus.WITHDRAWN
            row.decided_at = now
            row.reason = f"Pathway migrated to version {migration.to_version}: {decided.why}"[:1000]
        else:
            assert decided.transition_after is not None
            row.transition_id = decided.transition_after
        row.save(update_fields=["status", "decided_at", "reason", "transition_id", "updated_at"])
    for move in plan.tasks:
        moved = CareTask.objects.filter(
            enrolment=enrolment, status=TaskStatus.OPEN, track=move.track, state=move.source
        )
        ids = list(moved.values_list("pk", flat=True))
        moved.update(state=move.target, updated_at=wall)
        previous["tasks"].append({"ids": ids, "state": move.source})
    for series in plan.checkins:
        previous["series"].append(
            {
                "series": series.series,
                "instrument": series.instrument,
                "every": series.every_before.total_seconds(),
                "action": series.action,
            }
        )

    enrolment.definition_version = migration.to_version
    enrolment.configuration = configuration_to_json(plan.configuration)
    enrolment.version += 1
    enrolment.save(update_fields=["definition_version", "configuration", "version", "updated_at"])
    summary = plan.summary()
    effects = [effect.as_dict() for effect in plan.effects]
    for effect in effects:  # its messages not sent yet are cancelled, saying why
        if effect["kind"] == "stop_checkins":
            effect["reason"] = (
                f"the check-in series '{effect['series']}' was stopped when the pathway was "
                f"migrated to version {migration.to_version}"
            )
    step = store.write_step(
        enrolment,
        event="migration",
        event_key=f"migration:{migration.from_version}:{migration.to_version}:{enrolment.version}",
        outcome="migrated",
        user=user,
        explanation={
            "notes": [summary, *(["approved by a physician"] if approved else [])],
            "checks": [],
            "summary": summary,
            "migration": report.as_dict(),
        },
        now=now,
        effects=effects,
        outbox_key="migration",
        wall=wall,
    )
    return EnrolmentMigration.objects.create(
        enrolment=enrolment,
        definition_key=migration.definition_key,
        from_version=migration.from_version,
        to_version=migration.to_version,
        classification=plan.classification.value,
        report=report.as_dict(),
        previous=previous,
        version_after=enrolment.version,
        step=step,
        applied_at=now,
        applied_by=user,
    )


# --- rollback --------------------------------------------------------------------------------


@transaction.atomic(durable=True)
def migration_rollback(
    *,
    enrolment_id: int,
    user: User | None,
    request: Any = None,
    now: datetime | None = None,
) -> EnrolmentMigration:
    """Undo the enrolment's last applied migration: its previous version, configuration and
    pending timers (the same rows) come back, proposals and tasks as they were, and check-in
    series the migration stopped or restarted start again with their old interval (through
    the outbox). Refused (Conflict) when the pathway changed since the migration."""
    enrolment = store.lock_for_change(enrolment_id, savepoint=False).enrolment
    done = (
        EnrolmentMigration.objects.filter(enrolment=enrolment, status=MigrationStatus.APPLIED)
        .order_by("-pk")
        .first()
    )
    if done is None:
        raise Conflict("This pathway has no migration to roll back.")
    if enrolment.version != done.version_after or enrolment.definition_version != done.to_version:
        raise Conflict(
            "The pathway changed since it was migrated (version "
            f"{done.version_after} → {enrolment.version}); a rollback would not be exact.",
            extra={"current": {"version": enrolment.version}},
        )
    now = now or clock.now()
    wall = clock.now()
    previous = done.previous
    # Closed first: a restored pending timer never meets the migration's under the same key.
    PathwayTimer.objects.filter(pk__in=previous["timers_opened"]).update(
        status=TimerStatus.CANCELLED, closed_at=now, updated_at=wall
    )
    for pk, status in previous["timers_closed"]:  # the same rows, as they were
        PathwayTimer.objects.filter(pk=pk).update(status=status, closed_at=None, updated_at=wall)
    for item in previous["proposals"]:
        Proposal.objects.filter(pk=item["id"]).update(
            status=item["status"],
            transition_id=item["transition_id"],
            decided_at=None,
            reason="",
            updated_at=wall,
        )
    for item in previous["tasks"]:
        CareTask.objects.filter(pk__in=item["ids"], status=TaskStatus.OPEN).update(
            state=item["state"], updated_at=wall
        )
    effects: list[dict[str, Any]] = []
    track = next(iter(previous["configuration"]), "")
    for item in previous["series"]:
        if item["action"] == "restart":
            effects.append(
                {
                    "kind": "stop_checkins",
                    "track": track,
                    "series": item["series"],
                    "instrument": None,
                }
            )
        effects.append(
            {
                "kind": "start_checkins",
                "track": track,
                "instrument": item["instrument"],
                "every": item["every"],
                "series": item["series"],
            }
        )
    enrolment.definition_version = previous["definition_version"]
    enrolment.configuration = previous["configuration"]
    enrolment.version += 1
    enrolment.save(update_fields=["definition_version", "configuration", "version", "updated_at"])
    note = (
        f"Migration to version {done.to_version} rolled back: version "
        f"{done.from_version}, its states and timers restored"
    )
    store.write_step(
        enrolment,
        event="migration_rollback",
        event_key=f"migration_rollback:{done.pk}",
        outcome="migrated",
        user=user,
        explanation={"notes": [note], "checks": [], "summary": note},
        now=now,
        effects=effects,
        outbox_key="migration_rollback",
        wall=wall,
    )
    done.status = MigrationStatus.ROLLED_BACK
    done.rolled_back_at = now
    done.rolled_back_by = user
    done.save(update_fields=["status", "rolled_back_at", "rolled_back_by", "updated_at"])
    from carehub.patients.models import Patient

    audit_record(
        request=request or _Request(user, "carehub"),
        action=Action.ENROLMENT_MIGRATE_ROLLBACK,
        patient=Patient(pk=enrolment.patient_id, clinic_id=enrolment.clinic_id),
        obj=enrolment,
        detail={"from": done.to_version, "to": done.from_version},
    )
    return done
