"""carehub rows and definitions as FHIR R4 resources, built and validated with fhir.resources.

Every builder returns the JSON of a resource that the R4B models of `fhir.resources` accepted
(`validated`); R4B is wire-compatible with R4 for every resource emitted here (ADR 0023).
The builders of patient data are pure functions of their rows: the structure of what they
emit is fixed by this code, and every value that comes from the data (names, codes, item keys,
answers, numbers, dates) passes the library's own rule for its FHIR primitive type
(`string`, `code`, `uri`, `integer`, ...) as it is placed. The bulk export builds with
`validate=False` (the model check of the whole resource costs about a millisecond, twenty
times the building), validating a deterministic sample; the test suite validates the output of
every builder over every branch and arbitrary values, and holds that both ways give the same
JSON (ADR 0023, "Bulk export without a model check per resource").
Identifiers: a Patient, Observation, QuestionnaireResponse (the check-in), Task and Flag by
their primary key, a CarePlan by its enrolment's public id, a PlanDefinition as
`<pathway key>-v<version>`, a Questionnaire as `<instrument key with - for _>-v<version>`.
Instrument metadata and LOINC codes come from the instrument library, never a second catalogue;
the wording of an instrument whose licence is not `free` is never emitted (item codes only).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fhir.resources.R4B import fhirtypes, get_fhir_model_class
from pydantic import TypeAdapter, ValidationError

from carehub.checkins.models import Checkin
from carehub.instruments.definition import InstrumentDefinition, Item
from carehub.instruments.registry import instruments
from carehub.pathways.models import Enrolment, EnrolmentStatus
from carehub.patients.models import Patient
from carehub.worklists.models import CareTask, Flag, FlagStatus, TaskStatus
from workflows import PathwayDefinition

FHIR_VERSION = "4.0.1"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
MRN_SYSTEM = "urn:carehub:mrn"
INSTRUMENT_SYSTEM = "urn:carehub:instrument"
FLAG_SYSTEM = "urn:carehub:flag"
DISCIPLINE_SYSTEM = "urn:carehub:discipline"
GUARD_LANGUAGE = "text/x-carehub-guard"
THRESHOLD_EXTENSION = "urn:carehub:fhir:StructureDefinition:pathway-threshold"
ORDINAL_VALUE = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
MIN_VALUE = "http://hl7.org/fhir/StructureDefinition/minValue"
MAX_VALUE = "http://hl7.org/fhir/StructureDefinition/maxValue"
ENTRY_FORMAT = "http://hl7.org/fhir/StructureDefinition/entryFormat"
UNIT_EXTENSION = "http://hl7.org/fhir/StructureDefinition/questionnaire-unit"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"


class ResourceInvalid(ValueError):
    """A resource the fhir.resources models refuse (a bug in a builder, or bad input)."""


def validated(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource, once the R4B model of its type accepted it (`ResourceInvalid` otherwise).

    The JSON served is the builder's own (already in FHIR's JSON form: strings, numbers,
    ISO 8601 instants), not the model's re-serialisation: serialising costs twice what
    validating does, and the bulk export pays it for every resource (ADR 0023)."""
    try:
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    except (KeyError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        raise ResourceInvalid(str(exc)) from exc
    return resource


class _Primitive:
    """One FHIR primitive type's rule, as the fhir.resources models apply it to an element of
    that type (the library's own annotated type), for a value that comes from the data: the
    value is returned unchanged, or `ResourceInvalid` names the rule it breaks. Values already
    accepted are remembered (codes, keys and bands repeat across a clinic)."""

    CACHE_LIMIT = 50_000

    def __init__(self, name: str, annotated: Any) -> None:
        self.name = name
        self.adapter: TypeAdapter[Any] = TypeAdapter(annotated)
        self.accepted: set[tuple[type, Any]] = set()

    def __call__(self, value: Any) -> Any:
        key: tuple[type, Any] | None = (type(value), value)
        try:
            if key in self.accepted:
                return value
        except TypeError:  # unhashable (a list, a dict): checked each time
            key = None
        try:
            self.adapter.validate_python(value)
        except (ValidationError, TypeError, ValueError) as exc:
            raise ResourceInvalid(f"{value!r} is not a valid FHIR {self.name}: {exc}") from exc
        if key is not None:
            if len(self.accepted) >= self.CACHE_LIMIT:
                self.accepted.clear()
            self.accepted.add(key)
        return value


fhir_string = _Primitive("string", fhirtypes.StringType)
fhir_code = _Primitive("code", fhirtypes.CodeType)
fhir_uri = _Primitive("uri", fhirtypes.UriType)
fhir_integer = _Primitive("integer", fhirtypes.IntegerType)
fhir_decimal = _Primitive("decimal", fhirtypes.DecimalType)
fhir_date_time = _Primitive("dateTime", fhirtypes.DateTimeType)


def instant(moment: datetime) -> str:
    """An aware datetime as a FHIR `instant` (also a valid `dateTime`): ISO 8601 with seconds
    and an offset in whole minutes (the database gives UTC); anything else is refused."""
    offset = moment.utcoffset()
    if offset is None or offset.total_seconds() % 60:
        raise ResourceInvalid(f"{moment!r} has no time zone offset in whole minutes")
    return moment.isoformat()


def _meta(updated_at: datetime) -> dict[str, Any]:
    return {"lastUpdated": instant(updated_at)}


def fhir_id(name: str) -> str:
    """A carehub name (track, state, key: lower case, digits, `_`) as a FHIR id (no `_`)."""
    return name.replace("_", "-")


def patient_reference(patient_id: int) -> dict[str, str]:
    return {"reference": f"Patient/{patient_id}"}


# --- instruments ---------------------------------------------------------------------------


def questionnaire_id(definition: InstrumentDefinition) -> str:
    return f"{definition.key.replace('_', '-')}-v{definition.version}"


def questionnaire_url(definition: InstrumentDefinition) -> str:
    return f"{INSTRUMENT_SYSTEM}:{definition.key}"


def questionnaire_canonical(definition: InstrumentDefinition) -> str:
    return f"{questionnaire_url(definition)}|{definition.version}"


def instrument_for_canonical(canonical: str) -> InstrumentDefinition | None:
    return next((d for d in instruments() if questionnaire_canonical(d) == canonical), None)


def wording_allowed(definition: InstrumentDefinition) -> bool:
    """Only instruments free to reproduce carry their wording (items, options, stem)."""
    return definition.licence == "free"


def _item_type(item: Item) -> str:
    if item.type == "choice":
        return "choice"
    if item.type == "yes_no":
        return "boolean"
    if item.type == "text":
        return "string"
    return "integer" if item.whole_numbers else "decimal"


def _option_coding(definition: InstrumentDefinition, value: int, label: str | None) -> dict:
    coding: dict[str, Any] = {"system": questionnaire_url(definition), "code": str(value)}
    if label is not None and wording_allowed(definition):
        coding["display"] = label
    return coding


def _questionnaire_item(definition: InstrumentDefinition, item: Item) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "linkId": item.key,
        "type": _item_type(item),
        "required": not definition.may_be_blank(item),
    }
    if item.loinc:
        entry["code"] = [{"system": LOINC, "code": item.loinc}]
    if wording_allowed(definition):
        entry["text"] = item.text
    if item.type == "choice":
        entry["answerOption"] = [
            {
                "valueCoding": _option_coding(definition, option.value, option.label),
                "extension": [{"url": ORDINAL_VALUE, "valueDecimal": option.value}],
            }
            for option in item.options
        ]
    extensions: list[dict[str, Any]] = []
    value_type = "valueInteger" if item.whole_numbers else "valueDecimal"
    if item.type in ("scale", "number"):
        for url, bound in ((MIN_VALUE, item.minimum), (MAX_VALUE, item.maximum)):
            if bound is not None:
                typed = int(bound) if item.whole_numbers else bound
                extensions.append({"url": url, value_type: typed})
    anchors = [
        f"{bound:g} = {label}"
        for bound, label in ((item.minimum, item.low_label), (item.maximum, item.high_label))
        if label and bound is not None
    ]
    if anchors and wording_allowed(definition):
        extensions.append({"url": ENTRY_FORMAT, "valueString": ", ".join(anchors)})
    if item.unit:
        extensions.append({"url": UNIT_EXTENSION, "valueCoding": {"display": item.unit}})
    if extensions:
        entry["extension"] = extensions
    if item.type == "text" and item.max_length:
        entry["maxLength"] = item.max_length
    return entry


