"""`/fhir/R4/`: the FHIR R4 read and search endpoints (`application/fhir+json`).

The same doors as the REST API: knox tokens (`Authorization: Token ...`) or the staff session,
the care-access scope (a row outside it answers 404, a role without the operation 403) and the
audit trail (`fhir.read` / `fhir.search`, one row per patient touched). Errors are
OperationOutcome resources with the HTTP status of the API's problem for the same error.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from django.db.models import QuerySet
from django.http import HttpResponse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from carehub.api.parsers import JSONParser
from carehub.api.patients import AuditedApi
from carehub.api.permissions import RoleAllows
from carehub.api.requests import ApiViewMixinBase, StaffRequest
from carehub.audit.models import Action
from carehub.care_access import Operation
from carehub.core import clock
from carehub.core.exceptions import InvalidInput, NotFound
from carehub.fhir import resources
from carehub.fhir.export import export_job_create, export_job_poll, export_types
from carehub.fhir.importing import bundle_validate, fhir_bundle_import
from carehub.fhir.models import ExportJob, ExportStatus
from carehub.fhir.selectors import PATIENT_DATA_TYPES, PatientDataType
from carehub.instruments.registry import instruments
from carehub.pathways.registry import registry

FHIR_JSON = "application/fhir+json"
DEFAULT_COUNT = 50
MAX_COUNT = 200
SEARCH_PARAMETERS = frozenset({"patient", "_lastUpdated", "_count", "_cursor", "_format"})
DEFINITION_TYPES = {
    "PlanDefinition": Operation.PATHWAY_VIEW,
    "Questionnaire": Operation.INSTRUMENT_VIEW,
}


class FhirJsonRenderer(JSONRenderer):
    media_type = FHIR_JSON
    format = "fhir+json"


class FhirJsonParser(JSONParser):
    """The API's JSON parser (size and depth limits) for `application/fhir+json` bodies."""

    media_type = FHIR_JSON


class FhirNegotiation(BaseContentNegotiation):
    """Every answer is `application/fhir+json` (R4's JSON format), whatever the Accept header."""

    def select_parser(self, request: Request, parsers: Iterable[Any]) -> Any:
        parsers = list(parsers)
        content_type = request.content_type.split(";")[0].strip()
        if content_type in (FHIR_JSON, "application/json") and parsers:
            return parsers[0]
        return None

    def select_renderer(
        self, request: Request, renderers: Iterable[Any], format_suffix: Any = None
    ) -> tuple[Any, str]:
        first = next(iter(renderers))
        return first, first.media_type


_ISSUE_CODES = {
    400: "invalid", 401: "login", 403: "forbidden", 404: "not-found", 405: "not-supported",
    406: "not-supported", 409: "conflict", 410: "deleted", 413: "too-costly",
    415: "not-supported", 422: "business-rule", 429: "throttled",
}  # fmt: skip


def operation_outcome(status: int, diagnostics: str, code: str = "") -> dict[str, Any]:
    issue: dict[str, Any] = {
        "severity": "error" if status < 500 else "fatal",
        "code": _ISSUE_CODES.get(status, "exception"),
        "diagnostics": diagnostics,
    }
    if code:
        issue["details"] = {"coding": [{"system": "urn:carehub:problem", "code": code}]}
    return resources.validated({"resourceType": "OperationOutcome", "issue": [issue]})


class FhirApi(AuditedApi):
    """A FHIR endpoint: authenticated, audited, scoped like the API; answers FHIR JSON."""

    renderer_classes = [FhirJsonRenderer]
    content_negotiation_class = FhirNegotiation
    permission_classes = [IsAuthenticated, RoleAllows]
    schema = None  # not part of the REST API's OpenAPI schema

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        if response.status_code < 400:  # the first answer of a write, replayed
            response.content_type = FHIR_JSON
            return response
        problem = response.data if isinstance(response.data, dict) else {}
        detail = str(problem.get("detail") or problem.get("title") or "Error")
        for field, messages in (problem.get("errors") or {}).items():
            detail += f" {field}: {'; '.join(str(m) for m in messages)}"
        response.data = operation_outcome(
            response.status_code, detail, str(problem.get("code", ""))
        )
        response.content_type = FHIR_JSON
        return response

    def fhir(self, body: dict[str, Any], status: int = 200, **headers: str) -> Response:
        return Response(body, status=status, headers=headers or None, content_type=FHIR_JSON)


def _patient_id(value: str) -> int:
    reference = value.removeprefix("Patient/")
    if not reference.isdigit():
        raise InvalidInput(
            "patient must be a Patient id or a Patient/<id> reference.", extra={"field": "patient"}
        )
    return int(reference)


def _day_start(day: Any) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_default_timezone())


