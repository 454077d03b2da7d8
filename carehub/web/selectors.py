"""Reads for the staff web UI, always through the scoped querysets of `carehub.care_access`.

The caseload (`caseload_page`) is a constant number of queries whatever the page size: one
keyset-paginated query picks the page's patients (filters and sort keys only); one hand-written
statement reads what their rows show (open flags, pending escalations, overdue check-ins, the
next due item, the last progress), each a probe of an indexed foreign key for those patients
only; the track states of the page come from one more query, and the counts at the top from one
aggregate. Pages never use OFFSET: the cursor carries the sort key of the last row shown.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import connection
from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone
from django.utils.dates import MONTHS_3

from carehub.accounts.models import User
from carehub.care_access import (
    enrolments_visible_to,
    flags_visible_to,
    messages_visible_to,
    patients_visible_to,
    tasks_visible_to,
    visible_patient_condition,
)
from carehub.checkins.models import Checkin, CheckinStatus
from carehub.core import clock
from carehub.core.exceptions import InvalidInput, NotFound
from carehub.messaging.models import Message, MessageStatus
from carehub.observations.models import Kind, Observation
from carehub.observations.selectors import observation_history
from carehub.pathways.models import (
    Enrolment,
    EnrolmentStatus,
    PathwayStep,
    PathwayTimer,
    Proposal,
    ProposalStatus,
    TimerStatus,
)
from carehub.pathways.registry import definition_get, registry
from carehub.patients.models import Patient
from carehub.web.models import Attention, CaseloadEntry
from carehub.web.presentation import (
    event_title,
    humanise,
    instrument_title,
    short_track_title,
    show_value,
    state_title,
    track_title,
)
from carehub.worklists.models import CareTask, Flag, FlagStatus, Severity, TaskStatus
from workflows import PathwayDefinition

OPEN_ENROLMENT = (EnrolmentStatus.ACTIVE, EnrolmentStatus.PAUSED)
# A check-in still open this long after it was due counts as overdue on the caseload.
OVERDUE_AFTER = timedelta(hours=24)
# Missed check-ins counted on the caseload (a rolling window).
MISSED_WINDOW = timedelta(days=28)
PAGE_SIZES = (10, 25, 50, 100)
MAX_PAGE_SIZE = 100


# --- the caseload ---------------------------------------------------------------------------


class Sort:
    NAME = "name"  # family name, given name (the index order)
    ATTENTION = "attention"  # urgent flags, pending escalations, overdue check-ins first
    PROGRESS = "progress"  # longest without progress first

    CHOICES = (
        (ATTENTION, "Needs attention first"),
        (NAME, "Name"),
        (PROGRESS, "Longest without progress first"),
    )


class FlagFilter:
    URGENT = "urgent"
    ANY = "any"
    APPROVAL = "approval"
    OVERDUE = "overdue"
    STALLED = "stalled"

    CHOICES = (
        (URGENT, "Urgent red flag"),
        (ANY, "Any unresolved flag"),
        (APPROVAL, "Escalation waiting for approval"),
        (OVERDUE, "Overdue or missed check-ins"),
        (STALLED, "Stalled"),
    )


# Sort → the annotated fields of the keyset, all ascending (descending counts are negated).
_SORT_KEYS: dict[str, tuple[str, ...]] = {
    Sort.NAME: ("family_name", "given_name", "id"),
    # `attention` (urgent flags, then escalations waiting) and the names are the caseload
    # entry's own columns, in the order of its index `caseload_entry_order`.
    Sort.ATTENTION: ("attention", "calm_overdue", "entry_family", "entry_given", "id"),
    Sort.PROGRESS: ("progress_key", "family_name", "given_name", "id"),
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Urgent flags first, then warnings, then the rest.
SEVERITY_RANK = Case(
    When(severity=Severity.URGENT, then=Value(0)),
    When(severity=Severity.WARNING, then=Value(1)),
    default=Value(2),
    output_field=IntegerField(),
)


@dataclass(frozen=True)
class CaseloadQuery:
    search: str = ""
    track: str = ""
    stage: str = ""
    discipline: str = ""
    flag: str = ""
    sort: str = Sort.ATTENTION
    page_size: int = 50
    cursor: str = ""


@dataclass(frozen=True)
class TrackCell:
    track: str
    title: str
    state: str
    state_title: str
    stage: str
    final: bool
    short_title: str = ""

    @property
    def chip(self) -> str:
        """The state's title without its parenthesis ("Skill building (sessions 4-10)")."""
        return self.state_title.split(" (")[0]


@dataclass
class CaseloadRow:
    patient: Patient
    tracks: list[TrackCell] = field(default_factory=list)
    paused: bool = False
    next_due_at: datetime | None = None
    next_due_label: str = ""
    stalled: bool = False
    urgent_flags: int = 0
    open_flags: int = 0
    pending_proposals: int = 0
    overdue_checkins: int = 0
    last_progress_at: datetime | None = None
    top_flag_message: str = ""
    pending_summary: str = ""
    # What the page prints, prepared once per row (the template only places it).
    url: str = ""
    name: str = ""
    next_due_iso: str = ""  # `|date:"c"`
    next_due_date: str = ""  # `|date:"j M Y"`
    overdue: bool = False
    progress_iso: str = ""
    progress_date: str = ""
    progress_text: str = ""  # what last moved, in words ("Now Interventional review")
    peg_text: str = ""  # "6.9"
    peg_change_text: str = ""  # "12 % better than baseline"
    peg_change_class: str = ""  # better / worse / same
    contact_problem: str = ""  # the latest dead message's error
    html: str = ""  # the row's markup (`carehub.web.caseload_rows.row_html`)


