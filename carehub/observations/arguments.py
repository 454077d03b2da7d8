"""The keyword arguments of each `*_record` service in `carehub.observations.services`.

One `TypedDict` per kind of observation is that service's signature: the type checker checks
every call against it (PEP 692), and the recording routine refuses, at run time, an argument the
kind does not take or a required one left out (a `TypeError`, like any Python call). Defaults are
the recording table's (`services._SPECS`).

This module does not use `from __future__ import annotations`: `Required[...]` must be a real
object when the class is built, or Python 3.11 counts every key as optional.
"""

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, Required, TypedDict

from carehub.accounts.models import User
from carehub.observations.models import Observation, Source
from carehub.patients.models import Patient


class Recording(TypedDict, total=False):
    """What every kind takes: the patient, who records it (None: a system import), and the
    earlier observation of the same patient and kind it replaces (a correction)."""

    patient: Required[Patient]
    recorded_by: User | None
    corrects: Observation | None


class ScoreArguments(Recording, total=False):
    instrument: Required[str]
    score: Required[float]
    observed_at: Required[datetime]
    source: Source | str
    is_baseline: bool | None
    items: dict[str, int] | None
    details: Mapping[str, Any] | None


class ProcedureArguments(Recording, total=False):
    procedure: Required[str]
    performed_at: Required[datetime]
    relief_pct: float | None
    relief_weeks: float | None
    region: str


class SessionArguments(Recording, total=False):
    discipline: Required[str]
    attended: Required[bool]
    observed_at: Required[datetime]
    notes: str


class MedicationArguments(Recording):
    drug: str
    daily_dose: float
    unit: str
    observed_at: datetime


class FailedTreatmentArguments(Recording, total=False):
    treatment_class: Required[str]
    reason: Required[str]
    observed_at: Required[datetime]
    max_dose: str
    duration_weeks: float | None
    baseline_score: float | None
    end_score: float | None


class PainOnsetArguments(Recording):
    onset: date


class PsychEvaluationArguments(Recording):
    outcome: str
    observed_at: datetime


class ConservativeCareStartArguments(Recording):
    started: date


class StatusArguments(Recording):
    code: str
    value: bool | None
    observed_at: datetime
