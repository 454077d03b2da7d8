"""Reading observations: the facts and occurrences pathway guards see.

`facts_for_patient` emits only names of `workflows.facts.STANDARD_FACTS`; a fact with no data
behind it is None (missing, so a guard comparing it is unknown), except counts, which are 0.
Each function here runs one query, whatever the amount of history. Replaced and withdrawn
observations are never read.

Catalogue facts not computed here: `pump.days_to_refill` (see `NOT_COMPUTED`).

Conventions:

- Facts are as of `now`: observations dated after it are ignored.
- "Latest" means the latest `observed_at` (ties: the later recorded), except for the dated
  kinds (pain onset, conservative care start), where the date is the content and the latest
  recorded statement holds.
- Scores: the baseline is the latest score marked `is_baseline`, else the earliest. Until there
  is a score after the baseline, `change`, `improvement_pct` and `responder` are None: a
  baseline alone shows no change, not "no improvement". `improvement_pct` is positive when the
  patient is better, whatever the scale's direction, and None when the baseline is 0. A
  responder improved by at least the instrument's MCID (points and/or percent, either
  suffices); for PGIC, the latest answer is 1 or 2 (much or very much improved).
- Procedures: `relief_pct` and `relief_weeks` come from the same record, the latest of that
  procedure with a relief percentage (a newer one not yet assessed does not hide it).
- Medication facts are read from the medication list as recorded: each drug's latest daily dose
  holds (0 = stopped). With no opioid or benzodiazepine on it, `mme.daily` is 0 and
  `opioid.long_term` / `benzodiazepine.coprescribed` are false. `opioid.long_term` is a
  simplification: any opioid currently at a dose above 0 (the CDC definition, use on most days
  for more than 3 months, needs dispensing history carehub does not hold; an opioid list
  recorded at intake would otherwise read as short-term for 3 months). `mme.daily` sums the
  opioids with a CDC factor; others are not counted and are listed by `mme_breakdown`.
- `pain.months` and `conservative_care.weeks` count calendar time in the patient's time zone and
  are rounded down to one decimal, so a threshold such as `pain.months >= 6` is never reached
  early. Durations since an instant (`weeks_since_latest`, `*.days_since*`) are rounded to two
  decimals like the engine's `days_since()`.
"""

from __future__ import annotations

import calendar
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from django.db.models import Q, QuerySet
from django.utils import timezone

from carehub.accounts.models import User
from carehub.core.selectors import one_or_not_found
from carehub.instruments.catalogue import (
    PHQ9_ITEM9,
    Entry,
    improvement_pct,
    responder,
    score_entries,
)
from carehub.instruments.scoring import trend
from carehub.observations import reference
from carehub.observations.access import observations_visible_to
from carehub.observations.models import CURRENT, Kind, Observation
from carehub.patients.models import Patient
from workflows.facts import STANDARD_FACTS, FactValue

# Catalogue facts this store cannot compute, and why.
NOT_COMPUTED: dict[str, str] = {
    "pump.days_to_refill": (
        "needs the intrathecal pump's reservoir volume, concentration, daily rate and last "
        "refill, which are device data, not observations"
    ),
}

_EPSILON = 1e-9
_SECONDS_PER_DAY = 86400


def current_observations(*, patient: Patient) -> QuerySet[Observation]:
    """The patient's observations that count: neither replaced nor withdrawals."""
    return Observation.objects.current().filter(patient=patient)


def observation_history(
    *, patient: Patient, kind: Kind | str | None = None, code: str | None = None
) -> QuerySet[Observation]:
    """Current observations, newest first, for display."""
    rows = current_observations(patient=patient).select_related("recorded_by")
    if kind is not None:
        rows = rows.filter(kind=kind)
    if code is not None:
        rows = rows.filter(code=code)
    return rows.order_by("-observed_at", "-id")


def _occurrence_codes() -> list[str]:
    return [c for c, s in reference.STATUSES.items() if s.type == "occurrence"]


def occurrences_for_patient(*, patient: Patient) -> dict[str, tuple[datetime, ...]]:
    """When each procedure (by code: 'esi', 'mbb1', ...) was performed and each occurrence status
    ('pdmp_checked', 'udt_done', 'opioid_reassessed') was recorded, oldest first.

    The engine's `count('esi', days=365)` and `days_since('esi')` read these.
    """
    rows = (
        current_observations(patient=patient)
        .filter(Q(kind=Kind.PROCEDURE) | Q(kind=Kind.STATUS, code__in=_occurrence_codes()))
        .values_list("code", "observed_at")
    )
    return _occurrences(rows)


