"""What each FHIR resource type reads, within the user's scope (carehub.care_access), and how a
page of rows becomes resources (in batches: one query per related kind, not per row).

A patient-data type names the care-access operation it needs, the scoped queryset it reads
and the field that holds the patient; search by `patient` and `_lastUpdated` filters that
queryset; rows outside the scope are never found (404), as in the REST API."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

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


def build_patients(rows: list[Patient]) -> list[dict[str, Any]]:
    return [resources.patient(row) for row in rows]


def build_observations(rows: list[Observation]) -> list[dict[str, Any]]:
    responses = dict(
        Checkin.objects.filter(observation_id__in=[r.pk for r in rows]).values_list(
            "observation_id", "pk"
        )
    )
    return [
        resources.score_observation(
            row, _instrument(row.code, row.data.get("instrument_version")), responses.get(row.pk)
        )
        for row in rows
    ]


def build_questionnaire_responses(rows: list[Checkin]) -> list[dict[str, Any]]:
    built = []
    for row in rows:
        definition = _instrument(row.instrument, row.instrument_version)
        if definition is not None:
            built.append(resources.questionnaire_response(row, definition))
    return built


def build_care_plans(rows: list[Enrolment]) -> list[dict[str, Any]]:
    open_tasks: dict[int, list[int]] = defaultdict(list)
    for enrolment_id, task_id in (
        CareTask.objects.filter(enrolment_id__in=[r.pk for r in rows], status=TaskStatus.OPEN)
        .order_by("pk")
        .values_list("enrolment_id", "pk")
    ):
        open_tasks[enrolment_id].append(task_id)
    return [
        resources.care_plan(
            row, _pathway(row.definition_key, row.definition_version), open_tasks[row.pk]
        )
        for row in rows
    ]


def build_tasks(rows: list[CareTask]) -> list[dict[str, Any]]:
    return [resources.task(row) for row in rows]


def build_flags(rows: list[Flag]) -> list[dict[str, Any]]:
    return [resources.flag(row) for row in rows]


@dataclass(frozen=True)
class PatientDataType:
    """A resource type read from rows about patients."""

    name: str
    operation: Operation
    visible: Callable[[User], QuerySet[Any]]
    rows: Callable[[QuerySet[Any]], QuerySet[Any]]
    build: Callable[[list[Any]], list[dict[str, Any]]]
    patient_field: str  # the column holding the patient's id
    id_field: str = "pk"  # the column the resource id is

    def queryset(self, user: User) -> QuerySet[Any]:
        return self.rows(self.visible(user))

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
        ),
        PatientDataType(
            "QuestionnaireResponse", Operation.CHECKIN_VIEW, checkins_visible_to, checkin_rows,
            build_questionnaire_responses, "patient_id",
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
