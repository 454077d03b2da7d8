"""Recording observations. Every function validates its input and raises `InvalidInput` naming the
field (writing nothing) when it is wrong; each owns its transaction.

Corrections: every `*_record` function takes `corrects=` (an earlier observation of the same
patient and kind, not yet replaced); the new observation replaces it for every fact.
`observation_withdraw` withdraws one entered in error.

Times: an observation cannot lie in the future beyond `OBSERVATION_MAX_FUTURE_SKEW_SECONDS`
(default 5 s of clock drift): facts are read as of now, so a pathway would not see it.

Baselines: a score recorded without an explicit `is_baseline` is the baseline when it is the
first current score of its instrument for the patient (a back-dated intake score recorded after
later ones is marked with `is_baseline=True` explicitly).

Scores of the instrument library are recorded through `carehub.observations.scores`
(`score_observation_record`: scoring, bands, red flags); `score_record` here only writes.

Procedure results: a procedure is usually recorded when it is performed and its relief some
days or weeks later. `procedure_result_record` records the result as a new observation of the
same procedure (same code, `observed_at` = when it was performed, same region) that replaces the
earlier record, so the procedure still counts once in `count('esi', days=365)` and the earlier
record stays for the audit trail.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from carehub.accounts.models import User
from carehub.core import clock
from carehub.core.exceptions import Conflict, InvalidInput, NotPermitted
from carehub.observations import reference
from carehub.observations.models import Kind, Observation, Source, is_number
from carehub.pathways.registry import session_roles
from carehub.patients.models import Patient

NOTES_MAX_LENGTH = 2000


# --- input checks ------------------------------------------------------------------------------


def _invalid(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field}: {message}", extra={"fields": {field: [message]}})


def _number(value: object, field: str, *, optional: bool = False) -> float | None:
    if value is None and optional:
        return None
    if not is_number(value):
        raise _invalid(field, f"must be a number (got {value!r})")
    return float(value)  # type: ignore[arg-type]


def future_skew() -> timedelta:
    """How far ahead of carehub's clock an observation may be stamped (clock drift)."""
    return timedelta(seconds=settings.OBSERVATION_MAX_FUTURE_SKEW_SECONDS)


def _moment(value: object, field: str) -> datetime:
    """An aware date and time, not in the future beyond the allowed clock skew."""
    if not isinstance(value, datetime):
        raise _invalid(field, f"must be a date and time (got {value!r})")
    if timezone.is_naive(value):
        raise _invalid(field, "must be time-zone aware")
    skew = future_skew()
    if value > clock.now() + skew:
        raise _invalid(
            field,
            f"is in the future ({value.isoformat()}; at most {skew.total_seconds():g} s ahead "
            "of the clinic's clock is accepted)",
        )
    return value


def _day(value: object, field: str, patient: Patient) -> date:
    if not isinstance(patient, Patient):
        raise _invalid("patient", "must be a patient")
    if not isinstance(value, date) or isinstance(value, datetime):
        raise _invalid(field, f"must be a date (got {value!r})")
    today = clock.now().astimezone(ZoneInfo(patient.time_zone)).date()
    if value > today:
        raise _invalid(field, f"{value.isoformat()} is in the future")
    return value


def _text(value: object, field: str, *, max_length: int) -> str:
    if not isinstance(value, str):
        raise _invalid(field, f"must be text (got {value!r})")
    value = value.strip()
    if len(value) > max_length:
        raise _invalid(field, f"must be at most {max_length} characters")
    return value


def _code(value: object, field: str) -> str:
    """Codes are lower-case with underscores: 'Fentanyl transdermal' → fentanyl_transdermal."""
    if not isinstance(value, str) or not value.strip():
        raise _invalid(field, f"must be a non-empty code (got {value!r})")
    return "_".join(value.strip().lower().replace("-", " ").split())


def _local_midnight(day: date, patient: Patient) -> datetime:
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(patient.time_zone))


def _check_recorder(recorded_by: User | None, patient: Patient) -> None:
    if recorded_by is None:
        return
    if not isinstance(recorded_by, User):
        raise _invalid("recorded_by", "must be a member of staff")
    if recorded_by.clinic_id != patient.clinic_id:
        raise _invalid("recorded_by", "staff record observations of their own clinic's patients")


