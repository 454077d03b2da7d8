"""Every API operation in the OpenAPI schema is covered by the scoping tests: an operation on
an object is tried on another clinic's object (and a therapist's non-care-team patient) in
`test_scoping.detail_requests`; a list is checked for foreign rows. A new operation without
such a test fails here."""

from __future__ import annotations

import re

from drf_spectacular.generators import SchemaGenerator

from tests.api.test_scoping import CLINIC_OPERATIONS, LIST_OPERATIONS, OBJECT_OPERATIONS

# Operations that touch no patient data.
NO_PATIENT_DATA = {
    ("post", "/api/v1/auth/token"),
    ("delete", "/api/v1/auth/token"),
    # Published pathway definitions: the same for every clinic, about no patient.
    ("get", "/api/v1/pathways"),
    ("get", "/api/v1/pathways/{id}/{id}"),
    ("get", "/api/v1/pathways/{id}/{id}/diagram"),
    # The instrument library: published questionnaires, about no patient.
    ("get", "/api/v1/instruments"),
    ("get", "/api/v1/instruments/{id}/{id}"),
}


def schema_operations() -> set[tuple[str, str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    operations = set()
    for path, item in schema["paths"].items():
        for method in item:
            if method in ("get", "post", "put", "patch", "delete"):
                operations.add((method, re.sub(r"\{[^}]+\}", "{id}", path)))
    return operations


def test_every_operation_has_a_cross_clinic_and_cross_patient_test() -> None:
    operations = schema_operations() - NO_PATIENT_DATA
    covered = OBJECT_OPERATIONS | LIST_OPERATIONS | CLINIC_OPERATIONS
    uncovered = operations - covered
    assert uncovered == set(), f"operations without a scoping test: {sorted(uncovered)}"
    stale = covered - operations
    assert stale == set(), f"scoping tests name operations the API no longer has: {sorted(stale)}"