def questionnaire(definition: InstrumentDefinition) -> dict[str, Any]:
    licensed = not wording_allowed(definition)
    resource: dict[str, Any] = {
        "resourceType": "Questionnaire",
        "id": questionnaire_id(definition),
        "url": questionnaire_url(definition),
        "version": str(definition.version),
        "name": definition.key.upper(),
        "title": definition.title,
        "status": "active",
        "subjectType": ["Patient"],
        "description": definition.description,
        "copyright": " ".join(filter(None, [definition.citation, definition.notice])),
    }
    if definition.loinc.panel:
        resource["code"] = [{"system": LOINC, "code": definition.loinc.panel}]
    items = []
    if definition.instructions and not licensed:
        items.append({"linkId": "instructions", "type": "display", "text": definition.instructions})
    items += [_questionnaire_item(definition, item) for item in definition.items]
    if items:
        resource["item"] = items
    return validated(resource)


def _answer(definition: InstrumentDefinition, item: Item | None, value: Any) -> dict[str, Any]:
    if item is not None and item.type == "choice" and isinstance(value, int):
        label = next((o.label for o in item.options if o.value == value), None)
        return {"valueCoding": _option_coding(definition, value, label)}
    if isinstance(value, bool):
        return {"valueBoolean": value}
    if isinstance(value, int):
        return {"valueInteger": fhir_integer(value)}
    if isinstance(value, float):
        return {"valueDecimal": fhir_decimal(value)}
    return {"valueString": fhir_string(str(value))}


