"""Clinical observations: the one place pathway guards read facts from.

An observation is one thing that was measured, done or decided about a patient at a moment
(`observed_at`): a score, a procedure and its relief, a therapy session, a medication dose, a
failed treatment, the pain's onset, a psychological evaluation, the start of conservative care or
a status such as "naloxone offered". `selectors.facts_for_patient` turns them into the facts of
`workflows.facts`.

Append-only: an observation is never edited or deleted. A correction is a new observation whose
`corrects` points at the one it replaces (each can be replaced once, so corrections form a
chain); `entered_in_error` withdraws the observation it corrects. Replaced and withdrawn
observations stay for the audit trail but no selector reads them.

What each kind stores (code; value; `data` details, optional unless stated):

- score: instrument (`peg`, `phq9`, ...); `value_number` score; `items` (item answers);
  `band`, `instrument_version` and `other_answers` (answers that are not scored items, e.g.
  the PHQ-9 difficulty item) when recorded through `scores.score_observation_record`.
- procedure: procedure (`esi`, `mbb1`, ...); `value_number` relief % or null; `region`,
  `relief_weeks`, `assessed_at`.
- session: discipline (`pt`, `cbt`); `value_bool` attended; `notes`.
- medication: drug (`oxycodone`, ...); `value_number` daily dose, 0 = stopped; `unit` (required).
- failed_treatment: treatment class; `value_text` reason; `max_dose`, `duration_weeks`,
  `baseline_score`, `end_score`.
- pain_onset, conservative_care_start: the kind's name; `observed_at` = local midnight of the
  date; `date`.
- psych_evaluation: `psych_evaluation`; `value_text` outcome.
- status: status code; `value_bool` for boolean statuses, null for occurrences.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any, TypeGuard

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from carehub.core import clock
from carehub.core.exceptions import Conflict
from carehub.core.models import TimeStampedModel
from carehub.core.sql import concrete_field
from carehub.instruments.catalogue import SCORE_KEYS, score_entries
from carehub.observations import reference

# Item means (PEG, PSFS) are often entered rounded to one decimal.
MEAN_TOLERANCE = 0.05

CODE_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")


class Kind(models.TextChoices):
    SCORE = "score", "Score"
    PROCEDURE = "procedure", "Procedure"
    SESSION = "session", "Therapy session"
    MEDICATION = "medication", "Medication"
    FAILED_TREATMENT = "failed_treatment", "Failed treatment"
    PAIN_ONSET = "pain_onset", "Pain onset"
    PSYCH_EVALUATION = "psych_evaluation", "Psychological evaluation"
    CONSERVATIVE_CARE_START = "conservative_care_start", "Conservative care start"
    STATUS = "status", "Status"


class Source(models.TextChoices):
    STAFF = "staff", "Staff"
    PATIENT = "patient", "Patient"
    DEVICE = "device", "Device"


def is_number(value: object) -> TypeGuard[int | float]:
    """A finite int or float (a bool is not a number here)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# The observations that count: neither replaced by a correction nor a withdrawal. Every reader
# filters with this (`Observation.objects.current()`, or `current_observation_sql` in a
# hand-written statement); replaced and withdrawn observations are kept for the record only.
CURRENT = models.Q(corrected_by__isnull=True, entered_in_error=False)


class ObservationQuerySet(models.QuerySet["Observation"]):
    def current(self) -> ObservationQuerySet:
        """Current observations only (`CURRENT`)."""
        return self.filter(CURRENT)


def current_observation_sql(alias: str) -> str:
    """`CURRENT` as a condition of a hand-written statement on the observation row `alias`,
    with the table and columns taken from the model's metadata: not a withdrawal, and no
    observation corrects it (`NOT EXISTS`, which the planner runs as an anti-join on the
    unique index of `corrects`)."""
    table = Observation._meta.db_table
    entered = concrete_field(Observation, "entered_in_error").column
    corrects = concrete_field(Observation, "corrects").column
    key = concrete_field(Observation, "id").column
    if not alias.isidentifier():
        raise ValueError(f"not an SQL alias: {alias!r}")
    by = f"{alias}_by"
    # Names from the model's metadata and an identifier, no values.
    exists = f"SELECT 1 FROM {table} {by} WHERE {by}.{corrects} = {alias}.{key}"  # noqa: S608
    return f"NOT {alias}.{entered} AND NOT EXISTS ({exists})"


