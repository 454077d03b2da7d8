"""Recording instrument scores, whatever the door: a patient's check-in (link page, portal,
API), staff entering answers or a total (API, staff patient page, session log, admin), a later
import. `score_observation_record` is the one way a score of the instrument library is recorded:

1. it scores with the library (`carehub.instruments`): the exact total, the band, derived
   values, and the red flags the answers raise;
2. it refuses what cannot be recorded, naming each field (`InvalidInput` with `fields`): an
   unknown item or an answer out of range, an incomplete answer set (every required item the
   instrument's missing-item rule does not allow to be blank, e.g. a PEG missing one item; a
   PHQ-9 without item 9), a total that is not what the items give, a time in the future;
3. it stores the score observation (`services.score_record`, with the band and the instrument
   version in `data`) and acts on the red flags (`red_flags_act`), in the same transaction:
   each registered red-flag handler runs (worklists raise a flag on the clinic's board,
   messaging alerts the care team, urgent alerts published at once and deaf to quiet hours).

Acting on red flags belongs to the apps above the clinical record: they register their handlers
with `register_red_flag_handler` from their `AppConfig.ready()` (docs/adr/0032). A red flag with
no handler registered is refused (`ImproperlyConfigured`, nothing written): a crisis answer is
never recorded without alerting someone.

Item answers or a total: patients answer the items. Staff may give a total without items only
where no red-flag rule reads an item (`InstrumentDefinition.safety_items`): licensed scores such
as the ODI (which carehub never itemises), and free instruments whose rules read only the total
(PEG, PSFS, GAD-7); a PHQ-9 must carry its items, item 9 first of all. With both, the total must
be the one the items give.

Refused answers that still raise red flags: `UnscorableAnswers` carries those flags (not the
"left unanswered" ones: the refusal names the item) so that a caller whose transaction rolls
back can still act on them (the check-in flow does: a refused form must not hide a crisis).

A check-in's answers are recorded here too (`carehub.checkins.services`): the check-in is the
`RedFlagSubject` (its flags raised once per check-in, on its enrolment), and answers of an
instrument the observation store does not keep are still scored and acted on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import Model

from carehub.accounts.models import User
from carehub.core import clock
from carehub.core.exceptions import InvalidInput
from carehub.instruments.catalogue import SCORE_KEYS, score_entries
from carehub.instruments.definition import ENTERED_SCORE_KEY, InstrumentDefinition
from carehub.instruments.loader import UnknownInstrument
from carehub.instruments.registry import instrument_get, instrument_score, instrument_score_total
from carehub.instruments.scoring import AnswerError, AnswerProblem, RedFlag, ScoreResult
from carehub.observations.models import MEAN_TOLERANCE, Observation, Source, is_number
from carehub.observations.selectors import facts_for_patient
from carehub.observations.services import _moment, score_record
from carehub.patients.models import Patient

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScoreRecorded:
    """What was recorded: the observation (None for a check-in of an instrument the observation
    store does not keep, or answers without a total), the library's result, the red flags acted
    on and what the patient must be shown at once (crisis resources)."""

    observation: Observation | None
    result: ScoreResult
    red_flags: list[dict[str, Any]] = field(default_factory=list)
    patient_messages: list[str] = field(default_factory=list)


class UnscorableAnswers(InvalidInput):
    """Answers refused (invalid or incomplete) whose valid part raises red flags: nothing was
    recorded, but `red_flags` must still be acted on once the caller's transaction is over."""

    def __init__(
        self, message: str, *, fields: dict[str, str], red_flags: Sequence[RedFlag]
    ) -> None:
        super().__init__(message, extra={"fields": fields})
        self.red_flags = tuple(red_flags)


def _invalid(name: str, message: str) -> InvalidInput:
    return InvalidInput(f"{name}: {message}", extra={"fields": {name: message}})


def _definition(instrument: object, version: object) -> InstrumentDefinition:
    if not isinstance(instrument, str) or not instrument.strip():
        raise _invalid("instrument", f"must be an instrument key (got {instrument!r})")
    if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
        raise _invalid("instrument_version", f"must be a whole number (got {version!r})")
    try:
        return instrument_get(instrument.strip().lower(), version)
    except UnknownInstrument as exc:
        name = "instrument_version" if version is not None else "instrument"
        raise _invalid(name, str(exc)) from exc


def _refused_flags(definition: InstrumentDefinition, flags: Sequence[RedFlag]) -> list[RedFlag]:
    """Of the flags refused answers raise, the ones to act on: not "left unanswered" (the
    refusal names that item to whoever is answering)."""
    unanswered = {rule.code for rule in definition.red_flags if rule.missing}
    return [flag for flag in flags if flag.code not in unanswered]


