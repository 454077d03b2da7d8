"""Audit events as CSV (the admin's export action and `manage.py audit_export`)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.db.models import QuerySet

from carehub.audit.models import AuditEvent

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

COLUMNS = [
    "id", "at", "action", "outcome", "actor_id", "actor_username", "actor_role", "clinic",
    "patient_id", "patient_mrn", "object_type", "object_id", "request_id", "ip_address",
    "user_agent", "detail",
]  # fmt: skip
# A cell starting with one of these is a formula to a spreadsheet (user agents are the
# client's text): such cells are written with a leading apostrophe.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def export_queryset(events: QuerySet[AuditEvent]) -> QuerySet[AuditEvent]:
    return events.select_related("actor", "clinic", "patient").order_by("at", "id")


def write_csv(events: Iterable[AuditEvent], stream: SupportsWrite[str]) -> int:
    """Write a header and one line per event; returns the number of events."""
    writer = csv.writer(stream)
    writer.writerow(COLUMNS)
    count = 0
    for event in events:
        row = [
            event.pk,
            event.at.isoformat(),
            event.action,
            event.outcome,
            event.actor_id,
            event.actor.username if event.actor else "",
            event.actor_role,
            event.clinic.slug if event.clinic else "",
            event.patient_id,
            event.patient.mrn if event.patient else "",
            event.object_type,
            event.object_id,
            event.request_id,
            event.ip_address,
            event.user_agent,
            json.dumps(event.detail, sort_keys=True),
        ]
        writer.writerow([_cell(value) for value in row])
        count += 1
    return count