def _check_session_recorder(recorded_by: User | None, discipline: str) -> None:
    if not isinstance(recorded_by, User):
        return  # a system import or migration; `_check_recorder` refuses anything else
    roles = session_roles(discipline)
    if roles and recorded_by.role not in roles:
        raise NotPermitted(
            f"Only {', '.join(sorted(roles))} may log {discipline} sessions "
            f"(you are {recorded_by.role}).",
            extra={"roles": sorted(roles), "field": "discipline"},
        )


def _check_correctable(
    corrects: Observation | None, patient: Patient, kind: Kind, field: str
) -> None:
    """The observation to replace exists, is the patient's, of this kind and not yet replaced.

    Its row is locked so that two concurrent corrections of it cannot both succeed.
    """
    if corrects is None:
        return
    original = Observation.objects.select_for_update().filter(pk=corrects.pk).first()
    if original is None:
        raise _invalid(field, "no such observation")
    if original.patient_id != patient.pk:
        raise _invalid(field, "is an observation of another patient")
    if original.kind != kind:
        raise _invalid(field, f"is a {original.kind} observation, not a {kind} one")
    if original.entered_in_error:
        raise _invalid(field, "is a withdrawal; record a new observation instead")
    replacement = Observation.objects.filter(corrects=original).values_list("pk", flat=True)
    if replacement:
        raise Conflict(
            f"{field}: observation {original.pk} was already replaced by observation "
            f"{replacement[0]}; correct that one instead.",
            extra={"replaced_by": replacement[0]},
        )


def _save(observation: Observation, fields: Mapping[str, str]) -> Observation:
    """Validate (the model's rules, reported in the caller's vocabulary) and insert.

    `fields` maps model fields to the caller's parameter names; problems with `data` name the
    detail they are about ("items: ...", "unit: ..."). The database constraints mirror
    `Observation.clean`, which reports them with clearer messages, so they are not re-queried.
    """
    try:
        observation.full_clean(validate_constraints=False)
    except ValidationError as exc:
        problems: dict[str, list[str]] = {}
        for model_field, messages in exc.message_dict.items():
            for message in messages:
                field = fields.get(model_field, model_field)
                if model_field == "data":
                    detail, separator, rest = message.partition(": ")
                    if separator:
                        field, message = fields.get(detail, detail), rest
                problems.setdefault(field, []).append(message)
        text = "; ".join(f"{field}: {m}" for field, ms in problems.items() for m in ms)
        raise InvalidInput(text, extra={"fields": problems}) from exc
    observation.save()
    return observation


def _new(
    *,
    patient: Patient,
    kind: Kind,
    code: str,
    observed_at: datetime,
    recorded_by: User | None,
    corrects: Observation | None,
    corrects_field: str = "corrects",
    **values: Any,
) -> Observation:
    if not isinstance(patient, Patient):
        raise _invalid("patient", "must be a patient")
    if corrects is not None and not isinstance(corrects, Observation):
        raise _invalid(corrects_field, "must be a recorded observation")
    _check_recorder(recorded_by, patient)
    _check_correctable(corrects, patient, kind, corrects_field)
    return Observation(
        patient=patient,
        kind=kind,
        code=code,
        observed_at=observed_at,
        recorded_by=recorded_by,
        corrects=corrects,
        **values,
    )


_COMMON_FIELDS = {"recorded_by": "recorded_by", "corrects": "corrects", "patient": "patient"}


# --- services ------------------------------------------------------------------------------------