def last_updated_filter(queryset: QuerySet[Any], values: list[str]) -> QuerySet[Any]:
    """`_lastUpdated` with FHIR's prefixes (eq, ne not supported, gt, ge, lt, le) on a date or
    a date-time with its offset; a date covers the whole day (in the server's time zone)."""
    for raw in values:
        prefix, value = (
            (raw[:2], raw[2:]) if raw[:2] in {"eq", "gt", "ge", "lt", "le"} else ("eq", raw)
        )
        moment = parse_datetime(value) if "T" in value else None
        day = parse_date(value) if "T" not in value else None
        if moment is not None and timezone.is_naive(moment):
            moment = None
        if moment is None and day is None:
            raise InvalidInput(
                "_lastUpdated must be [eq|gt|ge|lt|le]YYYY-MM-DD or a date-time with offset.",
                extra={"field": "_lastUpdated"},
            )
        if moment is not None:
            start = end = moment
        else:
            assert day is not None
            start, end = _day_start(day), _day_start(day + timedelta(days=1))
        if prefix == "eq":
            queryset = (
                queryset.filter(updated_at=moment)
                if moment is not None
                else queryset.filter(updated_at__gte=start, updated_at__lt=end)
            )
        elif prefix == "gt":
            queryset = queryset.filter(**{"updated_at__gt" if moment else "updated_at__gte": end})
        elif prefix == "ge":
            queryset = queryset.filter(updated_at__gte=start)
        elif prefix == "lt":
            queryset = queryset.filter(updated_at__lt=start)
        else:  # le
            queryset = queryset.filter(**{"updated_at__lte" if moment else "updated_at__lt": end})
    return queryset


def _count(request: Request) -> int:
    raw = request.query_params.get("_count", str(DEFAULT_COUNT))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_COUNT:
        raise InvalidInput(f"_count must be 1 to {MAX_COUNT}.", extra={"field": "_count"})
    return int(raw)


def _cursor(request: Request) -> int:
    raw = request.query_params.get("_cursor", "0")
    if not raw.isdigit():
        raise InvalidInput(
            "_cursor must come from a Bundle's next link.", extra={"field": "_cursor"}
        )
    return int(raw)


def searchset(request: Request, built: list[dict[str, Any]], next_url: str | None) -> dict:
    links = [{"relation": "self", "url": request.build_absolute_uri()}]
    if next_url:
        links.append({"relation": "next", "url": next_url})
    entries = [
        {
            "fullUrl": request.build_absolute_uri(
                f"/fhir/R4/{resource['resourceType']}/{resource['id']}"
            ),
            "resource": resource,
            "search": {"mode": "match"},
        }
        for resource in built
    ]
    return {"resourceType": "Bundle", "type": "searchset", "link": links, "entry": entries}


class ResourceTypeMixin(ApiViewMixinBase):
    """The resource type in the URL decides the operation checked before the view runs."""

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        name = kwargs["resource_type"]
        self.spec: PatientDataType | None = PATIENT_DATA_TYPES.get(name)
        if self.spec is not None:
            self.operation = self.spec.operation
        else:
            self.operation = DEFINITION_TYPES.get(name, Operation.PATIENT_VIEW)
        super().initial(request, *args, **kwargs)
        if self.spec is None and name not in DEFINITION_TYPES:
            raise NotFound(f"This server has no {name[:40]} resources.")


def _definition_resources(name: str) -> list[dict[str, Any]]:
    if name == "PlanDefinition":
        return [resources.plan_definition(d) for d in registry()]
    return [resources.questionnaire(d) for d in instruments()]


class FhirSearchApi(ResourceTypeMixin, FhirApi):
    """GET /fhir/R4/<type>?patient=&_lastUpdated=&_count=: a searchset Bundle, paged by
    `Bundle.link` `next` (ordered by the row's id)."""

    audit_action = Action.FHIR_SEARCH

    def get(self, request: StaffRequest, resource_type: str) -> Response:
        unknown = set(request.query_params) - SEARCH_PARAMETERS
        if unknown:
            raise InvalidInput(
                f"Unsupported search parameter(s): {', '.join(sorted(unknown))[:100]}",
                extra={"field": sorted(unknown)[0][:40]},
            )
        if self.spec is None:
            if set(request.query_params) - {"_format"}:
                raise InvalidInput(f"{resource_type} takes no search parameters here.")
            built = _definition_resources(resource_type)
            self.audit(detail={"resource": resource_type, "count": len(built)})
            return self.fhir(searchset(request, built, None))
        spec = self.spec
        queryset = spec.queryset(request.user)
        if "patient" in request.query_params:
            field = "pk" if spec.patient_field == "pk" else "patient_id"
            queryset = queryset.filter(**{field: _patient_id(request.query_params["patient"])})
        if "_lastUpdated" in request.query_params:
            queryset = last_updated_filter(queryset, request.query_params.getlist("_lastUpdated"))
        count, cursor = _count(request), _cursor(request)
        rows = list(queryset.filter(pk__gt=cursor).order_by("pk")[: count + 1])
        next_url = None
        if len(rows) > count:
            rows = rows[:count]
            params = {k: request.query_params.getlist(k) for k in request.query_params}
            params["_cursor"] = [str(rows[-1].pk)]
            next_url = (
                request.build_absolute_uri(request.path) + "?" + urlencode(params, doseq=True)
            )
        built = spec.build(rows)
        self.audit(
            patients=spec.patient_ids(rows), detail={"resource": resource_type, "count": len(rows)}
        )
        return self.fhir(searchset(request, built, next_url))


