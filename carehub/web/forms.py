"""Forms of the staff web UI. Every action form carries `form_key`, a one-time key rendered into
a hidden field: submitting the same form twice acts once (see `carehub.web.actions`)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from django import forms
from django.conf import settings
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from carehub.checkins.instruments import Form as Questions
from carehub.core import clock
from carehub.core.exceptions import InvalidInput
from carehub.instruments.catalogue import is_score_instrument
from carehub.instruments.registry import instruments
from carehub.observations.models import Observation
from carehub.observations.reference import PROCEDURES
from carehub.web.charts import PROCEDURE_LABELS
from carehub.web.selectors.caseload import FlagFilter, Sort

KEY_PATTERN = r"^[A-Za-z0-9_-]{8,64}$"


def new_key() -> str:
    return uuid.uuid4().hex


# The mixin's base for the type checker: it is mixed into forms.Form and forms.ModelForm, whose
# fields, errors and add_error it uses; at run time it adds nothing to their MRO.
if TYPE_CHECKING:
    _FormBase = forms.BaseForm
else:
    _FormBase = object


class DescribedErrorsMixin(_FormBase):
    """A field with an error points at its message (`aria-describedby`), which the template
    renders with the id `<field id>-error` (web/partials/field.html); the first such field has
    `autofocus`, so the page that comes back opens there, not at its top (a refused form far
    down the page showed its error out of sight of where focus landed)."""

    def full_clean(self) -> None:
        super().full_clean()
        for name in self.errors:
            if name in self.fields:
                self._describe_error(name)

    def _describe_error(self, name: str) -> None:
        widget = self.fields[name].widget
        widget.attrs["aria-describedby"] = f"{self[name].auto_id}-error"
        if not any(field.widget.attrs.get("autofocus") for field in self.fields.values()):
            widget.attrs["autofocus"] = True

    def add_service_errors(self, exc: InvalidInput, names: dict[str, str] | None = None) -> None:
        """A service's refusal next to the fields it names (`names` maps the service's names to
        the form's), each message linked to its field as the form's own errors are."""
        fields = exc.extra.get("fields")
        if not isinstance(fields, dict):
            return
        for name, messages in fields.items():
            name = (names or {}).get(str(name), str(name))
            text = " ".join(messages) if isinstance(messages, list) else str(messages)
            if name in self.fields:
                self.add_error(name, text)
                self._describe_error(name)


def _set_choices(form: forms.BaseForm, name: str, choices: Any) -> None:
    field = form.fields[name]
    assert isinstance(field, forms.ChoiceField), f"{name} is not a choice field"
    field.choices = choices


class KeyedForm(DescribedErrorsMixin, forms.Form):
    form_key = forms.RegexField(regex=KEY_PATTERN, widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {}).setdefault("form_key", new_key())
        super().__init__(*args, **kwargs)


def _attrs(attrs: dict[str, Any]) -> SafeString:
    """Django's `django/forms/widgets/attrs.html`, in Python."""
    return mark_safe(  # noqa: S308 (every value is escaped by format_html)
        "".join(
            format_html(" {}", name) if value is True else format_html(' {}="{}"', name, value)
            for name, value in attrs.items()
            if value is not False
        )
    )


class PlainSelect(forms.Select):
    """A select that renders exactly as Django's `select.html` but in Python, without a
    template include per option (the caseload's filters render a few dozen on every page)."""

    def render(
        self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None
    ) -> SafeString:
        widget = self.get_context(name, value, attrs)["widget"]
        parts: list[str] = [
            format_html('<select name="{}"{}>', widget["name"], _attrs(widget["attrs"]))
        ]
        for group_name, options, _index in widget["optgroups"]:
            if group_name:
                parts.append(format_html('\n  <optgroup label="{}">', group_name))
            for option in options:
                parts.append(
                    format_html(
                        '\n  <option value="{}"{}>{}</option>\n',
                        str(option["value"]),
                        _attrs(option["attrs"]),
                        option["label"],
                    )
                )
            if group_name:
                parts.append("\n  </optgroup>")
        parts.append("\n</select>")
        return mark_safe("".join(parts))  # noqa: S308 (built with format_html)


