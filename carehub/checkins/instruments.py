"""Check-ins and the instrument library: the form a patient sees, parsing what they send, and
recording a scored answer (observation, red flags, alerts)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.http import QueryDict

from carehub.checkins.models import Checkin
from carehub.core.exceptions import InvalidInput
from carehub.instruments.definition import InstrumentDefinition, Item
from carehub.instruments.loader import UnknownInstrument
from carehub.instruments.registry import instrument_get, instrument_score
from carehub.instruments.scoring import AnswerError, RedFlag, ScoreResult

logger = logging.getLogger(__name__)

# Red-flag urgency → flag severity and whether staff are alerted at once (urgent messages
# ignore quiet hours and digests).
SEVERITY = {"immediate": "urgent", "same_day": "urgent", "next_business_day": "warning"}
ALERT_ROLES = {
    "immediate": ["coordinator", "physician", "psychologist"],
    "same_day": ["coordinator", "physician"],
    "next_business_day": ["coordinator"],
}


def min_interval(instrument: str) -> timedelta | None:
    try:
        return instrument_get(instrument).min_interval
    except UnknownInstrument:
        return None


# --- the form -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    value: int
    label: str

    @property
    def value_text(self) -> str:
        return str(self.value)


@dataclass(frozen=True)
class Alert:
    """Help shown on the form the moment an answer meets an item's red-flag rule (before the
    answers are sent): the clinic's crisis or emergency texts, never a promise of contact."""

    code: str
    at_least: float | None
    equals: int | None
    texts: tuple[str, ...]


@dataclass(frozen=True)
class Question:
    key: str
    text: str
    type: str
    required: bool
    options: tuple[Choice, ...] = ()
    anchors: tuple[str, str] | None = None
    minimum: float | None = None
    maximum: float | None = None
    alerts: tuple[Alert, ...] = ()

    @property
    def is_scale(self) -> bool:
        return self.type == "scale"

    @property
    def input_type(self) -> str:
        return "number" if self.type == "number" else "text"


@dataclass(frozen=True)
class Form:
    key: str
    title: str
    intro: str
    items: tuple[Question, ...]

    def item_keys(self) -> list[str]:
        return [item.key for item in self.items]

    @property
    def alerts(self) -> tuple[Alert, ...]:
        return tuple(alert for item in self.items for alert in item.alerts)


# Patient texts a red-flag message may name; these are shown at once on the form.
ALERT_TEXTS = ("crisis_resources", "emergency")


def _alerts(definition: InstrumentDefinition, item: Item) -> tuple[Alert, ...]:
    from carehub.instruments.registry import patient_texts

    alerts = []
    texts = patient_texts()
    for rule in definition.red_flags:
        if rule.item != item.key or rule.missing or not rule.patient_message:
            continue
        if rule.urgency == "next_business_day":
            continue
        named = [name for name in ALERT_TEXTS if "{" + name + "}" in rule.patient_message]
        if not named:
            continue
        equals = int(rule.equals) if rule.equals is not None else None
        alerts.append(
            Alert(
                code=rule.code, at_least=rule.at_least, equals=equals,
                texts=tuple(texts[name] for name in named),
            )
        )  # fmt: skip
    return tuple(alerts)


def _question(item: Item, definition: InstrumentDefinition) -> Question:
    options: tuple[Choice, ...] = ()
    anchors = None
    if item.type == "choice":
        options = tuple(Choice(o.value, o.label) for o in item.options)
    elif item.type == "yes_no":
        options = (Choice(1, "Yes"), Choice(0, "No"))
    elif item.type == "scale" and item.minimum is not None and item.maximum is not None:
        options = tuple(Choice(v, str(v)) for v in range(int(item.minimum), int(item.maximum) + 1))
        if item.low_label and item.high_label:
            anchors = (
                f"{int(item.minimum)} = {item.low_label}",
                f"{int(item.maximum)} = {item.high_label}",
            )
    return Question(
        key=item.key, text=item.text, type=item.type, required=not item.optional,
        options=options, anchors=anchors, minimum=item.minimum, maximum=item.maximum,
        alerts=_alerts(definition, item),
    )  # fmt: skip


def form_for(instrument: str) -> Form:
    definition = instrument_get(instrument)
    intro = definition.instructions or definition.description
    return Form(
        key=definition.key,
        title=definition.title,
        intro=intro,
        items=tuple(_question(item, definition) for item in definition.items),
    )