class FhirReadApi(ResourceTypeMixin, FhirApi):
    """GET /fhir/R4/<type>/<id>: one resource (404 outside the user's scope)."""

    audit_action = Action.FHIR_READ

    def get(self, request: StaffRequest, resource_type: str, resource_id: str) -> Response:
        if self.spec is None:
            found = [r for r in _definition_resources(resource_type) if r["id"] == resource_id]
            if not found:
                raise NotFound("Not found.")
            self.audit(detail={"resource": resource_type})
            return self.fhir(found[0])
        spec = self.spec
        try:
            key: Any = uuid.UUID(resource_id) if spec.id_field == "public_id" else int(resource_id)
        except ValueError as exc:
            raise NotFound("Not found.") from exc
        row = spec.queryset(request.user).filter(**{spec.id_field: key}).first()
        if row is None:
            raise NotFound("Not found.")
        built = spec.build([row])
        if not built:  # a check-in of an instrument this server no longer has
            raise NotFound("Not found.")
        self.audit_patient = spec.patient_ids([row])[0]  # type: ignore[assignment]
        self.audit_obj = row
        self.audit(detail={"resource": resource_type})
        return self.fhir(built[0])


class FhirMetadataApi(APIView):
    """GET /fhir/R4/metadata: the CapabilityStatement (no patient data, no login needed)."""

    renderer_classes = [FhirJsonRenderer]
    content_negotiation_class = FhirNegotiation
    permission_classes = [AllowAny]
    authentication_classes: list[Any] = []
    schema = None

    def get(self, request: Request) -> Response:
        return Response(capability_statement(request), content_type=FHIR_JSON)


def capability_statement(request: Request) -> dict[str, Any]:
    search_params = [
        {"name": "patient", "type": "reference"},
        {"name": "_lastUpdated", "type": "date"},
    ]
    types = []
    for name in PATIENT_DATA_TYPES:
        types.append(
            {
                "type": name,
                "interaction": [{"code": "read"}, {"code": "search-type"}],
                "searchParam": search_params if name != "Patient" else search_params[1:],
            }
        )
    for name in DEFINITION_TYPES:
        types.append({"type": name, "interaction": [{"code": "read"}, {"code": "search-type"}]})
    types.append(
        {
            "type": "Group",
            "operation": [
                {
                    "name": "export",
                    "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export",
                }
            ],
        }
    )
    statement = {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": clock.now().date().isoformat(),
        "kind": "instance",
        "software": {"name": "carehub"},
        "implementation": {
            "description": "carehub FHIR R4 endpoint",
            "url": request.build_absolute_uri("/fhir/R4/"),
        },
        "fhirVersion": resources.FHIR_VERSION,
        "format": ["json"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "description": "Authorization: Token <API token> (POST /api/v1/auth/token)"
                },
                "resource": types,
                "interaction": [{"code": "transaction"}],
            }
        ],
    }
    return resources.validated(statement)


class FhirTransactionApi(FhirApi):
    """POST /fhir/R4/ with a transaction Bundle (carehub.fhir.importing): a
    transaction-response Bundle, or an OperationOutcome with nothing written. Takes an
    `Idempotency-Key` like every write of the API: a retry with the same key and Bundle gets
    the first answer again, the same key with another Bundle is refused."""

    operation = Operation.FHIR_IMPORT
    audit_action = Action.FHIR_IMPORT
    parser_classes = [FhirJsonParser]

    def idempotency_body(self, request: Request) -> Any:
        return request.data

    def post(self, request: StaffRequest) -> Response:
        bundle = bundle_validate(request.data)
        imported = fhir_bundle_import(user=request.user, bundle=bundle)
        self.audit(
            patients=imported.patient_ids,
            detail={"entries": len(imported.responses)},
        )
        response_bundle = {
            "resourceType": "Bundle",
            "type": "transaction-response",
            "entry": [{"response": response} for response in imported.responses],
        }
        return self.fhir(resources.validated(response_bundle))