@dataclass(frozen=True)
class CaseloadCounts:
    total: int
    urgent: int
    flagged: int
    approval: int
    overdue: int
    stalled: int


@dataclass
class CaseloadPage:
    rows: list[CaseloadRow]
    counts: CaseloadCounts
    next_cursor: str
    query: CaseloadQuery
    stalled_weeks: int
    now: datetime

    @property
    def sort_label(self) -> str:
        return dict(Sort.CHOICES).get(self.query.sort, "").lower()


def stalled_after() -> timedelta:
    return timedelta(weeks=settings.WEB_STALLED_AFTER_WEEKS)


def _entry_conditions(now: datetime, entry: str = "caseload_entry__") -> dict[str, Q]:
    """Each "needs" test of the caseload on a patient's caseload entry (`CaseloadEntry`,
    whose columns the database keeps equal to its view `web_caseload_source`, where each fact
    is defined): on a query of patients, or of the entries themselves (`entry=""`).

    Urgent: an unresolved (open or acknowledged) urgent flag. Any: an unresolved flag.
    Approval: an escalation waiting for approval. Overdue: a check-in still open a day after it
    was due, or one missed within the last four weeks. Stalled: on an active pathway that has
    not moved (started or transitioned) for `WEB_STALLED_AFTER_WEEKS`."""
    return {
        FlagFilter.URGENT: Q(**{f"{entry}urgent_flags__gt": 0}),
        FlagFilter.ANY: Q(**{f"{entry}unresolved_flags__gt": 0}),
        FlagFilter.APPROVAL: Q(**{f"{entry}pending_proposals__gt": 0}),
        FlagFilter.OVERDUE: Q(**{f"{entry}oldest_open_checkin_due__lt": now - OVERDUE_AFTER})
        | Q(**{f"{entry}latest_missed_checkin_closes__gte": now - MISSED_WINDOW}),
        FlagFilter.STALLED: Q(**{f"{entry}on_active_pathway": True})
        & (
            Q(**{f"{entry}last_progress_at__isnull": True})
            | Q(**{f"{entry}last_progress_at__lt": now - stalled_after()})
        ),
    }


def _caseload_rows(user: User) -> QuerySet[Patient]:
    """The user's active patients (an active or paused enrolment), through their entries."""
    if user.clinic_id is None:
        return Patient.objects.none()
    return patients_visible_to(user).filter(
        caseload_entry__clinic_id=user.clinic_id, caseload_entry__in_caseload=True
    )


_COUNTED = (
    ("urgent", FlagFilter.URGENT),
    ("flagged", FlagFilter.ANY),
    ("approval", FlagFilter.APPROVAL),
    ("overdue", FlagFilter.OVERDUE),
    ("stalled", FlagFilter.STALLED),
)


def caseload_counts(user: User, now: datetime) -> CaseloadCounts:
    """The numbers at the top of the caseload, exact, in one aggregate over the user's
    caseload entries (one narrow row a patient, read from the entries' index; the tests that
    depend on the time compare the entry's instants with `now`)."""
    conditions = _entry_conditions(now, entry="")
    counts = CaseloadEntry.objects.filter(
        visible_patient_condition(user), in_caseload=True
    ).aggregate(
        total=Count("pk"),
        **{name: Count("pk", filter=conditions[flag]) for name, flag in _COUNTED},
    )
    return CaseloadCounts(**counts)