def _problems(problems: Sequence[AnswerProblem]) -> dict[str, str]:
    named: dict[str, str] = {}
    for problem in problems:
        name = "score" if problem.item == ENTERED_SCORE_KEY else problem.item
        named.setdefault(name, problem.message)
    return named


def _baseline(patient: Patient, definition: InstrumentDefinition, at: datetime) -> float | None:
    """The pre-trial baseline a diary's relief is measured against (`baseline_relief`)."""
    if not definition.scoring.baseline_relief:
        return None
    facts = facts_for_patient(patient=patient, now=at)
    value = facts.get("nrs.baseline") or facts.get("nrs.latest")
    return float(value) if isinstance(value, int | float) else None


def _score_items(
    definition: InstrumentDefinition, items: Mapping[str, Any], patient: Patient, at: datetime
) -> ScoreResult:
    try:
        result = instrument_score(
            definition.key,
            items,
            version=definition.version,
            baseline=_baseline(patient, definition, at),
        )
    except AnswerError as exc:
        raise UnscorableAnswers(
            "Some answers could not be used.",
            fields=_problems(exc.problems),
            red_flags=_refused_flags(definition, exc.red_flags),
        ) from exc
    if result.incomplete:
        names = ", ".join(problem.item for problem in result.incomplete)
        raise UnscorableAnswers(
            f"The answers are incomplete: {names} must be answered.",
            fields=_problems(result.incomplete),
            red_flags=_refused_flags(definition, result.red_flags),
        )
    return result


def _score_total(definition: InstrumentDefinition, total: Any, source: str) -> ScoreResult:
    if source != Source.STAFF:
        raise _invalid("items", "the item answers are required (staff may enter a total)")
    if definition.safety_items:
        fields = {
            item: f"required: {definition.key} {item} is checked for red flags; record the "
            "item answers, not only the total"
            for item in definition.safety_items
        }
        names = ", ".join(definition.safety_items)
        raise InvalidInput(
            f"{definition.title}: the item answers are required ({names} checked for red "
            "flags); a total alone cannot be recorded.",
            extra={"fields": fields},
        )
    try:
        return instrument_score_total(definition.key, total, version=definition.version)
    except AnswerError as exc:
        raise InvalidInput(
            f"score: {exc.problems[0].message}", extra={"fields": _problems(exc.problems)}
        ) from exc


def _check_total(definition: InstrumentDefinition, result: ScoreResult, given: Any) -> None:
    """A total given with the items must be the one they give (a mean may be given rounded)."""
    if not is_number(given):
        raise _invalid("score", f"must be a number (got {given!r})")
    if result.total is None:
        raise _invalid("score", f"these answers give no total ({result.note or 'not scorable'})")
    tolerance = 0.0 if definition.scoring.decimals == 0 else MEAN_TOLERANCE
    if abs(float(given) - result.total) > tolerance + 1e-9:
        raise _invalid("score", f"the item answers give {result.total:g}, not {float(given):g}")


# --- red flags --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RedFlagSubject:
    """What answers' red flags are raised about, once per subject and flag (a re-submitted form
    or a retried request does not alert twice): `key` is `checkin:<id>` or `observation:<id>`;
    `enrolment` the pathway enrolment the flags belong to (a check-in's), or None for the
    patient's open pathway, if any."""

    key: str
    enrolment: Model | None = None


@dataclass(frozen=True)
class RedFlagsRaised:
    """Red flags to act on: the patient's answers to `instrument` raised them at `at`."""

    patient: Patient
    instrument: str
    red_flags: tuple[RedFlag, ...]
    at: datetime
    subject: RedFlagSubject

    def key(self, flag: RedFlag) -> str:
        """The idempotency key of what a handler does about one flag: once per subject and
        flag."""
        return f"{self.subject.key}:redflag:{flag.code}"


RedFlagHandler = Callable[[RedFlagsRaised], None]

# Name → handler, in registration order (INSTALLED_APPS order: the worklist flag, then the care
# team's alerts).
RED_FLAG_HANDLERS: dict[str, RedFlagHandler] = {}


def register_red_flag_handler(name: str, handler: RedFlagHandler) -> None:
    RED_FLAG_HANDLERS[name] = handler