_ITEMS: dict[int, tuple[InstrumentDefinition, dict[str, Item]]] = {}


def _item(definition: InstrumentDefinition, key: str) -> Item | None:
    """`definition.item(key)` through a map made once per definition (a check-in's answers
    are looked up item by item, hundreds of thousands of times in a bulk export)."""
    known = _ITEMS.get(id(definition))
    if known is None or known[0] is not definition:
        known = (definition, {item.key: item for item in reversed(definition.items)})
        _ITEMS[id(definition)] = known
    return known[1].get(key)


def questionnaire_response(
    checkin: Checkin | Any, definition: InstrumentDefinition, *, validate: bool = True
) -> dict[str, Any]:
    """An answered check-in; `checkin` is its row, or a light row of the same fields with its
    enrolment's public id as `care_plan_id` (the bulk export's)."""
    care_plan_id = getattr(checkin, "care_plan_id", None)
    if care_plan_id is None:
        care_plan_id = checkin.enrolment.public_id
    items = []
    for key, value in checkin.answers.items():
        if value is None or value == "":
            continue
        item = _item(definition, key)
        entry: dict[str, Any] = {
            "linkId": fhir_string(key),
            "answer": [_answer(definition, item, value)],
        }
        if item is not None and wording_allowed(definition):
            entry["text"] = item.text
        items.append(entry)
    resource: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "id": str(checkin.pk),
        "meta": _meta(checkin.updated_at),
        "questionnaire": questionnaire_canonical(definition),
        "status": "completed",
        "subject": patient_reference(checkin.patient_id),
        "basedOn": [{"reference": f"CarePlan/{care_plan_id}"}],
        "authored": instant(checkin.answered_at or checkin.updated_at),
        "source": patient_reference(checkin.patient_id),
    }
    if items:
        resource["item"] = items
    return validated(resource) if validate else resource


# --- patients and observations ---------------------------------------------------------------


