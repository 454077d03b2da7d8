"""Writing the audit trail: `audit_record` is the only writer.

One row per patient touched (a list writes one row per patient listed, in one INSERT); a
request that touched no patient (an empty list, a refused lookup) writes one row without a
patient. Actor, role, clinic, request id, IP address (REMOTE_ADDR: the address of the peer,
never a client-supplied forwarding header) and user agent come from the request.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable
from typing import Any

from django.db import connection, models

from carehub.audit.models import Action, AuditEvent, Outcome
from carehub.core.clock import wall_now
from carehub.core.sql import column, concrete_field
from carehub.patients.models import Patient

USER_AGENT_MAX = 256
DETAIL_MAX_CHARS = 2000


def _ip(meta: dict[str, Any]) -> str | None:
    try:
        return str(ipaddress.ip_address(str(meta.get("REMOTE_ADDR", "")).strip()))
    except ValueError:
        return None


def _object_ref(obj: models.Model | None) -> tuple[str, str]:
    if obj is None:
        return "", ""
    identifier = getattr(obj, "public_id", None) or obj.pk
    return obj._meta.model_name or "", str(identifier)[:64]


def _small(detail: dict[str, Any] | None) -> dict[str, Any]:
    if not detail:
        return {}
    if len(json.dumps(detail, default=str)) > DETAIL_MAX_CHARS:
        return {"truncated": True}
    return json.loads(json.dumps(detail, default=str))


def audit_record(
    *,
    request: Any,
    action: str,
    patient: Patient | int | None = None,
    patients: Iterable[Patient | int] = (),
    obj: models.Model | None = None,
    outcome: str = Outcome.OK,
    detail: dict[str, Any] | None = None,
) -> int:
    """Record that the request's user did `action` on these patients (Patient rows, or ids of
    patients of the user's own clinic). `request` is a Django HttpRequest or a DRF Request.
    Returns how many rows were written."""
    if action not in Action.values:
        raise ValueError(f"'{action}' is not an audited action (carehub.audit.models.Action)")
    http = getattr(request, "_request", request)
    user = getattr(request, "user", None)
    actor = user if user is not None and user.is_authenticated else None
    actor_clinic_id = getattr(actor, "clinic_id", None)
    role = getattr(actor, "role", "") or ("superuser" if getattr(actor, "is_superuser", 0) else "")
    object_type, object_id = _object_ref(obj)
    common = {
        "at": wall_now(),
        "actor": actor,
        "actor_role": role,
        "action": action,
        "outcome": outcome,
        "object_type": object_type,
        "object_id": object_id,
        "request_id": str(getattr(http, "request_id", ""))[:64],
        "ip_address": _ip(http.META),
        "user_agent": str(http.META.get("HTTP_USER_AGENT", ""))[:USER_AGENT_MAX],
        "detail": _small(detail),
    }
    targets: dict[int, int | None] = {}  # patient id → clinic id, in order, once each
    for item in [patient, *patients]:
        if isinstance(item, Patient):
            targets.setdefault(item.pk, item.clinic_id)
        elif item is not None:
            targets.setdefault(int(item), actor_clinic_id)
    if not targets:
        clinic_id = getattr(obj, "clinic_id", None) or actor_clinic_id
        AuditEvent.objects.create(clinic_id=clinic_id, **common)
        return 1
    return _insert_per_patient(common, targets)


_COMMON_FIELDS = (
    "at",
    "actor",
    "actor_role",
    "action",
    "outcome",
    "object_type",
    "object_id",
    "request_id",
    "ip_address",
    "user_agent",
    "detail",
)


def _raw(value: object) -> object:
    """A related row as its key (what a foreign key column stores)."""
    return value.pk if isinstance(value, models.Model) else value


def _insert_per_patient(common: dict[str, Any], targets: dict[int, int | None]) -> int:
    """One row per patient in one `INSERT … SELECT … FROM unnest(patient ids, clinic ids)`: the
    shared values are sent once (13 parameters however many patients), without building a
    model instance per row. Insert only: the append-only trigger is not involved."""
    opts = AuditEvent._meta
    qn = connection.ops.quote_name
    fields = [concrete_field(AuditEvent, name) for name in _COMMON_FIELDS]
    patient, clinic = concrete_field(AuditEvent, "patient"), concrete_field(AuditEvent, "clinic")
    columns = ", ".join(column(field) for field in [*fields, patient, clinic])
    values = ", ".join(f"%s::{field.cast_db_type(connection)}" for field in fields)
    params: list[Any] = [
        field.get_db_prep_save(_raw(common[field.name]), connection) for field in fields
    ]
    params += [list(targets), list(targets.values())]
    # Only quoted names and types from the model's metadata: the values are parameters.
    sql = (
        f"INSERT INTO {qn(opts.db_table)} ({columns}) "  # noqa: S608
        f"SELECT {values}, t.patient_id, t.clinic_id "
        f"FROM unnest(%s::{patient.cast_db_type(connection)}[], "
        f"%s::{clinic.cast_db_type(connection)}[]) AS t(patient_id, clinic_id)"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.rowcount)
