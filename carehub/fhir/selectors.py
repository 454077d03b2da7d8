"""What each FHIR resource type reads, within the user's scope (carehub.care_access), and how a
page of rows becomes resources (in batches: one query per related kind, not per row).

A patient-data type names the care-access operation it needs, the scoped queryset it reads
and the field that holds the patient; search by `patient` and `_lastUpdated` filters that
queryset; rows outside the scope are never found (404), as in the REST API."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from django.db.models import F, QuerySet

from carehub.accounts.models import User
from carehub.care_access import (
    Operation,
    checkins_visible_to,
    enrolments_visible_to,
    flags_visible_to,
    observations_visible_to,
    patients_visible_to,
    tasks_visible_to,
)
from carehub.checkins.models import Checkin, CheckinStatus
from carehub.fhir import resources
from carehub.instruments.definition import InstrumentDefinition
from carehub.instruments.loader import UnknownInstrument
from carehub.instruments.registry import instrument_get
from carehub.observations.models import Kind, Observation
from carehub.pathways.models import Enrolment
from carehub.pathways.registry import definition_get
from carehub.patients.models import Patient
from carehub.worklists.models import CareTask, Flag, TaskStatus
from workflows import PathwayDefinition, UnknownPathway


def _instrument(key: str, version: int | None) -> InstrumentDefinition | None:
    try:
        return instrument_get(key, version)
    except UnknownInstrument:
        return None


def _pathway(key: str, version: int) -> PathwayDefinition | None:
    try:
        return definition_get(key, version)
    except UnknownPathway:
        return None


def patient_rows(patients: QuerySet[Patient]) -> QuerySet[Patient]:
    return patients.select_related("clinic")


def observation_rows(observations: QuerySet[Observation]) -> QuerySet[Observation]:
    return observations.filter(kind=Kind.SCORE)


def checkin_rows(checkins: QuerySet[Checkin]) -> QuerySet[Checkin]:
    return checkins.filter(status=CheckinStatus.ANSWERED).select_related("enrolment")


def task_rows(tasks: QuerySet[CareTask]) -> QuerySet[CareTask]:
    return tasks.select_related("enrolment")


def observation_export_rows(observations: QuerySet[Observation]) -> QuerySet[Any]:
    """What `resources.score_observation` reads of an observation."""
    return observations.values_list(
        "pk",
        "patient_id",
        "code",
        "value_number",
        "data",
        "observed_at",
        "entered_in_error",
        "created_at",
        "updated_at",
        named=True,
    )


def checkin_export_rows(checkins: QuerySet[Checkin]) -> QuerySet[Any]:
    """What `resources.questionnaire_response` reads of a check-in, with its enrolment's
    public id as `care_plan_id`."""
    return checkins.annotate(care_plan_id=F("enrolment__public_id")).values_list(
        "pk",
        "patient_id",
        "instrument",
        "instrument_version",
        "answers",
        "answered_at",
        "updated_at",
        "care_plan_id",
        named=True,
    )


def build_patients(rows: list[Patient], *, validate: bool = True) -> list[dict[str, Any]]:
    return [resources.patient(row, validate=validate) for row in rows]


def _instruments() -> Callable[[str, int | None], InstrumentDefinition | None]:
    """`_instrument`, remembering each key and version asked for (a page of rows)."""
    found: dict[tuple[str, int | None], InstrumentDefinition | None] = {}

    def lookup(key: str, version: int | None) -> InstrumentDefinition | None:
        if (key, version) not in found:
            found[key, version] = _instrument(key, version)
        return found[key, version]

    return lookup


def _checkins_of(rows: list[Any]) -> QuerySet[Checkin]:
    """The check-ins whose scores these observations are. A dense page (the bulk export's, in
    id order) is found by its range of ids (indexed), without a parameter per row; check-ins
    of other observations in that range come along and are not asked for."""
    low, high = min(r.pk for r in rows), max(r.pk for r in rows)
    if high - low < 2 * len(rows):
        return Checkin.objects.filter(observation_id__gte=low, observation_id__lte=high)
    return Checkin.objects.filter(observation_id__in=[r.pk for r in rows])


def build_observations(rows: list[Observation], *, validate: bool = True) -> list[dict[str, Any]]:
    responses = dict(_checkins_of(rows).values_list("observation_id", "pk")) if rows else {}
    instrument = _instruments()
    return [
        resources.score_observation(
            row,
            instrument(row.code, row.data.get("instrument_version")),
            responses.get(row.pk),
            validate=validate,
        )
        for row in rows
    ]


def build_questionnaire_responses(
    rows: list[Checkin], *, validate: bool = True
) -> list[dict[str, Any]]:
    built = []
    instrument = _instruments()
    for row in rows:
        definition = instrument(row.instrument, row.instrument_version)
        if definition is not None:
            built.append(resources.questionnaire_response(row, definition, validate=validate))
    return built


def build_care_plans(rows: list[Enrolment], *, validate: bool = True) -> list[dict[str, Any]]:
    open_tasks: dict[int, list[int]] = defaultdict(list)
    for enrolment_id, task_id in (
        CareTask.objects.filter(enrolment_id__in=[r.pk for r in rows], status=TaskStatus.OPEN)
        .order_by("pk")
        .values_list("enrolment_id", "pk")
    ):
        open_tasks[enrolment_id].append(task_id)
    return [
        resources.care_plan(
            row,
            _pathway(row.definition_key, row.definition_version),
            open_tasks[row.pk],
            validate=validate,
        )
        for row in rows
    ]


def build_tasks(rows: list[CareTask], *, validate: bool = True) -> list[dict[str, Any]]:
    return [resources.task(row, validate=validate) for row in rows]


def build_flags(rows: list[Flag], *, validate: bool = True) -> list[dict[str, Any]]:
    return [resources.flag(row, validate=validate) for row in rows]


class BuildRows(Protocol):
    """A page of rows as resources; `validate=False` skips the model check of each whole
    resource (the bulk export's fast path, ADR 0023), never the primitive checks."""

    def __call__(self, rows: list[Any], *, validate: bool = True) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class PatientDataType:
    """A resource type read from rows about patients."""

    name: str
    operation: Operation
    visible: Callable[[User], QuerySet[Any]]
    rows: Callable[[QuerySet[Any]], QuerySet[Any]]
    build: BuildRows
    patient_field: str  # the column holding the patient's id
    id_field: str = "pk"  # the column the resource id is
    # For the bulk export: the rows as light named tuples holding only what the builder reads
    # (`values_list(..., named=True)`), not model instances; None: the model rows.
    export_rows: Callable[[QuerySet[Any]], QuerySet[Any]] | None = None

    def queryset(self, user: User) -> QuerySet[Any]:
        return self.rows(self.visible(user))

    def export_queryset(self, user: User) -> QuerySet[Any]:
        queryset = self.queryset(user)
        return self.export_rows(queryset) if self.export_rows is not None else queryset

    def patient_ids(self, rows: Iterable[Any]) -> list[int]:
        attribute = "pk" if self.patient_field == "pk" else self.patient_field
        return list(dict.fromkeys(getattr(row, attribute) for row in rows))


PATIENT_DATA_TYPES: dict[str, PatientDataType] = {
    spec.name: spec
    for spec in (
        PatientDataType(
            "Patient", Operation.PATIENT_VIEW, patients_visible_to, patient_rows,
            build_patients, "pk",
        ),
        PatientDataType(
            "Observation", Operation.OBSERVATION_VIEW, observations_visible_to,
            observation_rows, build_observations, "patient_id",
            export_rows=observation_export_rows,
        ),
        PatientDataType(
            "QuestionnaireResponse", Operation.CHECKIN_VIEW, checkins_visible_to, checkin_rows,
            build_questionnaire_responses, "patient_id",
            export_rows=checkin_export_rows,
        ),
        PatientDataType(
            "CarePlan", Operation.ENROLMENT_VIEW, enrolments_visible_to, lambda q: q,
            build_care_plans, "patient_id", id_field="public_id",
        ),
        PatientDataType(
            "Task", Operation.TASK_LIST, tasks_visible_to, task_rows, build_tasks, "patient_id"
        ),
        PatientDataType(
            "Flag", Operation.FLAG_LIST, flags_visible_to, lambda q: q, build_flags,
            "patient_id",
        ),
    )
}  # fmt: skip