# What a page's rows show, for those rows only, in one statement: the numbers (unresolved and
# urgent unresolved flags, pending escalations, overdue or missed check-ins, the last progress,
# an active pathway), the next open task, pending timer and scheduled check-in, the top
# unresolved flag and the oldest pending escalation. Each LATERAL or subquery is the index
# probe the correlated subqueries of `caseload_counts`, `_conditions` and `_progress_key` make
# (same filters, same order). Written by hand: building that many ORM subqueries cost more
# CPU than PostgreSQL spends running them.
_ROW_DETAILS_SQL = """
SELECT p.id,
       flags.open_flags, flags.urgent_flags,
       (SELECT count(*) FROM pathways_proposal pr
          JOIN pathways_enrolment e ON e.id = pr.enrolment_id
         WHERE e.patient_id = p.id AND pr.status = %(proposal_pending)s),
       (SELECT count(*) FROM checkins_checkin c
         WHERE c.patient_id = p.id AND c.status IN (%(checkin_open)s, %(missed)s)
           AND (   (c.status = %(checkin_open)s AND c.due_at < %(overdue_before)s)
                OR (c.status = %(missed)s AND c.closes_at >= %(missed_since)s))),
       progress.at,
       EXISTS (SELECT 1 FROM pathways_enrolment e
                WHERE e.patient_id = p.id AND e.status = %(active)s),
       task.due_at, task.title,
       timer.due_at, timer.event,
       checkin.due_at, checkin.instrument,
       (SELECT f.message FROM worklists_flag f
         WHERE f.patient_id = p.id AND f.status <> %(flag_resolved)s
         ORDER BY CASE f.severity WHEN %(urgent)s THEN 0 WHEN %(warning)s THEN 1 ELSE 2 END,
                  f.raised_at DESC
         LIMIT 1),
       (SELECT pr.summary FROM pathways_proposal pr
          JOIN pathways_enrolment e ON e.id = pr.enrolment_id
         WHERE e.patient_id = p.id AND pr.status = %(proposal_pending)s
         ORDER BY pr.proposed_at
         LIMIT 1),
       progress.transitions,
       peg.value_number, peg.observed_at,
       (SELECT b.value_number FROM observations_observation b
         WHERE b.patient_id = p.id AND b.kind = %(score)s AND b.code = 'peg'
           AND NOT b.entered_in_error
           AND NOT EXISTS (SELECT 1 FROM observations_observation c WHERE c.corrects_id = b.id)
         ORDER BY b.is_baseline DESC,
                  CASE WHEN b.is_baseline THEN b.observed_at END DESC,
                  b.observed_at
         LIMIT 1),
       dead.last_error
  FROM unnest(%(ids)s::bigint[]) AS p(id)
  CROSS JOIN LATERAL (
       SELECT count(*) AS open_flags,
              count(*) FILTER (WHERE f.severity = %(urgent)s) AS urgent_flags
         FROM worklists_flag f
        WHERE f.patient_id = p.id AND f.status <> %(flag_resolved)s) flags
  LEFT JOIN LATERAL (
       SELECT t.due_at, t.title FROM worklists_caretask t
        WHERE t.patient_id = p.id AND t.status = %(task_open)s AND t.due_at IS NOT NULL
        ORDER BY t.due_at, t.id
        LIMIT 1) task ON true
  LEFT JOIN LATERAL (
       SELECT pt.due_at, pt.event FROM pathways_pathwaytimer pt
         JOIN pathways_enrolment e ON e.id = pt.enrolment_id
        WHERE e.patient_id = p.id AND pt.status = %(timer_pending)s
        ORDER BY pt.due_at, pt.id
        LIMIT 1) timer ON true
  LEFT JOIN LATERAL (
       SELECT s.at, s.transitions FROM pathways_pathwaystep s
         JOIN pathways_enrolment e ON e.id = s.enrolment_id
        WHERE e.patient_id = p.id AND e.status = %(active)s
          AND s.outcome IN ('started', 'transitioned')
        ORDER BY s.at DESC
        LIMIT 1) progress ON true
  LEFT JOIN LATERAL (
       SELECT o.value_number, o.observed_at FROM observations_observation o
        WHERE o.patient_id = p.id AND o.kind = %(score)s AND o.code = 'peg'
          AND NOT o.entered_in_error
          AND NOT EXISTS (SELECT 1 FROM observations_observation c WHERE c.corrects_id = o.id)
        ORDER BY o.observed_at DESC
        LIMIT 1) peg ON true
  LEFT JOIN LATERAL (
       SELECT m.last_error FROM messaging_message m
        WHERE m.patient_id = p.id AND m.status = %(message_dead)s AND m.to_staff_id IS NULL
        ORDER BY m.created_at DESC
        LIMIT 1) dead ON true
  LEFT JOIN LATERAL (
       SELECT c.due_at, c.instrument FROM checkins_checkin c
        WHERE c.patient_id = p.id AND c.status IN (%(scheduled)s, %(checkin_open)s)
          AND c.due_at >= %(now)s
        ORDER BY c.due_at, c.id
        LIMIT 1) checkin ON true
"""


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


def _states_for_filter(
    definitions: Sequence[PathwayDefinition], track: str, stage: str
) -> dict[tuple[str, int], list[str]]:
    """For each definition version, the states of `track` in `stage` (any stage when empty)."""
    states: dict[tuple[str, int], list[str]] = {}
    for definition in definitions:
        spec = definition.tracks.get(track)
        if spec is None:
            continue
        states[(definition.key, definition.version)] = [
            name for name, state in spec.states.items() if not stage or state.stage == stage
        ]
    return states


def caseload_definitions(user: User) -> list[PathwayDefinition]:
    """The definition versions the user's open enrolments use (for filters and labels)."""
    # One probe a published version (LIMIT 1 on `enrolment_open_definitions`), not a pass over
    # the clinic's enrolments.
    open_enrolments = Enrolment.objects.filter(
        visible_patient_condition(user), status__in=OPEN_ENROLMENT
    ).order_by()
    probes = [
        open_enrolments.filter(
            definition_key=definition.key, definition_version=definition.version
        ).values_list("definition_key", "definition_version")[:1]
        for definition in registry()
    ]
    if not probes:
        return []
    first, *rest = probes
    pairs = set(first.union(*rest, all=True) if rest else first)
    return [definition_get(key, version) for key, version in sorted(pairs)]


def filter_options(definitions: Sequence[PathwayDefinition]) -> dict[str, Any]:
    """The tracks and stages the caseload's filters offer, from `caseload_definitions`."""
    tracks: dict[str, str] = {}
    stages: dict[str, None] = {}
    for definition in definitions:
        for name, track in definition.tracks.items():
            tracks.setdefault(name, track.title or name)
            for stage in track.stages:
                stages.setdefault(stage)
    return {"tracks": sorted(tracks.items(), key=lambda t: t[1]), "stages": list(stages)}


# A cursor names its order's keys: a cursor of another build's attention order (which had
# other keys) is read as no cursor (the first page).
_CURSOR_TAGS = {Sort.ATTENTION: "attention-entry"}


def _encode_cursor(values: Sequence[Any], sort: str) -> str:
    plain = [v.isoformat() if isinstance(v, datetime) else v for v in values]
    tag = _CURSOR_TAGS.get(sort, sort)
    return signing.dumps({"s": tag, "v": plain}, salt="web.caseload", compress=True)


def _decode_cursor(cursor: str, sort: str) -> list[Any] | None:
    if not cursor:
        return None
    try:
        data = signing.loads(cursor, salt="web.caseload")
    except signing.BadSignature as exc:
        raise InvalidInput("That page link is no longer valid.", extra={"field": "cursor"}) from exc
    if data.get("s") != _CURSOR_TAGS.get(sort, sort):
        return None
    values = list(data["v"])
    keys = _SORT_KEYS[sort]
    for index, key in enumerate(keys):
        if key == "progress_key":
            values[index] = datetime.fromisoformat(values[index])
    return values