def _occurrences(rows: Iterable[tuple[str, datetime]]) -> dict[str, tuple[datetime, ...]]:
    occurrences: dict[str, list[datetime]] = defaultdict(list)
    for code, observed_at in rows:
        occurrences[code].append(observed_at)
    return {code: tuple(sorted(times)) for code, times in occurrences.items()}


def facts_and_occurrences_for_patient(
    *, patient: Patient, now: datetime
) -> tuple[dict[str, FactValue], dict[str, tuple[datetime, ...]]]:
    """`facts_for_patient` and `occurrences_for_patient` from one read of the patient's current
    observations (what a pathway snapshot needs)."""
    _require_aware(now)
    rows = list(current_observations(patient=patient).order_by("observed_at", "id"))
    return facts_and_occurrences_from_rows(rows, time_zone=patient.time_zone, now=now)


def facts_and_occurrences_from_rows(
    rows: list[Observation], *, time_zone: str, now: datetime
) -> tuple[dict[str, FactValue], dict[str, tuple[datetime, ...]]]:
    """`facts_and_occurrences_for_patient` from rows already read: the patient's current
    observations ordered by (observed_at, id), and the patient's time zone (a pathway dispatch
    reads them together with the rest of its snapshot)."""
    _require_aware(now)
    codes = set(_occurrence_codes())
    occurrences = _occurrences(
        (row.code, row.observed_at)
        for row in rows
        if row.kind == Kind.PROCEDURE or (row.kind == Kind.STATUS and row.code in codes)
    )
    return _facts([row for row in rows if row.observed_at <= now], time_zone, now), occurrences


@dataclass(frozen=True)
class MmeBreakdown:
    """Total daily MME, each opioid's share, and active opioids that could not be counted."""

    total: float
    per_drug: dict[str, float]
    not_counted: tuple[str, ...]
    source: str = reference.CDC_MME_SOURCE


def mme_breakdown(*, patient: Patient, now: datetime) -> MmeBreakdown:
    """What `mme.daily` adds up, for the pharmacist's view."""
    _require_aware(now)
    rows = list(_as_of(current_observations(patient=patient), now).filter(kind=Kind.MEDICATION))
    return _mme(_latest_by_code(rows))


def facts_for_patient(*, patient: Patient, now: datetime) -> dict[str, FactValue]:
    """The patient's facts at `now`, named as in `workflows.facts.STANDARD_FACTS`."""
    _require_aware(now)
    return _facts(list(_as_of(current_observations(patient=patient), now)), patient.time_zone, now)


def _facts(rows: list[Observation], time_zone: str, now: datetime) -> dict[str, FactValue]:
    """The facts from the current observations up to `now`, ordered by (observed_at, id)."""
    by_kind: dict[str, list[Observation]] = defaultdict(list)
    for row in rows:
        by_kind[row.kind].append(row)
    today = now.astimezone(ZoneInfo(time_zone)).date()

    facts: dict[str, FactValue] = {}
    facts.update(_score_facts(by_kind[Kind.SCORE], now))
    facts.update(_procedure_facts(by_kind[Kind.PROCEDURE]))
    facts.update(_session_facts(by_kind[Kind.SESSION]))
    facts.update(_medication_facts(by_kind[Kind.MEDICATION]))
    facts.update(_status_facts(by_kind[Kind.STATUS], now))

    onset = _latest_recorded(by_kind[Kind.PAIN_ONSET])
    facts["pain.months"] = (
        _months_between(_local_date(onset, time_zone), today) if onset is not None else None
    )
    start = _latest_recorded(by_kind[Kind.CONSERVATIVE_CARE_START])
    facts["conservative_care.weeks"] = (
        _floor_1((today - _local_date(start, time_zone)).days / 7) if start is not None else None
    )
    facts["failed_treatment_classes"] = len({row.code for row in by_kind[Kind.FAILED_TREATMENT]})
    evaluation = _last(by_kind[Kind.PSYCH_EVALUATION])
    facts["psych_eval.outcome"] = evaluation.value_text if evaluation is not None else None

    unknown = set(facts) - set(STANDARD_FACTS)
    assert not unknown, f"facts outside the catalogue: {sorted(unknown)}"
    return facts


# --- helpers -------------------------------------------------------------------------------------


