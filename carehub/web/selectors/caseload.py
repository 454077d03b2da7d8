"""The caseload: its filters and sort, the counts at the top and the keyset-paginated page.

The caseload (`caseload_page`) is a constant number of queries whatever the page size: one
keyset-paginated query picks the page's patients (filters and sort keys only); one hand-written
statement reads what their rows show (`row_details`); the track states of the page come from one
more query, and the counts at the top from one aggregate. Pages never use OFFSET: the cursor
carries the sort key of the last row shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core import signing
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

from carehub.accounts.models import User
from carehub.care_access import (
    patients_visible_to,
    visible_patient_condition,
)
from carehub.core import clock
from carehub.core.exceptions import InvalidInput
from carehub.pathways.models import (
    Enrolment,
    EnrolmentStatus,
)
from carehub.pathways.registry import definition_get, registry
from carehub.patients.models import Patient
from carehub.web.models import Attention, CaseloadEntry
from carehub.web.selectors.formatting import (
    _describe_peg,
    _describe_progress,
    _next_due,
    _patient_url_maker,
    _shown_date,
)
from carehub.web.selectors.row_details import RowDetails, row_details
from carehub.web.selectors.shared import (
    MAX_PAGE_SIZE,
    MISSED_WINDOW,
    OPEN_ENROLMENT,
    OVERDUE_AFTER,
    CaseloadRow,
    _after,
    track_cells,
)
from carehub.worklists.models import CareTask, TaskStatus
from workflows import PathwayDefinition


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