def _since(raw: str | None) -> datetime | None:
    if not raw:
        return None
    moment = parse_datetime(raw)
    if moment is None or timezone.is_naive(moment):
        raise InvalidInput("_since must be an instant with its offset.", extra={"field": "_since"})
    return moment


class FhirExportApi(FhirApi):
    """GET /fhir/R4/Group/<clinic slug or id>/$export: kick-off (202, `Content-Location` the
    status URL). The group is the user's own clinic; any other answers 404."""

    operation = Operation.FHIR_EXPORT
    audit_action = Action.FHIR_EXPORT
    EXPORT_PARAMETERS = frozenset({"_type", "_since", "_outputFormat"})

    def get(self, request: StaffRequest, group_id: str) -> Response:
        clinic = request.user.clinic
        if group_id not in (clinic.slug, str(clinic.pk)):
            raise NotFound("Not found.")
        unknown = set(request.query_params) - self.EXPORT_PARAMETERS
        if unknown:
            raise InvalidInput(f"Unsupported parameter(s): {', '.join(sorted(unknown))[:100]}")
        output = request.query_params.get("_outputFormat")
        if output and output not in ("application/fhir+ndjson", "application/ndjson", "ndjson"):
            raise InvalidInput("_outputFormat must be ndjson.", extra={"field": "_outputFormat"})
        job = export_job_create(
            user=request.user,
            types=export_types(request.query_params.get("_type")),
            since=_since(request.query_params.get("_since")),
            request_url=request.build_absolute_uri(),
        )
        self.audit_obj = job
        self.audit(detail={"types": job.types, "job": str(job.public_id)})
        status_url = request.build_absolute_uri(f"/fhir/R4/$export-status/{job.public_id}")
        return self.fhir(
            operation_outcome_information(f"Export accepted: poll {status_url}"),
            status=202,
            **{"Content-Location": status_url},
        )


def operation_outcome_information(text: str) -> dict[str, Any]:
    return resources.validated(
        {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "information", "code": "informational", "diagnostics": text}],
        }
    )


def _job_for(request: StaffRequest, job_id: str) -> ExportJob:
    """The user's own export (a job of someone else, or of another clinic: 404)."""
    try:
        key = uuid.UUID(job_id)
    except ValueError as exc:
        raise NotFound("Not found.") from exc
    job = ExportJob.objects.filter(public_id=key, requested_by=request.user).first()
    if job is None or job.clinic_id != request.user.clinic_id:
        raise NotFound("Not found.")
    return job


class FhirExportStatusApi(FhirApi):
    """GET /fhir/R4/$export-status/<job>: 202 while running (`X-Progress`, `Retry-After`),
    200 with the manifest when done, 500 with an OperationOutcome when the export failed."""

    operation = Operation.FHIR_EXPORT
    audit_action = Action.FHIR_EXPORT

    def get(self, request: StaffRequest, job_id: str) -> Response:
        job = _job_for(request, job_id)
        self.audit_obj = job
        if job.status in (ExportStatus.ACCEPTED, ExportStatus.RUNNING):
            export_job_poll(job=job)
            self.audit(detail={"job": str(job.public_id), "status": job.status})
            return Response(status=202, headers={"X-Progress": job.status, "Retry-After": "2"})
        if job.status == ExportStatus.FAILED:
            self.audit(detail={"job": str(job.public_id), "status": job.status})
            return self.fhir(
                operation_outcome(500, f"The export failed ({job.error}).", "export_failed"),
                status=500,
            )
        files = list(job.files.order_by("pk").values_list("resource_type", "count"))
        manifest = {
            "transactionTime": (job.started_at or job.created_at).isoformat(),
            "request": job.request_url,
            "requiresAccessToken": True,
            "output": [
                {
                    "type": name,
                    "url": request.build_absolute_uri(
                        f"/fhir/R4/$export-file/{job.public_id}/{name}.ndjson"
                    ),
                    "count": count,
                }
                for name, count in files
            ],
            "error": [],
        }
        self.audit(detail={"job": str(job.public_id), "status": job.status})
        return Response(manifest, content_type="application/json")


class FhirExportFileApi(FhirApi):
    """GET /fhir/R4/$export-file/<job>/<type>.ndjson: one file of a completed export
    (`application/fhir+ndjson`), audited with every patient the export holds."""

    operation = Operation.FHIR_EXPORT
    audit_action = Action.FHIR_EXPORT

    def get(self, request: StaffRequest, job_id: str, resource_type: str) -> HttpResponse:
        job = _job_for(request, job_id)
        file = job.files.filter(resource_type=resource_type).first()
        if file is None:
            raise NotFound("Not found.")
        self.audit_obj = job
        self.audit(
            patients=job.patient_ids,
            detail={"job": str(job.public_id), "resource": resource_type},
        )
        return HttpResponse(file.content, content_type="application/fhir+ndjson")
