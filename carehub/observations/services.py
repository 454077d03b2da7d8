"""Recording observations. Every function validates its input and raises `InvalidInput` naming the
field (writing nothing) when it is wrong; each owns its transaction.

One routine writes every kind (`_record`), driven by the kind's entry in `_SPECS`: a reader that
checks the kind's own arguments and makes the observation's values, and the caller's names for
the model's fields (errors speak the caller's vocabulary). The public functions below hand their
keyword arguments to it; each one's signature is a `TypedDict` of
`carehub.observations.arguments` (checked by the type checker, and at run time by `_take`).

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

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Unpack
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import transaction
from django.utils import timezone

from carehub.accounts.models import User
from carehub.core import clock
from carehub.core.exceptions import Conflict, InvalidInput, NotPermitted
from carehub.observations import reference
from carehub.observations.arguments import (
    ConservativeCareStartArguments,
    FailedTreatmentArguments,
    MedicationArguments,
    PainOnsetArguments,
    ProcedureArguments,
    PsychEvaluationArguments,
    ScoreArguments,
    SessionArguments,
    StatusArguments,
)
from carehub.observations.models import Kind, Observation, Source, is_number
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
    return float(value)


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


# Who may log a therapy session of a kind (`pt`, `cbt`) is the published pathway definitions'
# to say (the senders of the events reporting it): the pathways app registers that lookup from
# its AppConfig.ready() (docs/adr/0032). With none registered a session is refused rather than
# recorded unchecked.
SessionRoles = Callable[[str], frozenset[str]]
_session_roles: list[SessionRoles] = []


def register_session_roles(lookup: SessionRoles) -> None:
    if lookup not in _session_roles:
        _session_roles.append(lookup)


def session_roles(discipline: str) -> frozenset[str]:
    """The roles that may log sessions of `discipline`; empty when nothing restricts it."""
    if not _session_roles:
        raise ImproperlyConfigured("No lookup of the roles that may log sessions is registered.")
    return frozenset().union(*(lookup(discipline) for lookup in _session_roles))


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


# --- the recording routine and its table ---------------------------------------------------------


@dataclass(frozen=True)
class _Draft:
    """What a kind's reader makes of the caller's arguments, once they are valid."""

    code: str
    observed_at: datetime
    # The observation's other columns: value_number, value_text, value_bool, source,
    # is_baseline, data, entered_in_error.
    values: dict[str, Any] = field(default_factory=dict)
    # The patient when it is not the caller's `patient` argument: a procedure's result and a
    # withdrawal are the replaced observation's patient's.
    patient: Patient | None = None


@dataclass(frozen=True)
class _Spec:
    """How one kind of observation is recorded.

    `read` checks the kind's own arguments (in the order its errors are reported) and makes the
    draft; `fields` maps model fields to the caller's parameter names, so that the model's rules
    are reported in the caller's vocabulary; `corrects_field` is the caller's name for the
    observation replaced. `kind=None`: the kind of the observation replaced (a withdrawal).
    """

    kind: Kind | None
    read: Callable[[Mapping[str, Any]], _Draft]
    fields: Mapping[str, str]
    corrects_field: str = "corrects"
    # The public function's keyword arguments (`carehub.observations.arguments`; None: the
    # function names them itself) and the defaults of those it may leave out.
    arguments: type[Any] | None = None
    defaults: Mapping[str, Any] = field(default_factory=dict)


def _take(spec: _Spec, arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The call's arguments with the kind's defaults; a `TypeError`, as for any Python call, for
    an argument the kind does not take or a required one left out."""
    if spec.arguments is not None:
        required: frozenset[str] = spec.arguments.__required_keys__
        optional: frozenset[str] = spec.arguments.__optional_keys__
        unknown = sorted(set(arguments) - required - optional)
        missing = sorted(required - set(arguments))
        if unknown or missing:
            raise TypeError(
                f"{spec.arguments.__name__}: unexpected {unknown or 'none'}, missing "
                f"{missing or 'none'}"
            )
    return {"recorded_by": None, "corrects": None, **spec.defaults, **arguments}