def red_flags_act(
    *,
    patient: Patient,
    instrument: str,
    red_flags: Sequence[RedFlag],
    at: datetime,
    subject: RedFlagSubject,
) -> list[dict[str, Any]]:
    """Run every registered red-flag handler, in the caller's transaction, and return the flags
    acted on (code, urgency, item). Immediate and same-day flags are urgent: the handlers
    publish their alerts right after commit, deaf to quiet hours and digests."""
    if not red_flags:
        return []
    if not RED_FLAG_HANDLERS:
        raise ImproperlyConfigured(
            "No red-flag handler is registered: a red flag would alert nobody."
        )
    raised = RedFlagsRaised(
        patient=patient, instrument=instrument, red_flags=tuple(red_flags), at=at, subject=subject
    )
    for handler in RED_FLAG_HANDLERS.values():
        handler(raised)
    acted = [{"code": f.code, "urgency": f.urgency, "item": f.item} for f in red_flags]
    logger.warning("%s raised red flags: %s", subject.key, [f["code"] for f in acted])
    return acted


# --- recording ---------------------------------------------------------------------------------


@transaction.atomic
def score_observation_record(
    *,
    patient: Patient,
    instrument: str,
    observed_at: datetime,
    source: Source | str,
    items: Mapping[str, Any] | None = None,
    score: Any = None,
    version: int | None = None,
    recorded_by: User | None = None,
    is_baseline: bool | None = None,
    corrects: Observation | None = None,
    subject: RedFlagSubject | None = None,
) -> ScoreRecorded:
    """Score and record one administration of an instrument, and act on its red flags.

    `items`: the answers by item key; `score`: the total (alone only from staff, see the module
    docstring). `version`: the instrument version answered (default the latest). `subject`: what the
    answers were given for (a check-in: its enrolment owns the flags, raised once per
    check-in; answers that give no observation are still acted on); otherwise flags are raised
    once per observation, on the patient's open pathway. `is_baseline=None`: the first current
    score of the instrument is the baseline. Raises InvalidInput naming each field, having
    written nothing (`UnscorableAnswers` when refused answers raise red flags)."""
    if not isinstance(patient, Patient):
        raise _invalid("patient", "must be a patient")
    definition = _definition(instrument, version)
    observed_at = _moment(observed_at, "observed_at")
    source = str(source)
    if items is not None and not isinstance(items, Mapping):
        raise _invalid("items", "must be a mapping of item to answer")
    if items is not None and not items:
        items = None
    licensed = definition.scoring.rule == "entered"
    if licensed and items is not None:
        raise _invalid(
            "items",
            f"{definition.key} is licensed: enter the score computed on the licensed form, "
            "not its items",
        )
    if items is None and score is None:
        raise _invalid("score", "give the item answers (or, for staff, the total)")
    if licensed and source != Source.STAFF:
        raise _invalid("source", f"{definition.key} is licensed: its score is entered by staff")
    if items is not None:
        result = _score_items(definition, items, patient, observed_at)
        if score is not None:
            _check_total(definition, result, score)
    else:
        result = _score_total(definition, score, source)

    stored = score_entries().get(definition.key)
    observation = None
    if stored is not None and result.total is not None:
        answers = {k: v for k, v in result.answers.items() if k in stored.item_keys}
        details: dict[str, Any] = {"instrument_version": definition.version}
        if result.band:
            details["band"] = result.band
        others = {k: v for k, v in result.answers.items() if k not in stored.item_keys}
        if others:  # answers that are not scored items (PHQ-9 difficulty, PSFS activities)
            details["other_answers"] = others
        observation = score_record(
            patient=patient,
            instrument=definition.key,
            score=result.total,
            observed_at=observed_at,
            recorded_by=recorded_by,
            source=source,
            is_baseline=is_baseline,
            corrects=corrects,
            details=details,
            items={k: int(v) for k, v in answers.items()} or None,
        )
    elif subject is None:
        # Outside a check-in a score is recorded or refused: flags need something to belong to.
        if stored is None:
            raise _invalid(
                "instrument",
                f"{definition.key} is not recorded as a score (known: {', '.join(SCORE_KEYS)})",
            )
        raise _invalid("items", result.note or "these answers give no total")

    if subject is None:
        assert observation is not None
        subject = RedFlagSubject(key=f"observation:{observation.pk}")
    flags = red_flags_act(
        patient=patient,
        instrument=definition.key,
        red_flags=result.red_flags,
        at=clock.now(),
        subject=subject,
    )
    return ScoreRecorded(
        observation=observation,
        result=result,
        red_flags=flags,
        patient_messages=[f.patient_message for f in result.red_flags if f.patient_message],
    )
