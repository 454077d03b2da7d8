"""Importing a FHIR transaction Bundle: Patient, QuestionnaireResponse and Observation entries
become patients and scores through the domain services, all or nothing.

- Patient → `patients.services.patient_register` in the user's clinic, keyed by MRN (the
  identifier of system `urn:carehub:mrn:<clinic>`, else the first identifier): a patient of
  that MRN already in the user's scope is reused (`200 OK`), one outside it is refused.
- QuestionnaireResponse → `observations.scores.score_observation_record` with the answers as
  items (source `patient`): scored by the library, refused when incomplete or inconsistent, red
  flags raised and alerted as for any other door. The answers are kept in the score's items; no
  check-in is made.
- Observation of an instrument score (code: `urn:carehub:instrument` or the library's total or
  panel LOINC code) → the same service, with the components as items (the total is then
  checked) or the value as an entered total (source `staff`). One `derivedFrom` a
  QuestionnaireResponse of the same Bundle is that response's score: it is not recorded twice.

Every entry is checked and written inside one transaction: any error rolls back everything and
names the entry (`Bundle.entry[n]`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.utils.dateparse import parse_date, parse_datetime
from fhir.resources.R4B.bundle import Bundle

from carehub.accounts.models import User
from carehub.care_access import patients_visible_to
from carehub.core.exceptions import ApplicationError, InvalidInput
from carehub.fhir import resources
from carehub.instruments.definition import InstrumentDefinition
from carehub.instruments.loader import UnknownInstrument
from carehub.instruments.registry import instrument_get, instruments
from carehub.observations.models import Observation, Source
from carehub.observations.scores import score_observation_record
from carehub.patients.models import Language, Patient
from carehub.patients.services import patient_register

IMPORTED_TYPES = ("Patient", "QuestionnaireResponse", "Observation")
TIMEZONE_EXTENSION = "http://hl7.org/fhir/StructureDefinition/timezone"


@dataclass
class Imported:
    """The answer: one `Bundle.entry.response` per entry, and the patients touched."""

    responses: list[dict[str, Any]] = field(default_factory=list)
    patient_ids: list[int] = field(default_factory=list)


def _error(index: int, path: str, message: str) -> InvalidInput:
    where = f"Bundle.entry[{index}]" + (f".resource.{path}" if path else "")
    return InvalidInput(f"{where}: {message}", extra={"field": where})


def bundle_validate(body: Any) -> dict[str, Any]:
    """The body as a transaction Bundle fhir.resources accepts (InvalidInput otherwise)."""
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        raise InvalidInput("The body must be a FHIR Bundle.", extra={"field": "resourceType"})
    if body.get("type") != "transaction":
        raise InvalidInput("The Bundle must be of type transaction.", extra={"field": "type"})
    try:
        Bundle.model_validate(body)
    except ValueError as exc:
        lines = str(exc).splitlines()
        raise InvalidInput(
            "The Bundle is not valid FHIR: " + "; ".join(lines[1:7]), extra={"field": "Bundle"}
        ) from exc
    return body


class _Importer:
    def __init__(self, user: User, entries: list[dict[str, Any]]) -> None:
        self.user = user
        self.entries = entries
        self.patients: dict[int, Patient] = {}  # entry index → patient
        self.scores: dict[int, Observation | None] = {}  # QuestionnaireResponse entry → score
        self.result = Imported(responses=[{} for _ in entries])

    # --- references ----------------------------------------------------------------------------

    def _entry_for(self, reference: str) -> int | None:
        for index, entry in enumerate(self.entries):
            full_url = entry.get("fullUrl") or ""
            if full_url == reference or ("/" in reference and full_url.endswith("/" + reference)):
                return index
        return None

    def _patient(self, index: int, reference: dict[str, Any] | None, path: str) -> Patient:
        ref = (reference or {}).get("reference") or ""
        if not ref:
            raise _error(index, path, "a reference to the patient is required")
        target = self._entry_for(ref)
        if target is not None:
            if target not in self.patients:
                raise _error(index, path, f"{ref} is not a Patient entry of this Bundle")
            return self.patients[target]
        number = ref.removeprefix("Patient/")
        patient = None
        if ref.startswith("Patient/") and number.isdigit():
            patient = patients_visible_to(self.user).filter(pk=int(number)).first()
        if patient is None:
            raise _error(index, path, f"{ref} is not found")
        return patient

    # --- entries -------------------------------------------------------------------------------

    def run(self) -> Imported:
        for index, entry in enumerate(self.entries):
            resource = entry.get("resource") or {}
            kind = resource.get("resourceType")
            if kind not in IMPORTED_TYPES:
                raise _error(
                    index, "", f"{kind} is not imported (only {', '.join(IMPORTED_TYPES)})"
                )
            method = (entry.get("request") or {}).get("method")
            if method not in ("POST", "PUT"):
                raise _error(index, "", "request.method must be POST (or PUT)")
        for kind, handle in (
            ("Patient", self._patient_entry),
            ("QuestionnaireResponse", self._response_entry),
            ("Observation", self._observation_entry),
        ):
            for index, entry in enumerate(self.entries):
                if entry["resource"]["resourceType"] == kind:
                    try:
                        handle(index, entry["resource"])
                    except ApplicationError as exc:
                        if exc.message.startswith("Bundle.entry["):
                            raise
                        raise _error(index, _field(exc), exc.message) from exc
        return self.result

    def _respond(self, index: int, status: str, location: str, patient: Patient) -> None:
        self.result.responses[index] = {"status": status, "location": location}
        if patient.pk not in self.result.patient_ids:
            self.result.patient_ids.append(patient.pk)

    def _patient_entry(self, index: int, resource: dict[str, Any]) -> None:
        clinic = self.user.clinic
        assert clinic is not None  # the import door admits staff of a clinic only
        identifiers = resource.get("identifier") or []
        ours = [i for i in identifiers if str(i.get("system", "")).startswith(resources.MRN_SYSTEM)]
        mrn = ((ours or identifiers or [{}])[0]).get("value")
        if not mrn:
            raise _error(index, "identifier", "an identifier (the MRN) is required")
        existing = Patient.objects.filter(clinic=clinic, mrn=mrn).first()
        if existing is not None:
            if not patients_visible_to(self.user).filter(pk=existing.pk).exists():
                raise _error(index, "identifier", "a patient of this MRN is outside your care")
            self.patients[index] = existing
            self._respond(index, "200 OK", f"Patient/{existing.pk}", existing)
            return
        name = (resource.get("name") or [{}])[0]
        given = " ".join(name.get("given") or [])
        if not name.get("family") or not given:
            raise _error(index, "name", "a family and a given name are required")
        telecom = resource.get("telecom") or []
        phone = next((t["value"] for t in telecom if t.get("system") == "phone"), "")
        email = next((t["value"] for t in telecom if t.get("system") == "email"), "")
        zone = (
            next(
                (
                    e.get("valueCode")
                    for e in resource.get("extension") or []
                    if e.get("url") == TIMEZONE_EXTENSION
                ),
                None,
            )
            or clinic.time_zone
        )
        born = parse_date(resource["birthDate"]) if resource.get("birthDate") else None
        try:
            patient = patient_register(
                clinic=clinic,
                mrn=mrn,
                given_name=given,
                family_name=name["family"],
                time_zone=zone,
                email=email,
                phone=phone,
                date_of_birth=born,
            )
        except DjangoValidationError as exc:
            raise _error(index, "", "; ".join(exc.messages)) from exc
        language = _language(resource)
        if language and language != patient.language:
            Patient.objects.filter(pk=patient.pk).update(language=language)
        self.patients[index] = patient
        self._respond(index, "201 Created", f"Patient/{patient.pk}", patient)

    def _response_entry(self, index: int, resource: dict[str, Any]) -> None:
        if resource.get("status") != "completed":
            raise _error(index, "status", "only a completed QuestionnaireResponse is imported")
        definition = _questionnaire(resource.get("questionnaire") or "")
        if definition is None:
            raise _error(index, "questionnaire", "not a Questionnaire of this server")
        patient = self._patient(index, resource.get("subject"), "subject")
        answers: dict[str, Any] = {}
        for item in _flatten(resource.get("item") or []):
            values = [_answer_value(a) for a in item.get("answer") or []]
            if len(values) == 1:
                answers[item["linkId"]] = values[0]
            elif values:
                raise _error(index, "item", f"{item['linkId']}: one answer per item")
        observed_at = _moment(index, resource.get("authored"), "authored")
        recorded = score_observation_record(
            patient=patient,
            instrument=definition.key,
            version=definition.version,
            items=answers,
            observed_at=observed_at,
            source=Source.PATIENT,
            recorded_by=self.user,
        )
        observation = recorded.observation
        assert observation is not None  # outside a check-in a score is recorded or refused
        self.scores[index] = observation
        self._respond(index, "201 Created", f"Observation/{observation.pk}", patient)

    def _observation_entry(self, index: int, resource: dict[str, Any]) -> None:
        if resource.get("status") not in ("final", "amended", "corrected"):
            raise _error(index, "status", "only a final (or amended) Observation is imported")
        for derived in resource.get("derivedFrom") or []:
            source = self._entry_for(derived.get("reference") or "")
            if source is not None and source in self.scores:
                patient = self._patient(index, resource.get("subject"), "subject")
                observation = self.scores[source]
                assert observation is not None
                if observation.patient_id != patient.pk:
                    raise _error(index, "subject", "not the patient of its QuestionnaireResponse")
                self._respond(index, "200 OK", f"Observation/{observation.pk}", patient)
                return
        definition = _instrument_of(resource.get("code") or {})
        if definition is None:
            raise _error(index, "code", "not an instrument score of this server")
        patient = self._patient(index, resource.get("subject"), "subject")
        observed_at = _moment(index, resource.get("effectiveDateTime"), "effectiveDateTime")
        items = _component_items(definition, resource.get("component") or [])
        value = (resource.get("valueQuantity") or {}).get("value")
        recorded = score_observation_record(
            patient=patient,
            instrument=definition.key,
            version=None,
            items=items or None,
            score=value,
            observed_at=observed_at,
            source=Source.STAFF,
            recorded_by=self.user,
        )
        observation = recorded.observation
        assert observation is not None
        self._respond(index, "201 Created", f"Observation/{observation.pk}", patient)


def _field(exc: ApplicationError) -> str:
    fields = exc.extra.get("fields")
    if isinstance(fields, dict) and fields:
        return str(next(iter(fields)))
    return str(exc.extra.get("field", ""))


def _language(resource: dict[str, Any]) -> str | None:
    for communication in resource.get("communication") or []:
        for coding in (communication.get("language") or {}).get("coding") or []:
            code = str(coding.get("code", ""))[:2]
            if code in Language.values:
                return code
    return None


def _moment(index: int, value: Any, path: str) -> datetime:
    moment = parse_datetime(value) if isinstance(value, str) and "T" in value else None
    if moment is None or moment.tzinfo is None:
        raise _error(index, path, "a date-time with its offset is required")
    return moment


def _flatten(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    flat = []
    for item in items:
        flat.append(item)
        flat += _flatten(item.get("item") or [])
        for answer in item.get("answer") or []:
            flat += _flatten(answer.get("item") or [])
    return flat


def _answer_value(answer: dict[str, Any]) -> Any:
    if "valueCoding" in answer:
        code = str(answer["valueCoding"].get("code", ""))
        return int(code) if code.lstrip("-").isdigit() else code
    for key in ("valueInteger", "valueDecimal", "valueBoolean", "valueString"):
        if key in answer:
            return answer[key]
    return None


def _questionnaire(canonical: str) -> InstrumentDefinition | None:
    found = resources.instrument_for_canonical(canonical)
    if found is None and "|" not in canonical:
        prefix = resources.INSTRUMENT_SYSTEM + ":"
        if canonical.startswith(prefix):
            try:
                return instrument_get(canonical.removeprefix(prefix))
            except UnknownInstrument:
                return None
    return found


def _instrument_of(code: dict[str, Any]) -> InstrumentDefinition | None:
    codings = code.get("coding") or []
    for coding in codings:
        if coding.get("system") == resources.INSTRUMENT_SYSTEM:
            try:
                return instrument_get(str(coding.get("code")))
            except UnknownInstrument:
                return None
    latest = {d.key: d for d in instruments()}  # (ascending versions: the latest wins)
    for coding in codings:
        if coding.get("system") == resources.LOINC:
            for definition in latest.values():
                if coding.get("code") in (definition.loinc.total, definition.loinc.panel):
                    return definition
    return None


def _component_items(
    definition: InstrumentDefinition, components: list[dict[str, Any]]
) -> dict[str, Any]:
    by_loinc = {item.loinc: item.key for item in definition.items if item.loinc}
    own_system = f"{resources.INSTRUMENT_SYSTEM}:{definition.key}"
    items: dict[str, Any] = {}
    for component in components:
        key = None
        for coding in (component.get("code") or {}).get("coding") or []:
            if coding.get("system") == own_system:
                key = coding.get("code")
                break
            if coding.get("system") == resources.LOINC and coding.get("code") in by_loinc:
                key = by_loinc[coding["code"]]
        if key is None:
            raise InvalidInput(
                "a component is not an item of this instrument", extra={"field": "component"}
            )
        value = component.get("valueInteger", component.get("valueQuantity", {}).get("value"))
        items[key] = value
    return items


def fhir_bundle_import(*, user: User, bundle: dict[str, Any]) -> Imported:
    """Import a transaction Bundle (already validated, `bundle_validate`) in one transaction:
    every entry written, or none (InvalidInput naming the entry)."""
    entries = bundle.get("entry") or []
    if not entries:
        raise InvalidInput("The Bundle has no entries.", extra={"field": "entry"})
    with transaction.atomic():
        return _Importer(user, entries).run()