def _record(spec: _Spec, given: Mapping[str, Any]) -> Observation:
    """Record one observation as `spec` says, inside the caller's transaction.

    `given` are the public function's arguments, with `recorded_by` and `corrects` among them
    (and `patient`, unless the draft names it). The kind's own arguments are checked first, then
    the patient, the observation to replace and the recorder (`_check_recorder`,
    `_check_correctable`), then the model's rules.
    """
    arguments = _take(spec, given)
    draft = spec.read(arguments)
    patient = draft.patient if draft.patient is not None else arguments["patient"]
    corrects = arguments["corrects"]
    recorded_by = arguments["recorded_by"]
    if not isinstance(patient, Patient):
        raise _invalid("patient", "must be a patient")
    if corrects is not None and not isinstance(corrects, Observation):
        raise _invalid(spec.corrects_field, "must be a recorded observation")
    kind = spec.kind
    if kind is None:  # a withdrawal: the kind of the observation it replaces
        assert corrects is not None
        kind = Kind(corrects.kind)
    _check_recorder(recorded_by, patient)
    _check_correctable(corrects, patient, kind, spec.corrects_field)
    observation = Observation(
        patient=patient,
        kind=kind,
        code=draft.code,
        observed_at=draft.observed_at,
        recorded_by=recorded_by,
        corrects=corrects,
        **draft.values,
    )
    return _save(observation, spec.fields)