def parse_form(form: Form, data: QueryDict) -> tuple[dict[str, Any], dict[str, str]]:
    """Form fields → answers (numbers as numbers; blanks left out), with per-item errors."""
    answers: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for question in form.items:
        raw = (data.get(question.key) or "").strip()
        if not raw:
            if question.required:
                errors[question.key] = "Please answer this question."
            continue
        if question.type == "text":
            answers[question.key] = raw
            continue
        try:
            number = float(raw)
        except ValueError:
            errors[question.key] = "Please give a number."
            continue
        if question.type == "yes_no":
            answers[question.key] = number == 1
        else:
            answers[question.key] = int(number) if number.is_integer() else number
    return answers, errors


# --- recording --------------------------------------------------------------------------------


@dataclass
class Recorded:
    score: float | None
    band: str
    red_flags: list[dict[str, Any]] = field(default_factory=list)
    patient_messages: list[str] = field(default_factory=list)


def _baseline(checkin: Checkin, definition: InstrumentDefinition, at: datetime) -> float | None:
    if not definition.scoring.baseline_relief:
        return None
    from carehub.observations.selectors import facts_for_patient

    facts = facts_for_patient(patient=checkin.patient, now=at)
    value = facts.get("nrs.baseline") or facts.get("nrs.latest")
    return float(value) if isinstance(value, int | float) else None


def score_answers(checkin: Checkin, answers: dict[str, Any], at: datetime) -> ScoreResult:
    """Score, or raise InvalidInput naming each problem (after acting on any red flag the valid
    answers carry: a refused form must not hide a crisis)."""
    definition = instrument_get(checkin.instrument, checkin.instrument_version)
    try:
        return instrument_score(
            definition.key, answers, version=definition.version,
            baseline=_baseline(checkin, definition, at),
        )  # fmt: skip
    except AnswerError as exc:
        if exc.red_flags:
            act_on_red_flags(checkin, list(exc.red_flags), at)
        raise InvalidInput(
            "Some answers could not be used.",
            extra={"fields": {p.item: p.message for p in exc.problems}},
        ) from exc


def record_answers(
    checkin: Checkin, answers: dict[str, Any], *, source: str, at: datetime
) -> Recorded:
    """Inside the submit transaction: score, store the score as an observation, act on flags."""
    from carehub.observations.reference import INSTRUMENTS
    from carehub.observations.services import score_record

    result = score_answers(checkin, answers, at)
    observation = None
    reference = INSTRUMENTS.get(checkin.instrument)
    if result.total is not None and reference is not None and not reference.staff_entry_only:
        items = {k: int(v) for k, v in result.answers.items() if k in reference.item_keys}
        observation = score_record(
            patient=checkin.patient, instrument=checkin.instrument, score=result.total,
            observed_at=at, source=source, items=items or None,
        )  # fmt: skip
    checkin.observation = observation
    flags = act_on_red_flags(checkin, list(result.red_flags), at)
    return Recorded(
        score=result.total,
        band=result.band or "",
        red_flags=flags,
        patient_messages=[f.patient_message for f in result.red_flags if f.patient_message],
    )


def act_on_red_flags(
    checkin: Checkin, red_flags: list[RedFlag], at: datetime
) -> list[dict[str, Any]]:
    """A flag on the clinic's board and an alert to the care team for each red flag, once per
    check-in and flag (a re-submitted form does not alert twice)."""
    from carehub.messaging.services import message_enqueue_for_roles
    from carehub.worklists.services import flag_raise

    raised = []
    for flag in red_flags:
        key = f"checkin:{checkin.pk}:redflag:{flag.code}"
        flag_raise(
            enrolment=checkin.enrolment, code=flag.code, severity=SEVERITY[flag.urgency],
            message=flag.staff_message, raised_at=at, dedupe_key=key,
        )  # fmt: skip
        message_enqueue_for_roles(
            patient=checkin.patient,
            roles=ALERT_ROLES[flag.urgency],
            purpose="red_flag_alert",
            body=f"Red flag ({flag.urgency.replace('_', ' ')}): {flag.staff_message}",
            idempotency_key_prefix=key,
            urgency="urgent" if flag.urgency != "next_business_day" else "routine",
            why=f"{checkin.instrument} answer: {flag.code}",
            subject_key=f"checkin:{checkin.pk}",
        )
        raised.append({"code": flag.code, "urgency": flag.urgency, "item": flag.item})
    if raised:
        logger.warning("check-in %s raised red flags: %s", checkin.pk, [f["code"] for f in raised])
    return raised