@transaction.atomic
def score_record(
    *,
    patient: Patient,
    instrument: str,
    score: float,
    observed_at: datetime,
    recorded_by: User | None = None,
    source: Source | str = Source.STAFF,
    is_baseline: bool | None = None,
    items: dict[str, int] | None = None,
    corrects: Observation | None = None,
    details: Mapping[str, Any] | None = None,
) -> Observation:
    """Write a score of one of the catalogue's `SCORE_KEYS`, optionally with its item answers.

    The low-level writer: it checks the score against the observation store's reference (range,
    items adding up) but does not score or act on red flags; scores of the instrument library
    are recorded through `carehub.observations.scores.score_observation_record`, which calls
    this. PHQ-9 answers (0-3) may be stored as `items={"item9": 1, ...}`; item 9 becomes the
    `phq9.item9` fact. When every item is given they must add up to the score (PEG, PSFS: their
    mean). The ODI is licensed: staff enter the score only. `is_baseline=None`: the first
    current score of the instrument for the patient is the baseline (a correction keeps the
    mark of what it corrects). `details` go into `data`
    beside the items (the band, the instrument version).
    """
    instrument = _code(instrument, "instrument")
    score_value = _number(score, "score")
    observed_at = _moment(observed_at, "observed_at")
    if is_baseline is not None and not isinstance(is_baseline, bool):
        raise _invalid("is_baseline", "must be true, false or omitted")
    if items is not None and (not isinstance(items, dict) or not items):
        raise _invalid("items", "must be a non-empty mapping of item to answer")
    data: dict[str, Any] = dict(details or {})
    if items is not None:
        data["items"] = dict(items)
    if is_baseline is None and isinstance(corrects, Observation):
        is_baseline = corrects.is_baseline  # a correction keeps what it corrects
    elif is_baseline is None and isinstance(patient, Patient):
        is_baseline = (
            not Observation.objects.current()
            .filter(patient=patient, kind=Kind.SCORE, code=instrument)
            .exists()
        )
    observation = _new(
        patient=patient,
        kind=Kind.SCORE,
        code=instrument,
        observed_at=observed_at,
        recorded_by=recorded_by,
        corrects=corrects,
        value_number=score_value,
        source=source,
        is_baseline=bool(is_baseline),
        data=data,
    )
    return _save(
        observation,
        {
            **_COMMON_FIELDS,
            "code": "instrument",
            "value_number": "score",
            "source": "source",
            "observed_at": "observed_at",
            "is_baseline": "is_baseline",
        },
    )


def _procedure_data(
    *, relief_pct: float | None, relief_weeks: float | None, region: str
) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if region:
        data["region"] = region
    if relief_weeks is not None:
        data["relief_weeks"] = relief_weeks
    return data


_PROCEDURE_FIELDS = {
    **_COMMON_FIELDS,
    "code": "procedure",
    "value_number": "relief_pct",
    "observed_at": "performed_at",
}


@transaction.atomic
def procedure_record(
    *,
    patient: Patient,
    procedure: str,
    performed_at: datetime,
    relief_pct: float | None = None,
    relief_weeks: float | None = None,
    region: str = "",
    recorded_by: User | None = None,
    corrects: Observation | None = None,
) -> Observation:
    """A procedure of `reference.PROCEDURES`, with its relief when it is already known."""
    procedure = _code(procedure, "procedure")
    performed_at = _moment(performed_at, "performed_at")
    relief = _number(relief_pct, "relief_pct", optional=True)
    weeks = _number(relief_weeks, "relief_weeks", optional=True)
    region = _text(region, "region", max_length=64)
    observation = _new(
        patient=patient,
        kind=Kind.PROCEDURE,
        code=procedure,
        observed_at=performed_at,
        recorded_by=recorded_by,
        corrects=corrects,
        value_number=relief,
        data=_procedure_data(relief_pct=relief, relief_weeks=weeks, region=region),
    )
    return _save(observation, _PROCEDURE_FIELDS)


@transaction.atomic
def procedure_result_record(
    *,
    procedure: Observation,
    relief_pct: float,
    assessed_at: datetime,
    relief_weeks: float | None = None,
    recorded_by: User | None = None,
) -> Observation:
    """The relief after a recorded procedure: replaces its record with one carrying the result.

    Give the whole result each time (a later assessment of how long the relief lasted restates
    the percentage). `procedure` must be the procedure's current record.
    """
    if not isinstance(procedure, Observation) or procedure.kind != Kind.PROCEDURE:
        raise _invalid("procedure", "must be a recorded procedure")
    relief = _number(relief_pct, "relief_pct")
    weeks = _number(relief_weeks, "relief_weeks", optional=True)
    assessed_at = _moment(assessed_at, "assessed_at")
    if assessed_at < procedure.observed_at:
        raise _invalid("assessed_at", "is before the procedure was performed")
    data = _procedure_data(
        relief_pct=relief, relief_weeks=weeks, region=procedure.data.get("region", "")
    )
    data["assessed_at"] = assessed_at.isoformat()
    observation = _new(
        patient=procedure.patient,
        kind=Kind.PROCEDURE,
        code=procedure.code,
        observed_at=procedure.observed_at,
        recorded_by=recorded_by,
        corrects=procedure,
        corrects_field="procedure",
        value_number=relief,
        source=procedure.source,
        data=data,
    )
    return _save(observation, {**_PROCEDURE_FIELDS, "corrects": "procedure"})


