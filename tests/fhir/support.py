"""Helpers for the FHIR tests: every resource the server emits is validated with the R4B
models of fhir.resources (the library the server builds them with)."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from rest_framework.test import APIClient

FHIR_JSON = "application/fhir+json"


def valid(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource, after fhir.resources accepted it (a ValidationError fails the test)."""
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    if resource["resourceType"] == "Bundle":
        for entry in resource.get("entry", []):
            if "resource" in entry:
                valid(entry["resource"])
    return resource


def fhir_get(client: APIClient, url: str, status: int = 200) -> dict[str, Any]:
    response = client.get(url)
    assert response.status_code == status, response.content
    assert response["Content-Type"] == FHIR_JSON
    body = response.json()
    valid(body)
    if status >= 400:
        assert body["resourceType"] == "OperationOutcome"
    return body


def search_all(client: APIClient, url: str) -> list[dict[str, Any]]:
    """Every resource of a search, following `Bundle.link` next to the last page."""
    found: list[dict[str, Any]] = []
    next_url: str | None = url
    while next_url:
        bundle = fhir_get(client, next_url)
        assert bundle["type"] == "searchset"
        found += [entry["resource"] for entry in bundle.get("entry", [])]
        next_url = next(
            (link["url"] for link in bundle["link"] if link["relation"] == "next"), None
        )
    return found
