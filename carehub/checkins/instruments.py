"""Check-ins and the instrument library: the form a patient sees, its names and texts in the
patient's language, and parsing what they send. Recording the answers and acting on their red
flags go through `carehub.observations.scores`, the one scoring-and-recording service
(`checkin_answers_record` and `checkin_red_flags_act` in `carehub.checkins.services`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.http import QueryDict
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _

from carehub.instruments.catalogue import checkin_name
from carehub.instruments.definition import InstrumentDefinition, Item
from carehub.instruments.loader import UnknownInstrument
from carehub.instruments.registry import instrument_get, patient_text_overrides, patient_texts
from carehub.instruments.texts import PATIENT_TEXTS


def min_interval(instrument: str) -> timedelta | None:
    try:
        return instrument_get(instrument).min_interval
    except UnknownInstrument:
        return None


# --- the form -------------------------------------------------------------------------------

# The language every instrument's items are carried in: the validated (English) wording. A
# translation is shown only from the instrument's official translation, carried with its
# version and source (none yet; see carehub/instruments/README.md).
ITEMS_LANGUAGE = "en"


def instrument_name(instrument: str) -> str:
    """The one patient-facing name of an instrument ("Mood check-in"), in the active language:
    the heading of its page and the name its messages use."""
    name = str(checkin_name(instrument) or gettext_lazy("check-in"))
    return name[:1].upper() + name[1:]


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
    items_language: str = ITEMS_LANGUAGE

    def item_keys(self) -> list[str]:
        return [item.key for item in self.items]

    @property
    def alerts(self) -> tuple[Alert, ...]:
        return tuple(alert for item in self.items for alert in item.alerts)


# Patient texts a red-flag message may name; these are shown at once on the form.
ALERT_TEXTS = ("crisis_resources", "emergency")


def patient_texts_translated() -> dict[str, str]:
    """The clinic's patient texts (crisis resources, emergency help) in the active language:
    the defaults through the translation catalogue (their English text is the msgid), then the
    clinic's `INSTRUMENT_PATIENT_TEXTS` in that language."""
    language = (get_language() or "en").split("-")[0]
    texts = {name: _(entry.text) for name, entry in PATIENT_TEXTS.items()}
    return {**texts, **patient_text_overrides(language)}


def patient_messages_translated(
    instrument: str, version: int | None, messages: list[str]
) -> list[str]:
    """A check-in's red-flag messages to the patient (as the scoring service wrote them, in
    English) in the active language: each rule's message template is translated (its English
    text is the msgid) and filled in with the translated patient texts. A message no rule of the
    instrument gives is kept as it is."""
    try:
        definition = instrument_get(instrument, version)
    except UnknownInstrument:
        return messages
    english, translated = patient_texts(), patient_texts_translated()
    by_english = {
        rule.patient_message.format_map(english): _(rule.patient_message).format_map(translated)
        for rule in definition.red_flags
        if rule.patient_message
    }
    return [by_english.get(message, message) for message in messages]


def _alerts(definition: InstrumentDefinition, item: Item) -> tuple[Alert, ...]:
    alerts = []
    texts = patient_texts_translated()
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
                code=rule.code,
                at_least=rule.at_least,
                equals=equals,
                texts=tuple(texts[name] for name in named),
            )
        )
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
        key=item.key,
        text=item.text,
        type=item.type,
        required=not definition.may_be_blank(item),
        options=options,
        anchors=anchors,
        minimum=item.minimum,
        maximum=item.maximum,
        alerts=_alerts(definition, item),
    )


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
                errors[question.key] = _("Please answer this question.")
            continue
        if question.type == "text":
            answers[question.key] = raw
            continue
        try:
            number = float(raw)
        except ValueError:
            errors[question.key] = _("Please give a number.")
            continue
        if question.type == "yes_no":
            answers[question.key] = number == 1
        else:
            answers[question.key] = int(number) if number.is_integer() else number
    return answers, errors