@transaction.atomic
def session_record(
    *,
    patient: Patient,
    discipline: str,
    attended: bool,
    observed_at: datetime,
    notes: str = "",
    recorded_by: User | None = None,
    corrects: Observation | None = None,
) -> Observation:
    """A physical therapy (`pt`) or CBT/ACT (`cbt`) session, attended or missed. A member of
    staff records only the sessions of their own discipline: the roles the pathway definitions
    name for the event that reports such a session (`session: pt`); NotPermitted otherwise."""
    discipline = _code(discipline, "discipline")
    _check_session_recorder(recorded_by, discipline)
    if not isinstance(attended, bool):
        raise _invalid("attended", "must be true or false")
    observed_at = _moment(observed_at, "observed_at")
    notes = _text(notes, "notes", max_length=NOTES_MAX_LENGTH)
    observation = _new(
        patient=patient,
        kind=Kind.SESSION,
        code=discipline,
        observed_at=observed_at,
        recorded_by=recorded_by,
        corrects=corrects,
        value_bool=attended,
        data={"notes": notes} if notes else {},
    )
    return _save(
        observation,
        {
            **_COMMON_FIELDS,
            "code": "discipline",
            "value_bool": "attended",
            "observed_at": "observed_at",
        },
    )


@transaction.atomic
def medication_record(
    *,
    patient: Patient,
    drug: str,
    daily_dose: float,
    unit: str,
    observed_at: datetime,
    recorded_by: User | None = None,
    corrects: Observation | None = None,
) -> Observation:
    """A drug's current total daily dose from `observed_at` on; 0 means it was stopped.

    Drugs with a CDC MME factor must be recorded in the factor's unit (mg; the fentanyl patch as
    its rate in mcg/h), benzodiazepines in mg.
    """
    drug = _code(drug, "drug")
    dose = _number(daily_dose, "daily_dose")
    unit = _text(unit, "unit", max_length=16).lower()
    observed_at = _moment(observed_at, "observed_at")
    observation = _new(
        patient=patient,
        kind=Kind.MEDICATION,
        code=drug,
        observed_at=observed_at,
        recorded_by=recorded_by,
        corrects=corrects,
        value_number=dose,
        data={"unit": unit},
    )
    return _save(
        observation,
        {
            **_COMMON_FIELDS,
            "code": "drug",
            "value_number": "daily_dose",
            "observed_at": "observed_at",
        },
    )


@transaction.atomic
def failed_treatment_record(
    *,
    patient: Patient,
    treatment_class: str,
    reason: str,
    observed_at: datetime,
    max_dose: str = "",
    duration_weeks: float | None = None,
    baseline_score: float | None = None,
    end_score: float | None = None,
    recorded_by: User | None = None,
    corrects: Observation | None = None,
) -> Observation:
    """A treatment class tried and failed, with the reason and the adequate-trial details payers
    ask for (max dose, weeks at it, baseline and end score)."""
    treatment_class = _code(treatment_class, "treatment_class")
    reason = _code(reason, "reason")
    observed_at = _moment(observed_at, "observed_at")
    max_dose = _text(max_dose, "max_dose", max_length=100)
    data: dict[str, Any] = {}
    if max_dose:
        data["max_dose"] = max_dose
    for key, value in (
        ("duration_weeks", duration_weeks),
        ("baseline_score", baseline_score),
        ("end_score", end_score),
    ):
        number = _number(value, key, optional=True)
        if number is not None:
            data[key] = number
    observation = _new(
        patient=patient,
        kind=Kind.FAILED_TREATMENT,
        code=treatment_class,
        observed_at=observed_at,
        recorded_by=recorded_by,
        corrects=corrects,
        value_text=reason,
        data=data,
    )
    return _save(
        observation,
        {
            **_COMMON_FIELDS,
            "code": "treatment_class",
            "value_text": "reason",
            "observed_at": "observed_at",
        },
    )