def _after(keys: Sequence[str], values: Sequence[Any]) -> Q:
    """Rows strictly after `values` in the ascending order of `keys` (lexicographic)."""
    condition = Q()
    for position in range(len(keys) - 1, -1, -1):
        step = Q(**{f"{keys[position]}__gt": values[position]})
        equal = Q(**{keys[i]: values[i] for i in range(position)})
        condition = (equal & step) | condition if condition else equal & step
    return condition


_NAME_KEYS = ("entry_family", "entry_given", "id")


def _attention_page(
    rows: QuerySet[Patient], *, now: datetime, after: Sequence[Any] | None, size: int
) -> list[Patient]:
    """`size + 1` patients of `rows` needing attention first, after the keyset `after`, in one
    statement that never sorts the caseload.

    The order is (attention, calm_overdue, family name, given name, id). `attention` (urgent
    flags, then escalations waiting) is a column of the caseload entry, first in its index
    `caseload_entry_order` after the clinic; whether check-ins are overdue depends on the time,
    so it is compared with `now` as the rows are read. The statement is a UNION ALL of three
    parts, each at most `size + 1` rows: the few patients with urgent flags or escalations
    (sorted in full), and, in the index's name order, those among the rest with overdue or
    missed check-ins, then those without (each a walk of the index that stops at its limit).
    The union's `size + 1` rows are then put in order."""
    entry = "caseload_entry__"
    open_before, missed_since = now - OVERDUE_AFTER, now - MISSED_WINDOW
    overdue = Q(**{f"{entry}oldest_open_checkin_due__lt": open_before}) | Q(
        **{f"{entry}latest_missed_checkin_closes__gte": missed_since}
    )
    # The same test negated, spelled out (NULL is "none"), so the planner estimates each part.
    not_overdue = (
        Q(**{f"{entry}oldest_open_checkin_due__isnull": True})
        | Q(**{f"{entry}oldest_open_checkin_due__gte": open_before})
    ) & (
        Q(**{f"{entry}latest_missed_checkin_closes__isnull": True})
        | Q(**{f"{entry}latest_missed_checkin_closes__lt": missed_since})
    )
    rows = rows.annotate(
        attention=F(f"{entry}attention"),
        calm_overdue=Case(
            When(overdue, then=Value(0)), default=Value(1), output_field=IntegerField()
        ),
        entry_family=F(f"{entry}family_name"),
        entry_given=F(f"{entry}given_name"),
    )
    keys = _SORT_KEYS[Sort.ATTENTION]
    needs = rows.filter(caseload_entry__attention__lt=Attention.NONE)
    if after is not None:
        needs = needs.filter(_after(keys, after))
    parts = [needs.order_by(*keys)[: size + 1]]
    for calm in (0, 1):
        group = (Attention.NONE, calm)
        if after is not None and tuple(after[:2]) > group:
            continue  # the page starts after this part
        part = rows.filter(
            overdue if calm == 0 else not_overdue, caseload_entry__attention=Attention.NONE
        )
        if after is not None and tuple(after[:2]) == group:
            # Rows after the cursor's name; the first condition bounds the index walk.
            part = part.filter(
                Q(caseload_entry__family_name__gte=after[2]), _after(_NAME_KEYS, after[2:])
            )
        parts.append(part.order_by(*_NAME_KEYS)[: size + 1])
    first, *rest = parts
    union = first.union(*rest, all=True) if rest else first
    return list(union.order_by(*keys)[: size + 1])