class Observation(TimeStampedModel):
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="observations"
    )
    kind = models.CharField(max_length=32, choices=Kind.choices)
    code = models.CharField(
        max_length=64,
        help_text="Instrument, procedure, discipline, drug, treatment class or status code",
    )
    value_number = models.FloatField(null=True, blank=True)
    value_text = models.CharField(max_length=255, blank=True)
    value_bool = models.BooleanField(null=True, blank=True)
    data = models.JSONField(default=dict, blank=True, help_text="Details, e.g. score items")
    observed_at = models.DateTimeField(help_text="When it happened (not when it was recorded)")
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="recorded_observations",
    )
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.STAFF)
    is_baseline = models.BooleanField(
        default=False, help_text="Scores only: the baseline later scores are compared with"
    )
    corrects = models.OneToOneField(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="corrected_by",
        help_text="The earlier observation this one replaces (which is then no longer read)",
    )
    entered_in_error = models.BooleanField(
        default=False,
        help_text="Withdraws the observation it corrects; neither is read",
    )

    objects = ObservationQuerySet.as_manager()

    class Meta:
        ordering = ["-observed_at", "-id"]
        indexes = [
            models.Index(
                fields=["patient", "kind", "code", "observed_at"],
                name="observation_patient_kind_code",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=Kind.values), name="observation_kind_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(source__in=Source.values), name="observation_source_valid"
            ),
            models.CheckConstraint(condition=~models.Q(code=""), name="observation_code_given"),
            models.CheckConstraint(
                condition=~models.Q(kind=Kind.SCORE) | models.Q(value_number__isnull=False),
                name="observation_score_has_number",
            ),
            models.CheckConstraint(
                condition=~models.Q(kind=Kind.PROCEDURE)
                | models.Q(value_number__isnull=True)
                | models.Q(value_number__gte=0, value_number__lte=100),
                name="observation_relief_is_percent",
            ),
            models.CheckConstraint(
                condition=~models.Q(kind=Kind.MEDICATION)
                | models.Q(value_number__isnull=False, value_number__gte=0),
                name="observation_medication_has_dose",
            ),
            models.CheckConstraint(
                condition=~models.Q(kind=Kind.SESSION) | models.Q(value_bool__isnull=False),
                name="observation_session_has_attendance",
            ),
            models.CheckConstraint(
                condition=~models.Q(kind=Kind.FAILED_TREATMENT) | ~models.Q(value_text=""),
                name="observation_failed_treatment_has_reason",
            ),
            models.CheckConstraint(
                condition=~models.Q(kind=Kind.PSYCH_EVALUATION)
                | models.Q(value_text__in=list(reference.PSYCH_EVALUATION_OUTCOMES)),
                name="observation_psych_outcome_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(is_baseline=False) | models.Q(kind=Kind.SCORE),
                name="observation_baseline_only_for_scores",
            ),
            models.CheckConstraint(
                condition=models.Q(entered_in_error=False) | models.Q(corrects__isnull=False),
                name="observation_withdrawal_names_original",
            ),
        ]

    def __str__(self) -> str:
        value: Any = self.value_number
        if value is None:
            value = self.value_text or self.value_bool
        return f"{self.kind} {self.code}={value} @ {self.observed_at:%Y-%m-%d %H:%M}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise Conflict("Observations are append-only: record a correction instead.")
        super().save(*args, **kwargs)

    # --- validation (also runs for observations added in the admin) ------------------------

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}

        def add(field: str, message: str) -> None:
            errors.setdefault(field, []).append(message)

        if not isinstance(self.data, dict):
            add("data", "data: must be an object")
            raise ValidationError(errors)
        # Device and phone clocks drift: an observation may be stamped this far ahead.
        skew = timedelta(seconds=settings.OBSERVATION_MAX_FUTURE_SKEW_SECONDS)
        if self.observed_at is not None and self.observed_at > clock.now() + skew:
            add("observed_at", "is in the future")
        if self.is_baseline and self.kind != Kind.SCORE:
            add("is_baseline", "only scores have a baseline")
        validator = _KIND_VALIDATORS.get(self.kind)
        if validator is not None:
            validator(self, add)
        if self.corrects_id is not None:
            original = self.corrects
            assert original is not None
            if original.patient_id != self.patient_id:
                add("corrects", "is an observation of another patient")
            elif original.kind != self.kind:
                add("corrects", f"is a {original.kind} observation, not a {self.kind} one")
            elif original.entered_in_error:
                add("corrects", "is a withdrawal; record a new observation instead")
        if errors:
            raise ValidationError(errors)