def patient(row: Patient, *, validate: bool = True) -> dict[str, Any]:
    telecom = []
    if row.phone:
        telecom.append({"system": "phone", "value": fhir_string(row.phone), "use": "mobile"})
    if row.email:
        telecom.append({"system": "email", "value": fhir_string(row.email)})
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": str(row.pk),
        "meta": _meta(row.updated_at),
        "identifier": [
            {
                "system": fhir_uri(f"{MRN_SYSTEM}:{row.clinic.slug}"),
                "value": fhir_string(row.mrn),
            }
        ],
        "active": row.active,
        "name": [{"family": fhir_string(row.family_name), "given": [fhir_string(row.given_name)]}],
        "communication": [{"language": {"coding": [{"code": fhir_code(row.language)}]}}],
        "extension": [
            {
                "url": "http://hl7.org/fhir/StructureDefinition/timezone",
                "valueCode": fhir_code(row.time_zone),
            }
        ],
    }
    if telecom:
        resource["telecom"] = telecom
    if row.date_of_birth:
        resource["birthDate"] = row.date_of_birth.isoformat()
    return validated(resource) if validate else resource


def score_observation(
    row: Any,
    definition: InstrumentDefinition | None,
    checkin_id: int | None,
    *,
    validate: bool = True,
) -> dict[str, Any]:
    """An instrument score (`Observation` of kind `score`) with the library's LOINC codes:
    the total's and the panel's, a component per scored item with its own code (PHQ-9 item 9:
    44260-8), `derivedFrom` the check-in's QuestionnaireResponse when it came from one."""
    codings = []
    if definition is not None:
        # The total's code, then the panel's (the form the score belongs to: PEG 91148-7,
        # PHQ-9 44249-1, GAD-7 69737-5), as the library gives them.
        codes = [definition.loinc.total, definition.loinc.panel]
        codings += [{"system": LOINC, "code": code} for code in codes if code]
    codings.append(
        {
            "system": INSTRUMENT_SYSTEM,
            "code": fhir_code(row.code),
            **({"display": definition.title} if definition is not None else {}),
        }
    )
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": str(row.pk),
        "meta": _meta(row.updated_at),
        "status": "entered-in-error" if row.entered_in_error else "final",
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "survey"}]}],
        "code": {"coding": codings},
        "subject": patient_reference(row.patient_id),
        "effectiveDateTime": instant(row.observed_at),
        "issued": instant(row.created_at),
        "valueQuantity": {
            "value": row.value_number
            if row.value_number is None
            else fhir_decimal(row.value_number),
            "unit": "{score}",
            "system": UCUM,
            "code": "{score}",
        },
    }
    band = row.data.get("band")
    if band:
        resource["interpretation"] = [{"text": fhir_string(band)}]
    if checkin_id is not None:
        resource["derivedFrom"] = [{"reference": f"QuestionnaireResponse/{checkin_id}"}]
    components = []
    for key, value in (row.data.get("items") or {}).items():
        item = _item(definition, key) if definition is not None else None
        coding = [{"system": fhir_uri(f"{INSTRUMENT_SYSTEM}:{row.code}"), "code": fhir_code(key)}]
        if item is not None and item.loinc:
            coding.insert(0, {"system": LOINC, "code": item.loinc})
        components.append({"code": {"coding": coding}, "valueInteger": fhir_integer(int(value))})
    if components:
        resource["component"] = components
    return validated(resource) if validate else resource


# --- pathways --------------------------------------------------------------------------------


def plan_definition_id(definition: PathwayDefinition) -> str:
    return f"{definition.key}-v{definition.version}"


def plan_definition_url(definition: PathwayDefinition) -> str:
    return f"urn:carehub:pathway:{definition.key}"