def caseload_page(
    *,
    user: User,
    query: CaseloadQuery,
    now: datetime | None = None,
    definitions: Sequence[PathwayDefinition] | None = None,
) -> CaseloadPage:
    """One page of the user's caseload and the counts of the whole caseload (scope applies).

    `definitions` are `caseload_definitions(user)` when the caller already has them (the page
    reads them once for its filters and its rows)."""
    now = now or clock.now()
    sort = query.sort if query.sort in _SORT_KEYS else Sort.NAME
    size = max(1, min(query.page_size, MAX_PAGE_SIZE))
    definitions = caseload_definitions(user) if definitions is None else definitions
    counts = caseload_counts(user, now)
    # Only what a row shows: sorting and counting the caseload moves narrow rows.
    rows = _caseload_rows(user).only("id", "clinic_id", "mrn", "given_name", "family_name")
    for word in query.search.split()[:5]:
        rows = rows.filter(
            Q(given_name__icontains=word) | Q(family_name__icontains=word) | Q(mrn__icontains=word)
        )
    if query.track:
        by_version = _states_for_filter(definitions, query.track, query.stage)
        match = Q(pk__in=[])
        for (key, version), states in by_version.items():
            match |= Q(
                definition_key=key,
                definition_version=version,
                **{f"configuration__{query.track}__state__in": states},
            )
        rows = rows.filter(
            Exists(
                Enrolment.objects.filter(match, patient=OuterRef("pk"), status__in=OPEN_ENROLMENT)
            )
        )
    elif query.stage:
        match = Q(pk__in=[])
        for definition in definitions:
            for track_name, track in definition.tracks.items():
                states = [n for n, s in track.states.items() if s.stage == query.stage]
                if states:
                    match |= Q(
                        definition_key=definition.key,
                        definition_version=definition.version,
                        **{f"configuration__{track_name}__state__in": states},
                    )
        rows = rows.filter(
            Exists(
                Enrolment.objects.filter(match, patient=OuterRef("pk"), status__in=OPEN_ENROLMENT)
            )
        )
    if query.discipline:
        rows = rows.filter(
            Exists(
                CareTask.objects.filter(
                    patient=OuterRef("pk"), status=TaskStatus.OPEN, discipline=query.discipline
                )
            )
        )
    if query.flag:
        conditions = _entry_conditions(now)
        if query.flag in conditions:
            rows = rows.filter(conditions[query.flag])
    after = _decode_cursor(query.cursor, sort)
    if sort == Sort.ATTENTION:
        page = _attention_page(rows, now=now, after=after, size=size)
    else:
        if sort == Sort.PROGRESS:
            rows = rows.annotate(
                progress_key=Coalesce(F("caseload_entry__last_progress_at"), Value(_EPOCH))
            )
        if after is not None:
            rows = rows.filter(_after(_SORT_KEYS[sort], after))
        page = list(rows.order_by(*_SORT_KEYS[sort])[: size + 1])
    keys = _SORT_KEYS[sort]
    more = len(page) > size
    page = page[:size]
    next_cursor = (
        _encode_cursor([getattr(page[-1], key) for key in keys], sort) if more and page else ""
    )

    enrolments = (
        Enrolment.objects.filter(patient__in=[p.pk for p in page], status__in=OPEN_ENROLMENT)
        .order_by("patient_id", "pk")
        .only("patient_id", "definition_key", "definition_version", "configuration", "status")
    )
    by_patient: dict[int, list[Enrolment]] = {}
    for enrolment in enrolments:
        by_patient.setdefault(enrolment.patient_id, []).append(enrolment)

    details = row_details([p.pk for p in page], now)
    url_of = _patient_url_maker()
    result = []
    stalled_before = now - stalled_after()
    for patient in page:
        row = CaseloadRow(patient=patient, url=url_of(patient.pk))
        row.name = f"{patient.family_name}, {patient.given_name}"
        for enrolment in by_patient.get(patient.pk, []):
            row.paused = row.paused or enrolment.status == EnrolmentStatus.PAUSED
            row.tracks.extend(track_cells(enrolment))
        detail = details.get(patient.pk) or RowDetails()
        row.urgent_flags = detail.urgent_flags
        row.open_flags = detail.open_flags
        row.pending_proposals = detail.pending_proposals
        row.overdue_checkins = detail.overdue_checkins
        row.last_progress_at = detail.last_progress_at
        row.stalled = detail.has_active and (detail.last_progress_at or _EPOCH) < stalled_before
        if detail.last_progress_at is not None:
            row.progress_iso, row.progress_date = _shown_date(detail.last_progress_at)
        row.top_flag_message = detail.top_flag_message or ""
        row.pending_summary = detail.pending_summary or ""
        row.contact_problem = (detail.contact_problem or "")[:120]
        _describe_progress(row, detail, by_patient.get(patient.pk, []), now)
        _describe_peg(row, detail)
        row.next_due_at, row.next_due_label = _next_due(detail)
        if row.next_due_at is not None:
            row.next_due_iso, row.next_due_date = _shown_date(row.next_due_at)
            row.overdue = row.next_due_at < now
        result.append(row)
    return CaseloadPage(
        rows=result,
        counts=counts,
        next_cursor=next_cursor,
        query=query,
        stalled_weeks=settings.WEB_STALLED_AFTER_WEEKS,
        now=now,
    )


_URL_MARK = 987654321987654321  # stands for the patient id in a reversed URL


def _patient_url_maker() -> Any:
    """`reverse("web:patient", ...)` for many patients at the cost of one reverse."""
    head, tail = reverse("web:patient", args=[_URL_MARK]).split(str(_URL_MARK))
    return lambda pk: f"{head}{pk}{tail}"


def _shown_date(at: datetime) -> tuple[str, str]:
    """`at` as the templates' `|date:"c"` and `|date:"j M Y"` show it (in local time)."""
    local = timezone.localtime(at)
    return local.isoformat(), f"{local.day} {MONTHS_3[local.month].title()} {local.year}"


def _next_due(patient: Any) -> tuple[datetime | None, str]:
    options = [
        (patient.next_task_due, f"Task: {patient.next_task_title}"),
        (patient.next_timer_due, f"Pathway: {any_event_title(patient.next_timer_event or '')}"),
        (
            patient.next_checkin_due,
            f"Check-in: {instrument_title(patient.next_checkin_instrument or '')}",
        ),
    ]
    present = [(at, label) for at, label in options if at is not None]
    if not present:
        return None, ""
    return min(present, key=lambda item: item[0])


def _humanise(name: str) -> str:
    return humanise(name)


def _describe_progress(
    row: CaseloadRow, detail: RowDetails, enrolments: Sequence[Enrolment], now: datetime
) -> None:
    """What last moved the patient's pathway and how long ago, in words."""
    at = detail.last_progress_at
    if at is None:
        row.progress_text = "No progress recorded"
        return
    moves = detail.last_progress_transitions or []
    definition = None
    if enrolments:
        first = enrolments[0]
        definition = definition_get(first.definition_key, first.definition_version)
    moved = [m for m in moves if not m.get("internal") and m.get("source") != m.get("target")]
    days = max(0, (now - at).days)
    ago = "today" if days == 0 else ("yesterday" if days == 1 else _ago(days))
    if moved:
        move = moved[0]
        row.progress_text = (
            f"{state_title(definition, move['track'], move['target'])}, reached {ago}"
        )
    else:
        row.progress_text = f"Pathway started {ago}"
    if row.stalled:
        row.progress_text = f"No change for {days // 7} weeks: {row.progress_text}"


def _ago(days: int) -> str:
    if days < 14:
        return f"{days} days ago"
    if days < 70:
        return f"{days // 7} weeks ago"
    return f"{days // 30} months ago"