@transaction.atomic
def pain_onset_record(
    *,
    patient: Patient,
    onset: date,
    recorded_by: User | None = None,
    corrects: Observation | None = None,
) -> Observation:
    """When this pain started (a date in the patient's calendar), for `pain.months`."""
    onset = _day(onset, "onset", patient)
    if patient.date_of_birth is not None and onset < patient.date_of_birth:
        raise _invalid("onset", "is before the patient's date of birth")
    observation = _new(
        patient=patient,
        kind=Kind.PAIN_ONSET,
        code=reference.PAIN_ONSET_CODE,
        observed_at=_local_midnight(onset, patient),
        recorded_by=recorded_by,
        corrects=corrects,
        data={"date": onset.isoformat()},
    )
    return _save(observation, {**_COMMON_FIELDS, "observed_at": "onset", "date": "onset"})


@transaction.atomic
def psych_evaluation_record(
    *,
    patient: Patient,
    outcome: str,
    observed_at: datetime,
    recorded_by: User | None = None,
    corrects: Observation | None = None,
) -> Observation:
    """The outcome of a pre-implant psychological evaluation."""
    outcome = _code(outcome, "outcome")
    observed_at = _moment(observed_at, "observed_at")
    observation = _new(
        patient=patient,
        kind=Kind.PSYCH_EVALUATION,
        code=reference.PSYCH_EVALUATION_CODE,
        observed_at=observed_at,
        recorded_by=recorded_by,
        corrects=corrects,
        value_text=outcome,
    )
    return _save(
        observation, {**_COMMON_FIELDS, "value_text": "outcome", "observed_at": "observed_at"}
    )


@transaction.atomic
def conservative_care_start_record(
    *,
    patient: Patient,
    started: date,
    recorded_by: User | None = None,
    corrects: Observation | None = None,
) -> Observation:
    """When documented conservative care started (patient's calendar), for
    `conservative_care.weeks`."""
    started = _day(started, "started", patient)
    observation = _new(
        patient=patient,
        kind=Kind.CONSERVATIVE_CARE_START,
        code=reference.CONSERVATIVE_CARE_START_CODE,
        observed_at=_local_midnight(started, patient),
        recorded_by=recorded_by,
        corrects=corrects,
        data={"date": started.isoformat()},
    )
    return _save(observation, {**_COMMON_FIELDS, "observed_at": "started", "date": "started"})


@transaction.atomic
def status_record(
    *,
    patient: Patient,
    code: str,
    value: bool | None,
    observed_at: datetime,
    recorded_by: User | None = None,
    corrects: Observation | None = None,
) -> Observation:
    """A status of `reference.STATUSES`: boolean ones take `value=True/False` (the latest holds),
    occurrences (`pdmp_checked`, `udt_done`, `opioid_reassessed`) take `value=None`."""
    code = _code(code, "code")
    if value is not None and not isinstance(value, bool):
        raise _invalid("value", "must be true, false or none")
    observed_at = _moment(observed_at, "observed_at")
    observation = _new(
        patient=patient,
        kind=Kind.STATUS,
        code=code,
        observed_at=observed_at,
        recorded_by=recorded_by,
        corrects=corrects,
        value_bool=value,
    )
    return _save(
        observation,
        {**_COMMON_FIELDS, "code": "code", "value_bool": "value", "observed_at": "observed_at"},
    )


@transaction.atomic
def observation_withdraw(
    *, observation: Observation, reason: str, recorded_by: User | None = None
) -> Observation:
    """Withdraw an observation entered in error (wrong patient, never happened).

    Writes a withdrawal: a copy of the observation marked `entered_in_error` that replaces it, so
    neither is read any more and both stay for the audit trail. Withdrawing the current record of
    a corrected observation (or of a procedure with its result) withdraws the whole chain; to fix
    a value instead, record a correction (or a new result) against the current record.
    """
    if not isinstance(observation, Observation) or observation.pk is None:
        raise _invalid("observation", "must be a recorded observation")
    reason = _text(reason, "reason", max_length=255)
    if not reason:
        raise _invalid("reason", "say why the observation is withdrawn")
    if observation.entered_in_error:
        raise _invalid("observation", "is already a withdrawal")
    withdrawal = _new(
        patient=observation.patient,
        kind=Kind(observation.kind),
        code=observation.code,
        observed_at=observation.observed_at,
        recorded_by=recorded_by,
        corrects=observation,
        corrects_field="observation",
        value_number=observation.value_number,
        value_text=observation.value_text,
        value_bool=observation.value_bool,
        source=observation.source,
        is_baseline=observation.is_baseline,
        data={**observation.data, "withdrawal_reason": reason},
        entered_in_error=True,
    )
    return _save(withdrawal, {**_COMMON_FIELDS, "corrects": "observation"})