class CaseloadFilterForm(forms.Form):
    q = forms.CharField(label="Search name or MRN", required=False, max_length=100)
    track = forms.ChoiceField(label="Track", required=False, widget=PlainSelect)
    stage = forms.ChoiceField(label="Stage", required=False, widget=PlainSelect)
    discipline = forms.ChoiceField(label="Open tasks for", required=False, widget=PlainSelect)
    flag = forms.ChoiceField(
        label="Needs",
        required=False,
        choices=[("", "Anything"), *FlagFilter.CHOICES],
        widget=PlainSelect,
    )
    sort = forms.ChoiceField(
        label="Sort by", required=False, choices=Sort.CHOICES, widget=PlainSelect
    )
    size = forms.TypedChoiceField(
        label="Rows per page",
        required=False,
        coerce=int,
        empty_value=None,
        choices=[(n, str(n)) for n in (10, 25, 50, 100)],
        widget=PlainSelect,
    )
    cursor = forms.CharField(required=False, widget=forms.HiddenInput, max_length=2000)

    def __init__(
        self,
        *args: Any,
        tracks: list[tuple[str, str]],
        stages: list[str],
        disciplines: list[tuple[str, str]],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        _set_choices(self, "track", [("", "Any track"), *tracks])
        _set_choices(
            self,
            "stage",
            [("", "Any stage")] + [(s, s.replace("_", " ").capitalize()) for s in stages],
        )
        _set_choices(self, "discipline", [("", "Any discipline"), *disciplines])
        sizes = sorted({10, 25, 50, 100, min(max(settings.WEB_CASELOAD_PAGE_SIZE, 1), 100)})
        _set_choices(self, "size", [(n, str(n)) for n in sizes])
        self.fields["size"].initial = settings.WEB_CASELOAD_PAGE_SIZE


class DecideForm(KeyedForm):
    """Approve or reject: one form, the button pressed says which."""

    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("reject", "Reject")])
    reason = forms.CharField(
        label="Reason (required to reject)",
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    expected_version = forms.IntegerField(widget=forms.HiddenInput, min_value=0)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        reason = (data.get("reason") or "").strip()
        data["reason"] = reason
        if data.get("decision") == "reject" and not reason:
            self.add_error("reason", "Say why the escalation is rejected.")
        return data


class PauseForm(KeyedForm):
    reason = forms.CharField(label="Why pause (e.g. hospital stay)", max_length=200)

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("Say why the pathway is paused.")
        return reason


class ResumeForm(KeyedForm):
    pass


class DischargeForm(KeyedForm):
    reason = forms.CharField(
        label="Why is the patient discharged?",
        max_length=500,
        strip=True,
        error_messages={"required": "Say why the patient is discharged."},
    )
    confirm = forms.BooleanField(label="I confirm this patient is discharged from the pathway")
    expected_version = forms.IntegerField(widget=forms.HiddenInput, min_value=0)


class EventForm(KeyedForm):
    event = forms.ChoiceField(label="What happened")
    expected_version = forms.IntegerField(widget=forms.HiddenInput, min_value=0)

    def __init__(self, *args: Any, events: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _set_choices(self, "event", events)


class ProcedureResultForm(KeyedForm):
    procedure = forms.TypedChoiceField(label="Procedure", coerce=int)
    relief_pct = forms.FloatField(label="Pain relief (%)", min_value=0, max_value=100)
    relief_weeks = forms.FloatField(
        label="Relief lasted (weeks, optional)", min_value=0, max_value=520, required=False
    )
    assessed_at = forms.DateTimeField(
        label="Assessed at",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )

    def __init__(self, *args: Any, procedures: list[Observation], **kwargs: Any) -> None:
        kwargs.setdefault("initial", {}).setdefault("assessed_at", timezone.localtime(clock.now()))
        super().__init__(*args, **kwargs)
        _set_choices(self, "procedure", [(p.pk, procedure_label(p)) for p in procedures])


def procedure_label(procedure: Observation) -> str:
    name = PROCEDURE_LABELS.get(procedure.code, procedure.code)
    label = f"{name}, {timezone.localtime(procedure.observed_at):%d %b %Y}"
    if procedure.value_number is not None:
        label += f" (relief recorded: {procedure.value_number:g}%)"
    return label


class ProcedureForm(KeyedForm):
    """A procedure performed, with its relief when it is already known."""

    procedure = forms.ChoiceField(label="Procedure")
    performed_at = forms.DateTimeField(
        label="Performed at",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    relief_pct = forms.FloatField(
        label="Pain relief (%, if known)", min_value=0, max_value=100, required=False
    )
    relief_weeks = forms.FloatField(
        label="Relief lasted (weeks, optional)", min_value=0, max_value=520, required=False
    )
    region = forms.CharField(
        label="Region (optional, e.g. L4-L5 right)", max_length=64, required=False
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {}).setdefault("performed_at", timezone.localtime(clock.now()))
        super().__init__(*args, **kwargs)
        _set_choices(self, "procedure", [(p.code, p.title) for p in PROCEDURES.values()])


class SessionLogForm(KeyedForm):
    attended = forms.TypedChoiceField(
        label="Attendance",
        choices=[("yes", "Attended"), ("no", "Did not attend")],
        coerce=lambda value: value == "yes",
        widget=forms.RadioSelect,
    )
    observed_at = forms.DateTimeField(
        label="Session date and time",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    notes = forms.CharField(
        label="Progress notes",
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 4}),
    )
    measure_score = forms.FloatField(label="Score (optional)", required=False)

    def __init__(self, *args: Any, measure_label: str = "", **kwargs: Any) -> None:
        kwargs.setdefault("initial", {}).setdefault("observed_at", timezone.localtime(clock.now()))
        super().__init__(*args, **kwargs)
        if measure_label:
            self.fields["measure_score"].label = f"{measure_label} score (optional)"
        else:
            del self.fields["measure_score"]


def score_instruments() -> list[str]:
    """Instruments staff record item by item on the patient page: free to embed, scored, every
    item a number or a choice, and kept by the observation store (PEG, NRS, PHQ-9, GAD-7, PGIC)."""
    return [
        definition.key
        for definition in instruments(latest_only=True)
        if definition.licence == "free"
        and definition.scoring.rule in ("mean", "sum", "single")
        and definition.items
        and all(item.numeric for item in definition.items)
        and is_score_instrument(definition.key)
    ]


class ScoreForm(KeyedForm):
    """An instrument's questions item by item (the check-in form's: `form_for`) and when they
    were answered; scored and checked by `score_observation_record`."""

    observed_at = forms.DateTimeField(
        label="Answered at",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )

    def __init__(self, *args: Any, questions: Questions, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {}).setdefault("observed_at", timezone.localtime(clock.now()))
        super().__init__(*args, **kwargs)
        self.instrument = questions.key
        self.title = questions.title
        self.item_keys = questions.item_keys()
        for number, question in enumerate(questions.items, start=1):
            label = f"{number}. {question.text}"
            if question.anchors:
                label += f" ({question.anchors[0]}, {question.anchors[1]})"
            if not question.required:
                label += " (optional)"
            field: forms.Field
            errors = {"required": "Please answer this question."}
            if question.options:
                field = forms.TypedChoiceField(
                    label=label,
                    required=question.required,
                    widget=forms.RadioSelect,
                    choices=[(choice.value, choice.label) for choice in question.options],
                    coerce=(lambda v: v == "1") if question.type == "yes_no" else int,
                    empty_value=None,
                    error_messages=errors,
                )
            else:
                field = forms.FloatField(
                    label=label,
                    required=question.required,
                    min_value=question.minimum,
                    max_value=question.maximum,
                    error_messages=errors,
                )
            self.fields[question.key] = field

    @property
    def item_fields(self) -> list[forms.BoundField]:
        return [self[key] for key in self.item_keys]

    def answers(self) -> dict[str, Any]:
        """The answers given (whole numbers as int), unanswered items left out."""
        answers: dict[str, Any] = {}
        for key in self.item_keys:
            value = self.cleaned_data.get(key)
            if value is None:
                continue
            answers[key] = int(value) if isinstance(value, float) and value.is_integer() else value
        return answers


class TaskCompleteForm(KeyedForm):
    pass


class FlagUpdateForm(KeyedForm):
    """Acknowledge (with `note`: what was done, required for an urgent flag) or resolve (with
    `outcome`); the service decides what is required and the row shows its error by the field."""

    note = forms.CharField(required=False)
    outcome = forms.CharField(required=False)


class ResendForm(KeyedForm):
    pass


class ContactFixForm(KeyedForm):
    """A dead message's patient contact, corrected (checked by `patient_contact_update`)."""

    phone = forms.CharField(required=False, max_length=32)
    email = forms.CharField(required=False, max_length=254)


class ClockAdvanceForm(KeyedForm):
    """How far to move a sandbox clinic's test clock (ADR 0024)."""

    UNITS = (("hours", "hours"), ("days", "days"), ("weeks", "weeks"))

    amount = forms.IntegerField(min_value=0, max_value=8784, initial=1, label="Advance by")
    unit = forms.ChoiceField(choices=UNITS, initial="weeks", label="Unit")

    def duration(self) -> Any:
        from datetime import timedelta

        data = self.cleaned_data
        return timedelta(**{data["unit"]: data["amount"]})