def _describe_peg(row: CaseloadRow, detail: RowDetails) -> None:
    """The last PEG and its change from the baseline (lower PEG is better)."""
    if detail.last_peg is None:
        return
    row.peg_text = show_value(detail.last_peg)
    baseline = detail.baseline_peg
    if baseline is None or not baseline or detail.last_peg_at is None:
        return
    pct = round(100 * (baseline - detail.last_peg) / abs(baseline))
    if pct == 0:
        row.peg_change_text, row.peg_change_class = "same as baseline", "same"
    elif pct > 0:
        row.peg_change_text, row.peg_change_class = f"{pct} % better than baseline", "better"
    else:
        row.peg_change_text, row.peg_change_class = f"{-pct} % worse than baseline", "worse"


def event_label(definition: PathwayDefinition, event: str) -> str:
    return event_title(definition, event)


def any_event_title(event: str) -> str:
    """An event by its title in the latest published definition that declares it."""
    for definition in reversed(list(registry())):
        if event in definition.events:
            return event_title(definition, event)
    return _humanise(event)


def track_cells(enrolment: Enrolment) -> list[TrackCell]:
    definition = definition_get(enrolment.definition_key, enrolment.definition_version)
    cells = []
    for name, track in definition.tracks.items():  # the definition's order of tracks
        item = enrolment.configuration.get(name)
        if item is None:
            continue
        state = track.states.get(item["state"])
        cells.append(
            TrackCell(
                track=name,
                title=track_title(definition, name),
                short_title=short_track_title(definition, name),
                state=item["state"],
                state_title=state_title(definition, name, item["state"]),
                stage=(state.stage or "") if state else "",
                final=bool(state and state.final),
            )
        )
    return cells


# --- one patient ----------------------------------------------------------------------------


def patient_for_user(*, user: User, patient_id: int) -> Patient:
    patient = patients_visible_to(user).filter(pk=patient_id).first()
    if patient is None:
        raise NotFound("No such patient.")
    return patient


def dead_messages_for_user(*, user: User) -> QuerySet[Message]:
    return (
        messages_visible_to(user)
        .filter(status=MessageStatus.DEAD)
        .select_related("patient", "to_staff")
        .order_by("-created_at", "-pk")
    )


def dead_message_get_for_user(*, user: User, message_id: int) -> Message:
    message = messages_visible_to(user).select_related("patient").filter(pk=message_id).first()
    if message is None:
        raise NotFound("No such message.")
    return message


# --- the patient page -----------------------------------------------------------------------

TIMELINE_LIMIT = 60
CHECKIN_LIMIT = 40
MESSAGE_LIMIT = 40
FLAG_LIMIT = 60  # unresolved ones first: only the oldest resolved ones can be left out
DECISION_LIMIT = 20


@dataclass
class PatientRecord:
    """What the patient page reads, each list in one query."""

    patient: Patient
    enrolments: list[Enrolment]
    steps: list[PathwayStep]
    scores: list[Observation]
    procedures: list[Observation]
    sessions: list[Observation]
    checkins: list[Checkin]
    checkin_counts: dict[str, int]
    messages: list[Message]
    tasks: list[CareTask]
    flags: Sequence[Flag]  # unresolved first (urgent first), then resolved ones, newest first
    failed_treatments: list[Observation] = field(default_factory=list)  # newest first
    decisions: list[Proposal] = field(default_factory=list)  # decided escalations, newest first
    timers: list[PathwayTimer] = field(default_factory=list)  # pending, soonest first

    @property
    def unresolved_flags(self) -> list[Flag]:
        return [f for f in self.flags if f.status != FlagStatus.RESOLVED]

    @property
    def contact_problems(self) -> list[Message]:
        """Messages to the patient that could not be delivered (dead), newest first."""
        return [m for m in self.messages if m.status == MessageStatus.DEAD and not m.to_staff_id]

    @property
    def urgent_flags(self) -> list[Flag]:
        """The unresolved urgent flags: the banner at the top of the patient's pages."""
        return [
            f
            for f in self.flags
            if f.severity == Severity.URGENT and f.status != FlagStatus.RESOLVED
        ]