def _read_score(a: Mapping[str, Any]) -> _Draft:
    instrument = _code(a["instrument"], "instrument")
    score_value = _number(a["score"], "score")
    observed_at = _moment(a["observed_at"], "observed_at")
    is_baseline, items = a["is_baseline"], a["items"]
    if is_baseline is not None and not isinstance(is_baseline, bool):
        raise _invalid("is_baseline", "must be true, false or omitted")
    if items is not None and (not isinstance(items, dict) or not items):
        raise _invalid("items", "must be a non-empty mapping of item to answer")
    data: dict[str, Any] = dict(a["details"] or {})
    if items is not None:
        data["items"] = dict(items)
    if is_baseline is None and isinstance(a["corrects"], Observation):
        is_baseline = a["corrects"].is_baseline  # a correction keeps what it corrects
    elif is_baseline is None and isinstance(a["patient"], Patient):
        is_baseline = (
            not Observation.objects.current()
            .filter(patient=a["patient"], kind=Kind.SCORE, code=instrument)
            .exists()
        )
    return _Draft(
        code=instrument,
        observed_at=observed_at,
        values={
            "value_number": score_value,
            "source": a["source"],
            "is_baseline": bool(is_baseline),
            "data": data,
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


def _read_procedure(a: Mapping[str, Any]) -> _Draft:
    procedure = _code(a["procedure"], "procedure")
    performed_at = _moment(a["performed_at"], "performed_at")
    relief = _number(a["relief_pct"], "relief_pct", optional=True)
    weeks = _number(a["relief_weeks"], "relief_weeks", optional=True)
    region = _text(a["region"], "region", max_length=64)
    return _Draft(
        code=procedure,
        observed_at=performed_at,
        values={
            "value_number": relief,
            "data": _procedure_data(relief_pct=relief, relief_weeks=weeks, region=region),
        },
    )


def _read_procedure_result(a: Mapping[str, Any]) -> _Draft:
    """The procedure itself is checked by `procedure_result_record` (it is what is replaced)."""
    procedure: Observation = a["procedure"]
    relief = _number(a["relief_pct"], "relief_pct")
    weeks = _number(a["relief_weeks"], "relief_weeks", optional=True)
    assessed_at = _moment(a["assessed_at"], "assessed_at")
    if assessed_at < procedure.observed_at:
        raise _invalid("assessed_at", "is before the procedure was performed")
    data = _procedure_data(
        relief_pct=relief, relief_weeks=weeks, region=procedure.data.get("region", "")
    )
    data["assessed_at"] = assessed_at.isoformat()
    return _Draft(
        code=procedure.code,
        observed_at=procedure.observed_at,
        values={"value_number": relief, "source": procedure.source, "data": data},
        patient=procedure.patient,
    )


def _read_session(a: Mapping[str, Any]) -> _Draft:
    discipline = _code(a["discipline"], "discipline")
    _check_session_recorder(a["recorded_by"], discipline)
    attended = a["attended"]
    if not isinstance(attended, bool):
        raise _invalid("attended", "must be true or false")
    observed_at = _moment(a["observed_at"], "observed_at")
    notes = _text(a["notes"], "notes", max_length=NOTES_MAX_LENGTH)
    return _Draft(
        code=discipline,
        observed_at=observed_at,
        values={"value_bool": attended, "data": {"notes": notes} if notes else {}},
    )


def _read_medication(a: Mapping[str, Any]) -> _Draft:
    drug = _code(a["drug"], "drug")
    dose = _number(a["daily_dose"], "daily_dose")
    unit = _text(a["unit"], "unit", max_length=16).lower()
    observed_at = _moment(a["observed_at"], "observed_at")
    return _Draft(
        code=drug, observed_at=observed_at, values={"value_number": dose, "data": {"unit": unit}}
    )


def _read_failed_treatment(a: Mapping[str, Any]) -> _Draft:
    treatment_class = _code(a["treatment_class"], "treatment_class")
    reason = _code(a["reason"], "reason")
    observed_at = _moment(a["observed_at"], "observed_at")
    max_dose = _text(a["max_dose"], "max_dose", max_length=100)
    data: dict[str, Any] = {}
    if max_dose:
        data["max_dose"] = max_dose
    for key in ("duration_weeks", "baseline_score", "end_score"):
        number = _number(a[key], key, optional=True)
        if number is not None:
            data[key] = number
    return _Draft(
        code=treatment_class, observed_at=observed_at, values={"value_text": reason, "data": data}
    )


def _read_pain_onset(a: Mapping[str, Any]) -> _Draft:
    patient = a["patient"]
    onset = _day(a["onset"], "onset", patient)
    if patient.date_of_birth is not None and onset < patient.date_of_birth:
        raise _invalid("onset", "is before the patient's date of birth")
    return _Draft(
        code=reference.PAIN_ONSET_CODE,
        observed_at=_local_midnight(onset, patient),
        values={"data": {"date": onset.isoformat()}},
    )


def _read_psych_evaluation(a: Mapping[str, Any]) -> _Draft:
    outcome = _code(a["outcome"], "outcome")
    observed_at = _moment(a["observed_at"], "observed_at")
    return _Draft(
        code=reference.PSYCH_EVALUATION_CODE,
        observed_at=observed_at,
        values={"value_text": outcome},
    )


def _read_conservative_care_start(a: Mapping[str, Any]) -> _Draft:
    started = _day(a["started"], "started", a["patient"])
    return _Draft(
        code=reference.CONSERVATIVE_CARE_START_CODE,
        observed_at=_local_midnight(started, a["patient"]),
        values={"data": {"date": started.isoformat()}},
    )


def _read_status(a: Mapping[str, Any]) -> _Draft:
    code = _code(a["code"], "code")
    value = a["value"]
    if value is not None and not isinstance(value, bool):
        raise _invalid("value", "must be true, false or none")
    observed_at = _moment(a["observed_at"], "observed_at")
    return _Draft(code=code, observed_at=observed_at, values={"value_bool": value})


# What a withdrawal copies of the observation it withdraws (besides its code, time and data).
_WITHDRAWAL_COPIES = ("value_number", "value_text", "value_bool", "source", "is_baseline")


def _read_withdrawal(a: Mapping[str, Any]) -> _Draft:
    """The observation itself is checked by `observation_withdraw` (it is what is replaced)."""
    observation: Observation = a["observation"]
    reason = _text(a["reason"], "reason", max_length=255)
    if not reason:
        raise _invalid("reason", "say why the observation is withdrawn")
    if observation.entered_in_error:
        raise _invalid("observation", "is already a withdrawal")
    return _Draft(
        code=observation.code,
        observed_at=observation.observed_at,
        values={
            **{name: getattr(observation, name) for name in _WITHDRAWAL_COPIES},
            "data": {**observation.data, "withdrawal_reason": reason},
            "entered_in_error": True,
        },
        patient=observation.patient,
    )


_COMMON_FIELDS = {"recorded_by": "recorded_by", "corrects": "corrects", "patient": "patient"}
_PROCEDURE_FIELDS = {
    **_COMMON_FIELDS,
    "code": "procedure",
    "value_number": "relief_pct",
    "observed_at": "performed_at",
}

# Every way an observation is written: the public function (`<name>_record`, and the
# withdrawal) → how its kind is recorded.
_SPECS: dict[str, _Spec] = {
    "score": _Spec(
        Kind.SCORE,
        _read_score,
        {
            **_COMMON_FIELDS,
            "code": "instrument",
            "value_number": "score",
            "source": "source",
            "observed_at": "observed_at",
            "is_baseline": "is_baseline",
        },
        arguments=ScoreArguments,
        defaults={"source": Source.STAFF, "is_baseline": None, "items": None, "details": None},
    ),
    "procedure": _Spec(
        Kind.PROCEDURE,
        _read_procedure,
        _PROCEDURE_FIELDS,
        arguments=ProcedureArguments,
        defaults={"relief_pct": None, "relief_weeks": None, "region": ""},
    ),
    "procedure_result": _Spec(
        Kind.PROCEDURE,
        _read_procedure_result,
        {**_PROCEDURE_FIELDS, "corrects": "procedure"},
        corrects_field="procedure",
    ),
    "session": _Spec(
        Kind.SESSION,
        _read_session,
        {
            **_COMMON_FIELDS,
            "code": "discipline",
            "value_bool": "attended",
            "observed_at": "observed_at",
        },
        arguments=SessionArguments,
        defaults={"notes": ""},
    ),
    "medication": _Spec(
        Kind.MEDICATION,
        _read_medication,
        {
            **_COMMON_FIELDS,
            "code": "drug",
            "value_number": "daily_dose",
            "observed_at": "observed_at",
        },
        arguments=MedicationArguments,
    ),
    "failed_treatment": _Spec(
        Kind.FAILED_TREATMENT,
        _read_failed_treatment,
        {
            **_COMMON_FIELDS,
            "code": "treatment_class",
            "value_text": "reason",
            "observed_at": "observed_at",
        },
        arguments=FailedTreatmentArguments,
        defaults={
            "max_dose": "",
            "duration_weeks": None,
            "baseline_score": None,
            "end_score": None,
        },
    ),
    "pain_onset": _Spec(
        Kind.PAIN_ONSET,
        _read_pain_onset,
        {**_COMMON_FIELDS, "observed_at": "onset", "date": "onset"},
        arguments=PainOnsetArguments,
    ),
    "psych_evaluation": _Spec(
        Kind.PSYCH_EVALUATION,
        _read_psych_evaluation,
        {**_COMMON_FIELDS, "value_text": "outcome", "observed_at": "observed_at"},
        arguments=PsychEvaluationArguments,
    ),
    "conservative_care_start": _Spec(
        Kind.CONSERVATIVE_CARE_START,
        _read_conservative_care_start,
        {**_COMMON_FIELDS, "observed_at": "started", "date": "started"},
        arguments=ConservativeCareStartArguments,
    ),
    "status": _Spec(
        Kind.STATUS,
        _read_status,
        {**_COMMON_FIELDS, "code": "code", "value_bool": "value", "observed_at": "observed_at"},
        arguments=StatusArguments,
    ),
    "withdrawal": _Spec(
        None,
        _read_withdrawal,
        {**_COMMON_FIELDS, "corrects": "observation"},
        corrects_field="observation",
    ),
}


# --- services ------------------------------------------------------------------------------------


@transaction.atomic
def score_record(**arguments: Unpack[ScoreArguments]) -> Observation:
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
    return _record(_SPECS["score"], arguments)


@transaction.atomic
def procedure_record(**arguments: Unpack[ProcedureArguments]) -> Observation:
    """A procedure of `reference.PROCEDURES`, with its relief when it is already known."""
    return _record(_SPECS["procedure"], arguments)


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
    given = {"procedure": procedure, "relief_pct": relief_pct, "relief_weeks": relief_weeks}
    given |= {"assessed_at": assessed_at, "recorded_by": recorded_by, "corrects": procedure}
    return _record(_SPECS["procedure_result"], given)


@transaction.atomic
def session_record(**arguments: Unpack[SessionArguments]) -> Observation:
    """A physical therapy (`pt`) or CBT/ACT (`cbt`) session, attended or missed. A member of
    staff records only the sessions of their own discipline: the roles the pathway definitions
    name for the event that reports such a session (`session: pt`); NotPermitted otherwise."""
    return _record(_SPECS["session"], arguments)


@transaction.atomic
def medication_record(**arguments: Unpack[MedicationArguments]) -> Observation:
    """A drug's current total daily dose from `observed_at` on; 0 means it was stopped.

    Drugs with a CDC MME factor must be recorded in the factor's unit (mg; the fentanyl patch as
    its rate in mcg/h), benzodiazepines in mg.
    """
    return _record(_SPECS["medication"], arguments)


@transaction.atomic
def failed_treatment_record(**arguments: Unpack[FailedTreatmentArguments]) -> Observation:
    """A treatment class tried and failed, with the reason and the adequate-trial details payers
    ask for (max dose, weeks at it, baseline and end score)."""
    return _record(_SPECS["failed_treatment"], arguments)


@transaction.atomic
def pain_onset_record(**arguments: Unpack[PainOnsetArguments]) -> Observation:
    """When this pain started (a date in the patient's calendar), for `pain.months`."""
    return _record(_SPECS["pain_onset"], arguments)


@transaction.atomic
def psych_evaluation_record(**arguments: Unpack[PsychEvaluationArguments]) -> Observation:
    """The outcome of a pre-implant psychological evaluation."""
    return _record(_SPECS["psych_evaluation"], arguments)


@transaction.atomic
def conservative_care_start_record(
    **arguments: Unpack[ConservativeCareStartArguments],
) -> Observation:
    """When documented conservative care started (patient's calendar), for
    `conservative_care.weeks`."""
    return _record(_SPECS["conservative_care_start"], arguments)


@transaction.atomic
def status_record(**arguments: Unpack[StatusArguments]) -> Observation:
    """A status of `reference.STATUSES`: boolean ones take `value=True/False` (the latest holds),
    occurrences (`pdmp_checked`, `udt_done`, `opioid_reassessed`) take `value=None`."""
    return _record(_SPECS["status"], arguments)


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
    given = {"observation": observation, "reason": reason, "recorded_by": recorded_by}
    return _record(_SPECS["withdrawal"], {**given, "corrects": observation})