def _threshold_extension(name: str, spec: Any) -> dict[str, Any]:
    value = spec.default
    typed: dict[str, Any]
    if isinstance(value, bool):
        typed = {"valueBoolean": value}
    elif isinstance(value, int | float):
        typed = {"valueDecimal": value}
    else:
        typed = {"valueString": str(value)}
    parts = [{"url": "name", "valueCode": name}, {"url": "default", **typed}]
    parts.append({"url": "source", "valueString": spec.source})
    if spec.unit:
        parts.append({"url": "unit", "valueString": spec.unit})
    return {"url": THRESHOLD_EXTENSION, "extension": parts}


def plan_definition(definition: PathwayDefinition) -> dict[str, Any]:
    """A pathway version: an action per track, inside it an action per state, inside that an
    action per transition leaving the state (its event as a named-event trigger, its guard as
    an applicability condition in the carehub guard language, its target as `relatedAction`).
    The thresholds (default value and source) are extensions of the PlanDefinition."""
    track_actions = []
    for track_name, track in definition.tracks.items():
        state_actions = []
        for state_name, state in track.states.items():
            transitions = []
            for number, transition in enumerate(track.transitions, start=1):
                if state_name not in transition.source and "*" not in transition.source:
                    continue
                action: dict[str, Any] = {
                    "id": fhir_id(f"{track_name}.{state_name}.t{number}"),
                    "title": transition.description or transition.event,
                    "trigger": [{"type": "named-event", "name": transition.event}],
                }
                if transition.guard:
                    action["condition"] = [
                        {
                            "kind": "applicability",
                            "expression": {
                                "language": GUARD_LANGUAGE,
                                "expression": transition.guard,
                            },
                        }
                    ]
                if transition.target:
                    action["relatedAction"] = [
                        {
                            "actionId": fhir_id(f"{track_name}.{transition.target}"),
                            "relationship": "before",
                        }
                    ]
                if transition.approval:
                    action["description"] = "Needs approval by: " + ", ".join(
                        transition.approval.roles
                    )
                transitions.append(action)
            state_action: dict[str, Any] = {
                "id": fhir_id(f"{track_name}.{state_name}"),
                "title": state.title or state_name,
                "code": [{"coding": [{"system": _state_system(definition), "code": state_name}]}],
            }
            if state.description:
                state_action["description"] = state.description
            if transitions:
                state_action["action"] = transitions
            state_actions.append(state_action)
        track_actions.append(
            {
                "id": fhir_id(track_name),
                "title": track.title or track_name,
                "groupingBehavior": "logical-group",
                "action": state_actions,
            }
        )
    resource: dict[str, Any] = {
        "resourceType": "PlanDefinition",
        "id": plan_definition_id(definition),
        "url": plan_definition_url(definition),
        "version": str(definition.version),
        "name": definition.key.replace("-", "_").upper(),
        "title": definition.title,
        "type": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/plan-definition-type",
                    "code": "clinical-protocol",
                }
            ]
        },
        "status": "active",
        "action": track_actions,
    }
    if definition.description:
        resource["description"] = definition.description
    if definition.thresholds:
        resource["extension"] = [
            _threshold_extension(name, spec) for name, spec in definition.thresholds.items()
        ]
    return validated(resource)


def _state_system(definition: PathwayDefinition) -> str:
    return f"urn:carehub:pathway:{definition.key}:state"


_CAREPLAN_STATUS: dict[str, str] = {
    EnrolmentStatus.ACTIVE: "active",
    EnrolmentStatus.PAUSED: "on-hold",
    EnrolmentStatus.COMPLETED: "completed",
}