def patient_record(*, user: User, patient: Patient) -> PatientRecord:
    enrolments = list(
        enrolments_visible_to(user).filter(patient=patient).order_by("-started_at", "-pk")
    )
    steps = list(
        PathwayStep.objects.filter(enrolment__in=enrolments)
        .select_related("actor", "enrolment")
        .order_by("-at", "-pk")[:TIMELINE_LIMIT]
    )
    observations = list(
        observation_history(patient=patient).filter(
            kind__in=(Kind.SCORE, Kind.PROCEDURE, Kind.SESSION, Kind.FAILED_TREATMENT)
        )
    )
    checkins = list(
        Checkin.objects.filter(patient=patient).order_by("-due_at", "-pk")[:CHECKIN_LIMIT]
    )
    checkin_counts = dict(
        Checkin.objects.filter(patient=patient)
        .order_by()
        .values_list("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    messages = list(
        messages_visible_to(user)
        .filter(patient=patient)
        .select_related("to_staff")
        .prefetch_related("events")
        .order_by("-created_at", "-pk")[:MESSAGE_LIMIT]
    )
    tasks = list(
        CareTask.objects.filter(patient=patient, status=TaskStatus.OPEN).order_by(
            F("due_at").asc(nulls_last=True), "pk"
        )
    )
    flags = list(
        Flag.objects.filter(patient=patient)
        .select_related("acknowledged_by", "resolved_by")
        .annotate(
            severity_rank=SEVERITY_RANK,
            resolved_rank=Case(
                When(status=FlagStatus.RESOLVED, then=Value(1)),
                default=Value(0),
                output_field=IntegerField(),
            ),
        )
        .order_by("resolved_rank", "severity_rank", "-raised_at", "-pk")[:FLAG_LIMIT]
    )
    decisions = list(
        Proposal.objects.filter(enrolment__in=enrolments)
        .exclude(status=ProposalStatus.PENDING)
        .select_related("decided_by", "enrolment")
        .order_by(F("decided_at").desc(nulls_last=True), "-pk")[:DECISION_LIMIT]
    )
    timers = list(
        PathwayTimer.objects.filter(
            enrolment__in=[e for e in enrolments if e.status in OPEN_ENROLMENT],
            status=TimerStatus.PENDING,
        )
        .select_related("enrolment")
        .order_by("due_at", "pk")[:5]
    )
    return PatientRecord(
        patient=patient,
        enrolments=enrolments,
        steps=steps,
        scores=[o for o in observations if o.kind == Kind.SCORE],
        procedures=[o for o in observations if o.kind == Kind.PROCEDURE],
        sessions=[o for o in observations if o.kind == Kind.SESSION],
        checkins=checkins,
        checkin_counts=checkin_counts,
        messages=messages,
        tasks=tasks,
        flags=flags,
        failed_treatments=[o for o in observations if o.kind == Kind.FAILED_TREATMENT],
        decisions=decisions,
        timers=timers,
    )


def pending_proposals_exist(*, enrolments: Sequence[Enrolment]) -> bool:
    return Proposal.objects.filter(
        enrolment__in=[e.pk for e in enrolments], status=ProposalStatus.PENDING
    ).exists()


def proposal_for_patient(*, user: User, patient: Patient, proposal_id: int) -> Proposal:
    proposal = (
        Proposal.objects.filter(
            pk=proposal_id,
            enrolment__in=enrolments_visible_to(user).filter(patient=patient),
        )
        .select_related("enrolment")
        .first()
    )
    if proposal is None:
        raise NotFound("No such escalation.")
    return proposal


def enrolment_for_patient(*, user: User, patient: Patient, public_id: Any) -> Enrolment:
    enrolment = enrolments_visible_to(user).filter(patient=patient, public_id=public_id).first()
    if enrolment is None:
        raise NotFound("No such pathway enrolment.")
    return enrolment


def procedure_for_patient(*, patient: Patient, observation_id: int) -> Observation:
    procedure = (
        observation_history(patient=patient, kind=Kind.PROCEDURE).filter(pk=observation_id).first()
    )
    if procedure is None:
        raise InvalidInput("Choose one of this patient's procedures.", extra={"field": "procedure"})
    return procedure


# --- worklists --------------------------------------------------------------------------------


def flag_inbox_for_user(*, user: User, show: str = "open") -> QuerySet[Flag]:
    """Open (or acknowledged, or all unresolved) flags, urgent first, newest first."""
    flags = flags_visible_to(user).select_related("patient", "acknowledged_by", "resolved_by")
    if show == "unresolved":
        flags = flags.exclude(status=FlagStatus.RESOLVED)
    elif show == "all":
        pass
    else:
        flags = flags.filter(status=FlagStatus.OPEN)
    return flags.annotate(severity_rank=SEVERITY_RANK).order_by(
        "severity_rank", "-raised_at", "-pk"
    )


def flag_get_for_user(*, user: User, flag_id: int) -> Flag:
    flag = (
        flags_visible_to(user)
        .select_related("patient", "acknowledged_by", "resolved_by")
        .filter(pk=flag_id)
        .first()
    )
    if flag is None:
        raise NotFound("No such flag.")
    return flag


def task_worklist_for_user(*, user: User, discipline: str) -> QuerySet[CareTask]:
    """Open tasks of a discipline ('all': every discipline), urgent and soonest due first."""
    tasks = tasks_visible_to(user).filter(status=TaskStatus.OPEN).select_related("patient")
    if discipline != "all":
        tasks = tasks.filter(discipline=discipline)
    return tasks.order_by("-priority", F("due_at").asc(nulls_last=True), "pk")


def task_get_for_user(*, user: User, task_id: int) -> CareTask:
    task = tasks_visible_to(user).select_related("patient").filter(pk=task_id).first()
    if task is None:
        raise NotFound("No such task.")
    return task


# --- the therapists' workspace ----------------------------------------------------------------

WEEK = timedelta(days=7)
DUE_LIMIT = 100  # "due this week" rows shown (the soonest)
INBOX_LIMIT = 20
_FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)  # a task without a due date sorts last
_WORKSPACE_KEYS = ("calm_urgent", "family_name", "given_name", "id")
_TASK_KEYS = ("due_key", "id")


@dataclass
class WorkspaceRow:
    patient: Patient
    enrolment: Enrolment | None
    track: TrackCell | None
    due: list[tuple[datetime, str]] = field(default_factory=list)
    urgent_flags: list[Flag] = field(default_factory=list)  # unresolved: the row comes first


@dataclass
class Workspace:
    rows: list[WorkspaceRow]
    due_this_week: list[tuple[datetime, Patient, str]]  # overdue ones included
    tasks: Sequence[CareTask]
    messages: list[Message]
    now: datetime
    next_cursor: str = ""  # the next page of patients ("" on the last)
    tasks_next_cursor: str = ""  # the next page of open tasks
    paged: bool = False  # this is not the first page of patients
    tasks_paged: bool = False


def _workspace_cursor(values: Sequence[Any], salt: str) -> str:
    plain = [v.isoformat() if isinstance(v, datetime) else v for v in values]
    return signing.dumps(plain, salt=salt, compress=True)