# Validators report problems as (model field, message) through this callback.
Add = Callable[[str, str], None]
Validator = Callable[[Observation, Add], None]


def _clean_score(obs: Observation, add: Add) -> None:
    instrument = score_entries().get(obs.code)
    if instrument is None:
        add("code", f"unknown instrument '{obs.code}' (known: {', '.join(SCORE_KEYS)})")
        return
    code = instrument.key
    score = obs.value_number
    if score is None or not is_number(score):
        add("value_number", "a score is required")
    elif not instrument.minimum <= score <= instrument.maximum:
        add(
            "value_number",
            f"{code} scores run from {instrument.minimum:g} to "
            f"{instrument.maximum:g} (got {score:g})",
        )
    elif instrument.whole_numbers and score != int(score):
        add("value_number", f"{code} scores are whole numbers (got {score:g})")
    if instrument.staff_entry_only and obs.source != Source.STAFF:
        add("source", f"{code} is licensed: its score is entered by staff only")
    items = obs.data.get("items")
    if items is None:
        return
    if instrument.staff_entry_only:
        add("data", f"items: {code} is licensed; store the score only")
        return
    if not isinstance(items, dict) or not items:
        add("data", "items: must be a non-empty mapping of item to answer")
        return
    item_keys, item_range = instrument.item_keys, instrument.item_range
    if not item_keys or item_range is None:
        add("data", f"items: {code} has no items to store")
        return
    low, high = item_range
    for key, answer in items.items():
        if key not in item_keys:
            add(
                "data",
                f"items: unknown {code} item '{key}' (known: {', '.join(item_keys)})",
            )
        elif not isinstance(answer, int) or isinstance(answer, bool) or not low <= answer <= high:
            add(
                "data",
                f"items: {code} {key} answers are whole numbers from "
                f"{low:g} to {high:g} (got {answer!r})",
            )
    if score is None or not is_number(score):
        return
    answers = [a for k, a in items.items() if k in item_keys and is_number(a)]
    complete = set(items) == set(item_keys)
    if instrument.aggregate == "sum" and complete and sum(answers) != score:
        add(
            "data",
            f"items: the {code} item answers add up to {sum(answers)}, not the score {score:g}",
        )
    # PEG needs its three items; PSFS is the mean of however many activities were rated.
    if instrument.aggregate == "mean" and (complete or code == "psfs") and answers:
        mean = sum(answers) / len(answers)
        if abs(mean - score) > MEAN_TOLERANCE:
            add(
                "data",
                f"items: the mean of the {code} items is {mean:.2f}, not the score {score:g}",
            )


def _clean_procedure(obs: Observation, add: Add) -> None:
    if obs.code not in reference.PROCEDURES:
        add("code", f"unknown procedure '{obs.code}' (known: {', '.join(reference.PROCEDURES)})")
    relief = obs.value_number
    low, high = reference.RELIEF_PCT_RANGE
    if relief is not None and (not is_number(relief) or not low <= relief <= high):
        add("value_number", f"relief is a percentage from 0 to 100 (got {relief!r})")
    weeks = obs.data.get("relief_weeks")
    if weeks is not None:
        if not is_number(weeks) or weeks < 0:
            add("data", f"relief_weeks: must be a number of weeks, 0 or more (got {weeks!r})")
        elif relief is None:
            add("data", "relief_weeks: needs relief_pct (how much relief, then how long)")
    region = obs.data.get("region", "")
    if not isinstance(region, str) or len(region) > 64:
        add("data", "region: must be text of at most 64 characters")