def care_plan(
    enrolment: Enrolment,
    definition: PathwayDefinition | None,
    open_task_ids: list[int],
    *,
    validate: bool = True,
) -> dict[str, Any]:
    """An enrolment: a CarePlan instantiating its PlanDefinition, with a contained
    RequestGroup holding an action per track in its current state, and an activity per open
    care task (the Task resources)."""
    canonical = fhir_uri(
        f"urn:carehub:pathway:{enrolment.definition_key}|{enrolment.definition_version}"
    )
    group_actions = []
    for track_name, item in (enrolment.configuration or {}).items():
        state_name = item["state"]
        title = state_name
        track_title = track_name
        if definition is not None and track_name in definition.tracks:
            track = definition.tracks[track_name]
            track_title = track.title or track_name
            if state_name in track.states:
                title = track.states[state_name].title or state_name
        action = {
            "id": fhir_string(fhir_id(track_name)),
            "title": fhir_string(track_title),
            "description": fhir_string(title),
            "code": [
                {
                    "coding": [
                        {
                            "system": fhir_uri(
                                f"urn:carehub:pathway:{enrolment.definition_key}:state"
                            ),
                            "code": fhir_code(state_name),
                        }
                    ]
                }
            ],
            "timingDateTime": fhir_date_time(item["entered_at"]),
        }
        group_actions.append(action)
    status = _CAREPLAN_STATUS.get(enrolment.status, "unknown")
    group: dict[str, Any] = {
        "resourceType": "RequestGroup",
        "id": "tracks",
        "instantiatesCanonical": [canonical],
        "status": "active" if status == "active" else status,
        "intent": "plan",
        "subject": patient_reference(enrolment.patient_id),
    }
    if group_actions:
        group["action"] = group_actions
    activities = [{"reference": {"reference": "#tracks"}}]
    activities += [{"reference": {"reference": f"Task/{pk}"}} for pk in open_task_ids]
    resource: dict[str, Any] = {
        "resourceType": "CarePlan",
        "id": str(enrolment.public_id),
        "meta": _meta(enrolment.updated_at),
        "contained": [group],
        "instantiatesCanonical": [canonical],
        "status": status,
        "intent": "plan",
        "title": fhir_string(
            definition.title if definition is not None else enrolment.definition_key
        ),
        "subject": patient_reference(enrolment.patient_id),
        "period": {
            "start": instant(enrolment.started_at),
            **({"end": instant(enrolment.completed_at)} if enrolment.completed_at else {}),
        },
        "created": instant(enrolment.created_at),
        "activity": activities,
    }
    return validated(resource) if validate else resource


_TASK_STATUS: dict[str, str] = {
    TaskStatus.OPEN: "requested",
    TaskStatus.DONE: "completed",
    TaskStatus.CANCELLED: "cancelled",
}


def task(row: CareTask, *, validate: bool = True) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Task",
        "id": str(row.pk),
        "meta": _meta(row.updated_at),
        "status": _TASK_STATUS[row.status],
        "intent": "order",
        "priority": "urgent" if row.priority == "urgent" else "routine",
        "description": fhir_string(row.title),
        "for": patient_reference(row.patient_id),
        "authoredOn": instant(row.created_at),
        "lastModified": instant(row.updated_at),
        "performerType": [
            {"coding": [{"system": DISCIPLINE_SYSTEM, "code": fhir_code(row.discipline)}]}
        ],
    }
    if row.enrolment is not None:
        resource["basedOn"] = [{"reference": f"CarePlan/{row.enrolment.public_id}"}]
    if row.due_at is not None:
        resource["restriction"] = {"period": {"end": instant(row.due_at)}}
    if row.track:
        resource["code"] = {
            "text": fhir_string(f"{row.track}.{row.state}" if row.state else row.track)
        }
    return validated(resource) if validate else resource


def flag(row: Flag, *, validate: bool = True) -> dict[str, Any]:
    period: dict[str, Any] = {"start": instant(row.raised_at)}
    if row.resolved_at is not None:
        period["end"] = instant(row.resolved_at)
    resource: dict[str, Any] = {
        "resourceType": "Flag",
        "id": str(row.pk),
        "meta": _meta(row.updated_at),
        "status": "inactive" if row.status == FlagStatus.RESOLVED else "active",
        "category": [
            {"coding": [{"system": f"{FLAG_SYSTEM}:severity", "code": fhir_code(row.severity)}]}
        ],
        "code": {
            "coding": [{"system": FLAG_SYSTEM, "code": fhir_code(row.code)}],
            "text": fhir_string(row.message),
        },
        "subject": patient_reference(row.patient_id),
        "period": period,
    }
    return validated(resource) if validate else resource
