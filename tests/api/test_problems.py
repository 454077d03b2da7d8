"""Errors are application/problem+json (RFC 9457) with a stable code, for every error class."""

from __future__ import annotations

import pytest
from rest_framework import exceptions
from rest_framework.test import APIRequestFactory

from carehub.api.exception_handler import problem_exception_handler
from carehub.core.exceptions import (
    ApplicationError,
    Conflict,
    CriteriaNotMet,
    InvalidInput,
    NotFound,
    NotPermitted,
)
from tests.api.conftest import assert_problem

pytestmark = pytest.mark.django_db


def handle(exc: Exception) -> dict:  # type: ignore[type-arg]
    request = APIRequestFactory().get("/api/v1/somewhere?x=1")
    response = problem_exception_handler(exc, {"request": request})
    assert response is not None
    assert response.content_type == "application/problem+json"
    assert response.data["status"] == response.status_code
    assert response.data["instance"] == "/api/v1/somewhere?x=1"
    return response.data


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (NotFound("No such patient."), 404, "not_found"),
        (NotPermitted("Not for your role."), 403, "not_permitted"),
        (Conflict("Moved on.", extra={"current": {"version": 3}}), 409, "conflict"),
        (InvalidInput("Bad event.", extra={"field": "event"}), 400, "invalid_input"),
        (CriteriaNotMet("Guard failed.", extra={"explanation": {"checks": []}}), 422,
         "criteria_not_met"),
        (ApplicationError("Something else."), 400, "application_error"),
        (exceptions.NotAuthenticated(), 401, "not_authenticated"),
        (exceptions.PermissionDenied(), 403, "not_permitted"),
        (exceptions.NotFound(), 404, "not_found"),
        (exceptions.MethodNotAllowed("PUT"), 405, "method_not_allowed"),
        (exceptions.ParseError(), 400, "parse_error"),
        (exceptions.Throttled(wait=30), 429, "throttled"),
    ],
)  # fmt: skip
def test_each_error_class_maps_to_its_status_and_code(
    exc: Exception, status: int, code: str
) -> None:
    body = handle(exc)
    assert (body["status"], body["code"]) == (status, code)
    assert body["type"] == f"urn:carehub:problem:{code}"
    assert body["title"]
    assert body["detail"]


def test_conflict_carries_the_current_state() -> None:
    assert handle(Conflict("Moved on.", extra={"current": {"version": 3}}))["current"] == {
        "version": 3
    }


def test_invalid_input_names_the_field() -> None:
    body = handle(InvalidInput("Unknown event 'x'.", extra={"field": "event"}))
    assert body["errors"] == {"event": ["Unknown event 'x'."]}
    assert "field" not in body


def test_criteria_not_met_carries_the_explanation() -> None:
    body = handle(CriteriaNotMet("No.", extra={"explanation": {"expression": "a > 1"}}))
    assert body["explanation"] == {"expression": "a > 1"}


def test_validation_errors_are_listed_per_field() -> None:
    body = handle(
        exceptions.ValidationError({"reason": ["Required."], "items": [{"n": ["Too big."]}]})
    )
    assert body["code"] == "invalid_input"
    assert body["errors"] == {"reason": ["Required."], "items.0.n": ["Too big."]}


def test_unknown_errors_are_left_to_django() -> None:
    request = APIRequestFactory().get("/api/v1/x")
    assert problem_exception_handler(ValueError("boom"), {"request": request}) is None


def test_unauthenticated_request_is_a_401_problem_with_a_challenge(client_for) -> None:  # type: ignore[no-untyped-def]
    response = client_for(None).get("/api/v1/patients")
    assert_problem(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Token"


def test_unknown_patient_is_a_404_problem(client_for, staff) -> None:  # type: ignore[no-untyped-def]
    assert_problem(
        client_for(staff["coordinator"]).get("/api/v1/patients/999999"), 404, "not_found"
    )


def test_role_outside_the_matrix_is_a_403_problem(client_for, staff, enrolment) -> None:  # type: ignore[no-untyped-def]
    response = client_for(staff["clinic_admin"]).post(
        f"/api/v1/enrolments/{enrolment.public_id}/events",
        {"event": "discharge"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="k",
    )
    assert_problem(response, 403, "not_permitted")


def test_non_json_body_is_refused(client_for, staff, enrolment) -> None:  # type: ignore[no-untyped-def]
    response = client_for(staff["coordinator"]).post(
        f"/api/v1/enrolments/{enrolment.public_id}/events",
        "event=discharge",
        content_type="application/x-www-form-urlencoded",
        HTTP_IDEMPOTENCY_KEY="k",
    )
    assert_problem(response, 415, "unsupported_media_type")
