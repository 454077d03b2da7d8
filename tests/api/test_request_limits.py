"""Request limits and problem+json everywhere under /api/: JSON depth and body size, unknown
paths and methods, unexpected errors, pagination parameters, and error bodies that never echo
more than an excerpt of the input."""

from __future__ import annotations

import pytest
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.test import APIClient, APIRequestFactory

from carehub.api.exception_handler import problem_exception_handler
from carehub.checkins.models import Checkin, CheckinStatus
from carehub.core.exceptions import InvalidInput
from carehub.observations.models import Observation
from carehub.patients.models import Patient

pytestmark = pytest.mark.django_db

TOKEN_URL = "/api/v1/auth/token"
EXCERPT = 200  # the longest message or instance a problem carries, ellipsis included
MB = 1_000_000


def nested(depth: int) -> str:
    """A JSON value `depth` arrays deep."""
    return "[" * depth + "]" * depth


def post_raw(client: APIClient, url: str, body: str | bytes, **extra: str):  # type: ignore[no-untyped-def]
    return client.post(url, body, content_type="application/json", **extra)


# --- error bodies never echo more than an excerpt -----------------------------------------------


def assert_short(response) -> dict:  # type: ignore[no-untyped-def,type-arg]
    """Every message and the instance of the problem are excerpts; the body stays small."""
    body = response.json()
    assert len(body["detail"]) <= EXCERPT
    assert len(body["instance"]) <= EXCERPT
    for field, messages in body.get("errors", {}).items():
        assert len(field) <= EXCERPT
        assert all(len(message) <= EXCERPT for message in messages)
    assert len(response.content) < 4000
    return body


def test_a_huge_choice_is_not_echoed_back(client_for, staff, patient: Patient) -> None:  # type: ignore[no-untyped-def]
    url = f"/api/v1/patients/{patient.pk}/checkins"
    response = client_for(staff["coordinator"]).get(url, {"status": "x" * MB})
    assert response.status_code == 400
    body = assert_short(response)
    [message] = body["errors"]["status"]
    assert message.startswith('"xxxx')
    assert message.endswith("…")
    assert body["instance"].startswith(f"{url}?status=xxx")
    assert body["instance"].endswith("…")


def test_a_huge_answer_key_is_not_echoed_back(client_for, staff, checkin: Checkin) -> None:  # type: ignore[no-untyped-def]
    response = client_for(staff["coordinator"]).post(
        f"/api/v1/checkins/{checkin.pk}/answers", {"answers": {"k" * MB: 1}}, format="json"
    )
    assert response.status_code == 400, response.content[:500]
    assert_short(response)
    checkin.refresh_from_db()
    assert checkin.status == CheckinStatus.OPEN


def test_a_huge_item_name_in_a_score_is_not_echoed_back(
    client_for, staff, patient: Patient
) -> None:  # type: ignore[no-untyped-def]
    response = client_for(staff["physician"]).post(
        f"/api/v1/patients/{patient.pk}/scores",
        {
            "instrument": "odi",
            "score": 20,
            "observed_at": timezone.now().isoformat(),
            "items": {"i" * MB: "not a number"},
        },
        format="json",
        HTTP_IDEMPOTENCY_KEY="huge",
    )
    body = assert_short(response)
    assert body["code"] == "invalid_input"
    [field] = body["errors"]
    assert field.startswith("items.iii")
    assert not Observation.objects.filter(patient=patient, kind="score").exists()


def test_the_handler_cuts_every_message_field_name_and_the_instance() -> None:
    request = APIRequestFactory().get("/api/v1/x", {"q": "y" * 10_000})
    long = "z" * 10_000
    cut = "z" * (EXCERPT - 1) + "…"
    cases: list[tuple[Exception, dict[str, list[str]] | None]] = [
        (
            exceptions.ValidationError({"field": [long], long: ["Required."]}),
            {"field": [cut], cut: ["Required."]},
        ),
        (InvalidInput(long, extra={"field": "f"}), {"f": [cut]}),
        (InvalidInput("x", extra={"fields": {"a": [long], "b": long}}), {"a": [cut], "b": [cut]}),
        (exceptions.ParseError(long), None),
    ]
    for exc, errors in cases:
        response = problem_exception_handler(exc, {"request": request})
        assert response is not None
        data = response.data
        assert data["instance"] == ("/api/v1/x?q=" + "y" * 10_000)[: EXCERPT - 1] + "…"
        assert len(data["detail"]) <= EXCERPT
        assert data.get("errors") == errors
    short = problem_exception_handler(
        exceptions.ValidationError({"field": ["Required."]}), {"request": request}
    )
    assert short is not None
    assert short.data["errors"] == {"field": ["Required."]}