def _require_aware(now: datetime) -> None:
    if not isinstance(now, datetime) or timezone.is_naive(now):
        raise ValueError("now must be a time-zone aware datetime")


def _as_of(rows: QuerySet[Observation], now: datetime) -> QuerySet[Observation]:
    return rows.filter(observed_at__lte=now).order_by("observed_at", "id")


def _last(rows: list[Observation]) -> Observation | None:
    """The latest of rows already ordered by (observed_at, id)."""
    return rows[-1] if rows else None


def _latest_recorded(rows: list[Observation]) -> Observation | None:
    """For dated kinds (pain onset, conservative care start) the latest statement holds."""
    return max(rows, key=lambda row: row.pk) if rows else None


def _latest_by_code(rows: Iterable[Observation]) -> dict[str, Observation]:
    latest: dict[str, Observation] = {}
    for row in rows:  # ordered oldest first: later rows win
        latest[row.code] = row
    return latest


def _grouped(rows: Iterable[Observation]) -> dict[str, list[Observation]]:
    groups: dict[str, list[Observation]] = defaultdict(list)
    for row in rows:
        groups[row.code].append(row)
    return groups


def _days(now: datetime, then: datetime) -> float:
    return round((now - then).total_seconds() / _SECONDS_PER_DAY, 2)


def _weeks(now: datetime, then: datetime) -> float:
    return round((now - then).total_seconds() / (7 * _SECONDS_PER_DAY), 2)


def _round_2(value: float) -> float:
    return round(value, 2) + 0.0  # + 0.0 turns -0.0 into 0.0


def _floor_1(value: float) -> float:
    return math.floor(value * 10 + _EPSILON) / 10


def _local_date(row: Observation, time_zone: str) -> date:
    """The calendar date of a dated observation (pain onset, conservative care start)."""
    day = row.data.get("date")
    if isinstance(day, str):
        return date.fromisoformat(day)
    return row.observed_at.astimezone(ZoneInfo(time_zone)).date()


def _add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _months_between(start: date, end: date) -> float | None:
    """Whole calendar months from `start` to `end` plus the elapsed part of the next one,
    rounded down to one decimal (Jan 15 → Jul 15 is 6.0; → Jul 14 is 5.9)."""
    if end < start:
        return None
    months = (end.year - start.year) * 12 + end.month - start.month
    if _add_months(start, months) > end:
        months -= 1
    anchor, following = _add_months(start, months), _add_months(start, months + 1)
    fraction = (end - anchor).days / (following - anchor).days
    return _floor_1(months + fraction)


# --- scores --------------------------------------------------------------------------------------


def _score_facts(rows: list[Observation], now: datetime) -> dict[str, FactValue]:
    facts: dict[str, FactValue] = {}
    groups = _grouped(rows)
    for code, instrument in score_entries().items():
        facts.update(_instrument_facts(instrument, groups.get(code, []), now))
    item9 = None
    for row in groups.get("phq9", []):
        items = row.data.get("items")
        if isinstance(items, dict) and PHQ9_ITEM9 in items:
            item9 = items[PHQ9_ITEM9]
    facts["phq9.item9"] = item9
    return facts


def _instrument_facts(
    instrument: Entry, rows: list[Observation], now: datetime
) -> dict[str, FactValue]:
    name = instrument.key
    latest = _last(rows)
    baselines = [row for row in rows if row.is_baseline]
    baseline = _last(baselines) if baselines else (rows[0] if rows else None)
    facts: dict[str, FactValue] = {
        f"{name}.latest": latest.value_number if latest is not None else None,
        f"{name}.baseline": baseline.value_number if baseline is not None else None,
        f"{name}.change": None,
        f"{name}.improvement_pct": None,
        f"{name}.responder": None,
        f"{name}.weeks_since_latest": (
            _weeks(now, latest.observed_at) if latest is not None else None
        ),
        f"{name}.trend": _trend(instrument, rows),
    }
    if latest is None or baseline is None:
        return facts
    start, end = baseline.value_number, latest.value_number
    assert start is not None  # scores always have a number
    assert end is not None
    if instrument.categorical:
        # A rating of change: the latest answer alone decides (the catalogue's responder rule).
        facts[f"{name}.responder"] = responder(instrument, start, end)
    if latest.pk == baseline.pk:
        return facts  # no score after the baseline yet
    facts[f"{name}.change"] = _round_2(end - start)
    improvement = improvement_pct(instrument, start, end)
    facts[f"{name}.improvement_pct"] = _round_2(improvement) if improvement is not None else None
    if not instrument.categorical:
        facts[f"{name}.responder"] = responder(instrument, start, end)
    return facts