def _clean_session(obs: Observation, add: Add) -> None:
    if obs.code not in reference.SESSION_DISCIPLINES:
        add(
            "code",
            f"unknown discipline '{obs.code}' (known: {', '.join(reference.SESSION_DISCIPLINES)})",
        )
    if obs.value_bool is None:
        add("value_bool", "attended must be true or false")


def _clean_medication(obs: Observation, add: Add) -> None:
    if not CODE_PATTERN.match(obs.code or ""):
        add(
            "code",
            f"'{obs.code}' is not a drug code: lower-case letters, digits and underscores, "
            "e.g. oxycodone or fentanyl_transdermal",
        )
    dose = obs.value_number
    if dose is None or not is_number(dose) or dose < 0:
        add("value_number", f"the daily dose is a number, 0 (stopped) or more (got {dose!r})")
    unit = obs.data.get("unit")
    expected = reference.expected_unit(obs.code)
    if unit not in reference.MEDICATION_UNITS:
        add(
            "data",
            f"unit: must be one of {', '.join(reference.MEDICATION_UNITS)} (got {unit!r})",
        )
    elif expected is not None and unit != expected:
        add("data", f"unit: {obs.code} is recorded in {expected} (got {unit})")


def _clean_failed_treatment(obs: Observation, add: Add) -> None:
    if obs.code not in reference.TREATMENT_CLASSES:
        add(
            "code",
            f"unknown treatment class '{obs.code}' "
            f"(known: {', '.join(reference.TREATMENT_CLASSES)})",
        )
    if obs.value_text not in reference.FAILED_TREATMENT_REASONS:
        add(
            "value_text",
            f"unknown reason '{obs.value_text}' "
            f"(known: {', '.join(reference.FAILED_TREATMENT_REASONS)})",
        )
    max_dose = obs.data.get("max_dose", "")
    if not isinstance(max_dose, str) or len(max_dose) > 100:
        add("data", "max_dose: must be text of at most 100 characters, e.g. '3600 mg/day'")
    for key in ("duration_weeks", "baseline_score", "end_score"):
        value = obs.data.get(key)
        if value is not None and (not is_number(value) or value < 0):
            add("data", f"{key}: must be a number, 0 or more (got {value!r})")


def _clean_dated(expected_code: str) -> Validator:
    def clean(obs: Observation, add: Add) -> None:
        if obs.code != expected_code:
            add("code", f"must be '{expected_code}'")
        day = obs.data.get("date")
        if day is not None:
            try:
                date.fromisoformat(day)
            except (TypeError, ValueError):
                add("data", f"date: must be an ISO date, e.g. 2025-01-31 (got {day!r})")

    return clean


def _clean_psych_evaluation(obs: Observation, add: Add) -> None:
    if obs.code != reference.PSYCH_EVALUATION_CODE:
        add("code", f"must be '{reference.PSYCH_EVALUATION_CODE}'")
    if obs.value_text not in reference.PSYCH_EVALUATION_OUTCOMES:
        add(
            "value_text",
            f"unknown outcome '{obs.value_text}' "
            f"(known: {', '.join(reference.PSYCH_EVALUATION_OUTCOMES)})",
        )


def _clean_status(obs: Observation, add: Add) -> None:
    status = reference.STATUSES.get(obs.code)
    if status is None:
        add("code", f"unknown status '{obs.code}' (known: {', '.join(reference.STATUSES)})")
    elif status.type == "boolean" and obs.value_bool is None:
        add("value_bool", f"{obs.code} is true or false")
    elif status.type == "occurrence" and obs.value_bool is not None:
        add("value_bool", f"{obs.code} records that something was done: give no value")


_KIND_VALIDATORS: dict[str, Validator] = {
    Kind.SCORE: _clean_score,
    Kind.PROCEDURE: _clean_procedure,
    Kind.SESSION: _clean_session,
    Kind.MEDICATION: _clean_medication,
    Kind.FAILED_TREATMENT: _clean_failed_treatment,
    Kind.PAIN_ONSET: _clean_dated(reference.PAIN_ONSET_CODE),
    Kind.PSYCH_EVALUATION: _clean_psych_evaluation,
    Kind.CONSERVATIVE_CARE_START: _clean_dated(reference.CONSERVATIVE_CARE_START_CODE),
    Kind.STATUS: _clean_status,
}