def _workspace_after(cursor: str, salt: str, dated: int | None = None) -> list[Any] | None:
    if not cursor:
        return None
    try:
        values = list(signing.loads(cursor, salt=salt))
    except signing.BadSignature as exc:
        raise InvalidInput("That page link is no longer valid.", extra={"field": "cursor"}) from exc
    if dated is not None:
        values[dated] = datetime.fromisoformat(values[dated])
    return values


def workspace_for_user(
    *,
    user: User,
    track: str,
    now: datetime | None = None,
    cursor: str = "",
    tasks_cursor: str = "",
    page_size: int | None = None,
) -> Workspace:
    """One page of the user's care-team patients with an open pathway (their track's state),
    those with an unresolved urgent flag first; what falls due on their track or worklist in
    the next 7 days; one page of their open tasks (soonest due first); their latest messages.

    Both lists are keyset pages (`cursor`, `tasks_cursor`: the sort key of the last row shown),
    so the page runs the same number of queries whatever its size or position."""
    now = now or clock.now()
    size = max(1, min(page_size or settings.WEB_WORKSPACE_PAGE_SIZE, MAX_PAGE_SIZE))
    urgent = Flag.objects.filter(severity=Severity.URGENT).exclude(status=FlagStatus.RESOLVED)
    mine = patients_visible_to(user).filter(
        Exists(Enrolment.objects.filter(patient=OuterRef("pk"), status__in=OPEN_ENROLMENT))
    )
    rows_query = mine.annotate(
        calm_urgent=Case(
            When(Exists(urgent.filter(patient=OuterRef("pk"))), then=Value(0)),
            default=Value(1),
            output_field=IntegerField(),
        )
    )
    after = _workspace_after(cursor, "web.workspace")
    if after is not None:
        rows_query = rows_query.filter(_after(_WORKSPACE_KEYS, after))
    patients = list(rows_query.order_by(*_WORKSPACE_KEYS)[: size + 1])
    next_cursor = ""
    if len(patients) > size:
        patients = patients[:size]
        last = patients[-1]
        next_cursor = _workspace_cursor(
            [getattr(last, key) for key in _WORKSPACE_KEYS], "web.workspace"
        )
    ids = [p.pk for p in patients]
    urgent_by_patient: dict[int, list[Flag]] = {}
    for flag in urgent.filter(patient_id__in=ids).order_by("-raised_at", "-pk"):
        urgent_by_patient.setdefault(flag.patient_id, []).append(flag)
    enrolments = Enrolment.objects.filter(patient_id__in=ids, status__in=OPEN_ENROLMENT).order_by(
        "patient_id", "pk"
    )
    first: dict[int, Enrolment] = {}
    for open_enrolment in enrolments:
        first.setdefault(open_enrolment.patient_id, open_enrolment)

    # Due this week, over all my patients (not only this page): my track's timers and my
    # worklist's tasks, the soonest first.
    timers = (
        PathwayTimer.objects.filter(
            enrolment__patient__in=mine.values("pk"),
            enrolment__status__in=OPEN_ENROLMENT,
            status=TimerStatus.PENDING,
            track=track,
            due_at__lt=now + WEEK,
        )
        .select_related("enrolment__patient")
        .order_by("due_at", "pk")[:DUE_LIMIT]
    )
    my_tasks = tasks_visible_to(user).filter(status=TaskStatus.OPEN, discipline=user.role)
    due_tasks = my_tasks.filter(due_at__lt=now + WEEK).select_related("patient")
    due: list[tuple[datetime, Patient, str]] = [
        (t.due_at, t.enrolment.patient, _humanise(t.event)) for t in timers
    ]
    due += [
        (t.due_at, t.patient, f"Task: {t.title}")
        for t in due_tasks.order_by("due_at", "pk")[:DUE_LIMIT]
        if t.due_at is not None
    ]
    due.sort(key=lambda item: item[0])
    due = due[:DUE_LIMIT]

    tasks_query = my_tasks.select_related("patient").annotate(
        due_key=Coalesce("due_at", Value(_FAR_FUTURE))
    )
    tasks_after = _workspace_after(tasks_cursor, "web.workspace.tasks", dated=0)
    if tasks_after is not None:
        tasks_query = tasks_query.filter(_after(_TASK_KEYS, tasks_after))
    tasks = list(tasks_query.order_by(*_TASK_KEYS)[: size + 1])
    tasks_next_cursor = ""
    if len(tasks) > size:
        tasks = tasks[:size]
        tasks_next_cursor = _workspace_cursor(
            [getattr(tasks[-1], key) for key in _TASK_KEYS], "web.workspace.tasks"
        )

    rows = []
    for patient in patients:
        enrolment = first.get(patient.pk)
        cells = [c for c in track_cells(enrolment) if c.track == track] if enrolment else []
        row = WorkspaceRow(patient=patient, enrolment=enrolment, track=cells[0] if cells else None)
        row.due = [(at, label) for at, p, label in due if p.pk == patient.pk]
        row.urgent_flags = urgent_by_patient.get(patient.pk, [])
        rows.append(row)
    inbox = list(
        messages_visible_to(user)
        .filter(to_staff=user)
        .select_related("patient")
        .order_by("-created_at", "-pk")[:INBOX_LIMIT]
    )
    return Workspace(
        rows=rows,
        due_this_week=due,
        tasks=tasks,
        messages=inbox,
        now=now,
        next_cursor=next_cursor,
        tasks_next_cursor=tasks_next_cursor,
        paged=after is not None,
        tasks_paged=tasks_after is not None,
    )