def _trend(instrument: Entry, rows: list[Observation]) -> str | None:
    """The instrument library's trend rule over the patient's scores of that instrument."""
    scores = [(row.observed_at, row.value_number) for row in rows if row.value_number is not None]
    result = trend(instrument.definition, scores)
    return str(result) if result is not None else None


# --- procedures, sessions, statuses ---------------------------------------------------------


def _procedure_facts(rows: list[Observation]) -> dict[str, FactValue]:
    assessed = _latest_by_code(row for row in rows if row.value_number is not None)
    facts: dict[str, FactValue] = {}
    for code in reference.PROCEDURES:
        row = assessed.get(code)
        weeks = row.data.get("relief_weeks") if row is not None else None
        facts[f"{code}.relief_pct"] = row.value_number if row is not None else None
        facts[f"{code}.relief_weeks"] = weeks
    return facts


def _session_facts(rows: list[Observation]) -> dict[str, FactValue]:
    facts: dict[str, FactValue] = {}
    for discipline in reference.SESSION_DISCIPLINES:
        sessions = [row for row in rows if row.code == discipline]
        facts[f"{discipline}.sessions_attended"] = sum(1 for r in sessions if r.value_bool)
        facts[f"{discipline}.no_shows"] = sum(1 for r in sessions if r.value_bool is False)
    return facts


_BOOLEAN_STATUS_FACTS = {
    "naloxone_offered": "naloxone.offered",
    "substance_use_active": "substance_use.active",
    "adverse_effects_intolerable": "adverse_effects.intolerable",
}
_OCCURRENCE_STATUS_FACTS = {
    "opioid_reassessed": "opioid.days_since_reassessment",
    "pdmp_checked": "pdmp.days_since_check",
    "udt_done": "udt.days_since",
}


def _status_facts(rows: list[Observation], now: datetime) -> dict[str, FactValue]:
    latest = _latest_by_code(rows)
    facts: dict[str, FactValue] = {}
    for code, fact in _BOOLEAN_STATUS_FACTS.items():
        row = latest.get(code)
        facts[fact] = row.value_bool if row is not None else None
    for code, fact in _OCCURRENCE_STATUS_FACTS.items():
        row = latest.get(code)
        facts[fact] = _days(now, row.observed_at) if row is not None else None
    return facts


# --- medication ----------------------------------------------------------------------------------


def _mme(latest: dict[str, Observation]) -> MmeBreakdown:
    per_drug: dict[str, float] = {}
    not_counted: list[str] = []
    for drug, row in sorted(latest.items()):
        dose = row.value_number or 0.0
        if drug not in reference.OPIOIDS or dose <= 0:
            continue
        factor = reference.MME_FACTORS.get(drug)
        if factor is None or row.data.get("unit") != factor.unit:
            not_counted.append(drug)
            continue
        per_drug[drug] = _round_2(dose * factor.factor)
    return MmeBreakdown(
        total=_round_2(sum(per_drug.values())), per_drug=per_drug, not_counted=tuple(not_counted)
    )


def _medication_facts(rows: list[Observation]) -> dict[str, FactValue]:
    latest = _latest_by_code(rows)
    active = {drug for drug, row in latest.items() if (row.value_number or 0) > 0}
    return {
        "mme.daily": _mme(latest).total,
        "opioid.long_term": bool(active & reference.OPIOIDS),
        "benzodiazepine.coprescribed": bool(active & reference.BENZODIAZEPINES),
    }


def observation_list_for_patient(
    *,
    user: User,
    patient: Patient,
    kind: str | None = None,
    code: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[Observation]:
    """The patient's current observations the user may see (a patient: their scores only),
    filtered; the ordering is the caller's (pagination)."""
    rows = observations_visible_to(user).filter(CURRENT, patient=patient)
    if kind:
        rows = rows.filter(kind=kind)
    if code:
        rows = rows.filter(code=code)
    if since is not None:
        rows = rows.filter(observed_at__gte=since)
    if until is not None:
        rows = rows.filter(observed_at__lt=until)
    return rows


def observation_get_for_user(*, user: User, observation_id: int) -> Observation:
    visible = observations_visible_to(user).select_related("patient")
    return one_or_not_found(visible, "observation", pk=observation_id)
