"""Request limits and problem+json everywhere under /api/: JSON depth and body size, unknown
paths and methods, unexpected errors, pagination parameters, and error bodies that never echo
more than an excerpt of the input."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from urllib.parse import unquote

import pytest
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.test import APIClient, APIRequestFactory

from carehub.accounts.models import User
from carehub.api.exception_handler import problem_exception_handler
from carehub.checkins.models import Checkin, CheckinStatus
from carehub.core.exceptions import InvalidInput
from carehub.observations.models import Observation
from carehub.pathways.models import Enrolment
from carehub.patients.models import Patient
from tests.api.conftest import PASSWORD, assert_problem, make_eligible, register

pytestmark = pytest.mark.django_db

TOKEN_URL = "/api/v1/auth/token"
EXCERPT = 200  # the longest message or instance a problem carries, ellipsis included
MB = 1_000_000


def nested(depth: int) -> str:
    """A JSON value `depth` arrays deep."""
    return "[" * depth + "]" * depth


def post_raw(client: APIClient, url: str, body: str | bytes, **extra: str):  # type: ignore[no-untyped-def]
    """A write as a client sends it, with its Idempotency-Key (so the limits are what refuses
    it)."""
    extra.setdefault("HTTP_IDEMPOTENCY_KEY", "limits")
    return client.post(url, body, content_type="application/json", **extra)


# --- JSON depth ---------------------------------------------------------------------------------


def test_deeply_nested_json_to_the_token_endpoint_is_a_400_not_a_server_error(
    staff: dict[str, User],
) -> None:
    body = '{"username": ' + nested(1000) + ', "password": "x"}'
    response = post_raw(APIClient(), TOKEN_URL, body)
    problem = assert_problem(response, 400, "too_deep")
    assert "32" in problem["detail"]


def test_deeply_nested_json_to_an_event_is_refused_and_changes_nothing(
    client_for, staff: dict[str, User], enrolment: Enrolment
) -> None:  # type: ignore[no-untyped-def]
    version = enrolment.version
    body = '{"event": "intake_complete", "x": ' + nested(1000) + "}"
    response = post_raw(
        client_for(staff["coordinator"]),
        f"/api/v1/enrolments/{enrolment.public_id}/events",
        body,
        HTTP_IDEMPOTENCY_KEY="deep",
    )
    assert_problem(response, 400, "too_deep")
    enrolment.refresh_from_db()
    assert enrolment.version == version


def test_deeply_nested_json_as_checkin_answers_is_refused_and_changes_nothing(
    client_for, staff: dict[str, User], checkin: Checkin
) -> None:  # type: ignore[no-untyped-def]
    body = '{"answers": {"pain": ' + nested(1000) + "}}"
    response = post_raw(
        client_for(staff["coordinator"]), f"/api/v1/checkins/{checkin.pk}/answers", body
    )
    assert_problem(response, 400, "too_deep")
    checkin.refresh_from_db()
    assert checkin.status == CheckinStatus.OPEN


def test_the_depth_limit_counts_objects_and_arrays(staff: dict[str, User]) -> None:
    # The outer object is level 1: 31 arrays inside it make 32 levels, the limit.
    at_limit = '{"username": ' + nested(31) + ', "password": "x"}'
    body = assert_problem(post_raw(APIClient(), TOKEN_URL, at_limit), 400, "invalid_input")
    assert "username" in body["errors"]
    over = '{"username": ' + nested(32) + ', "password": "x"}'
    assert_problem(post_raw(APIClient(), TOKEN_URL, over), 400, "too_deep")
    mixed = '{"a": ' + '{"b": [' * 20 + "1" + "]}" * 20 + "}"
    assert_problem(post_raw(APIClient(), TOKEN_URL, mixed), 400, "too_deep")


def test_the_depth_limit_is_a_setting(settings, staff: dict[str, User]) -> None:  # type: ignore[no-untyped-def]
    settings.API_JSON_MAX_DEPTH = 3
    body = '{"username": [[[1]]], "password": "x"}'
    assert_problem(post_raw(APIClient(), TOKEN_URL, body), 400, "too_deep")
    body = '{"username": [[1]], "password": "x"}'
    assert_problem(post_raw(APIClient(), TOKEN_URL, body), 400, "invalid_input")


def test_brackets_inside_strings_do_not_count(staff: dict[str, User]) -> None:
    tricky = 'a \\" [{' + "[" * 500 + '\\\\"'  # escaped quotes and backslashes, then brackets
    body = json.dumps({"username": tricky, "password": "[" * 200})
    response = post_raw(APIClient(), TOKEN_URL, body)
    problem = assert_problem(response, 400, "invalid_input")
    assert list(problem["errors"]) == ["username"]  # too long, read as the string it is


@pytest.mark.parametrize(
    "body",
    [
        '{"username": "coordinator", ',
        "]]]]]]",
        '{"username": "x"]',
        '{"username": "unterminated',
        '{"username": 1' + "0" * 5000 + ', "password": "x"}',  # beyond int digit limits
        '{"username": NaN, "password": "x"}',
        b'{"username": "\xff\xfe", "password": "x"}',
    ],
)
def test_invalid_json_stays_a_parse_error(staff: dict[str, User], body: str | bytes) -> None:
    assert_problem(post_raw(APIClient(), TOKEN_URL, body), 400, "parse_error")


# --- body size ----------------------------------------------------------------------------------


def test_a_body_over_the_limit_is_a_400_too_large(staff: dict[str, User]) -> None:
    padding = "x" * (1024 * 1024)  # with the rest of the body, just over 1 MiB
    body = json.dumps({"username": "coordinator", "password": PASSWORD, "pad": padding})
    problem = assert_problem(post_raw(APIClient(), TOKEN_URL, body), 400, "too_large")
    assert "1048576" in problem["detail"]


def test_the_body_limit_is_a_setting_and_exact(settings, staff: dict[str, User]) -> None:  # type: ignore[no-untyped-def]
    settings.API_MAX_BODY_BYTES = 200
    body = json.dumps({"username": "coordinator", "password": PASSWORD})
    body = body[:-1] + " " * (200 - len(body)) + "}"
    assert len(body) == 200
    assert post_raw(APIClient(), TOKEN_URL, body).status_code == 201
    assert_problem(post_raw(APIClient(), TOKEN_URL, body + " "), 400, "too_large")


def test_the_size_is_checked_before_the_body_is_read(staff: dict[str, User]) -> None:
    # The request claims 2 MiB but carries a few bytes: reading it would fail in the test
    # client's stream, so a 400 shows that the declared length was refused unread.
    response = post_raw(
        APIClient(), TOKEN_URL, '{"username": "x"}', CONTENT_LENGTH=str(2 * 1024 * 1024)
    )
    assert_problem(response, 400, "too_large")


# --- the login lockout --------------------------------------------------------------------------


def test_a_locked_out_pair_gets_problems_never_a_server_error(staff: dict[str, User]) -> None:
    client = APIClient()

    def login(body: str, query: str = ""):  # type: ignore[no-untyped-def]
        return post_raw(client, TOKEN_URL + query, body, REMOTE_ADDR="10.9.9.9")

    wrong = json.dumps({"username": "coordinator", "password": "wrong"})
    for _ in range(5):
        login(wrong)
    assert_problem(login(wrong), 429, "locked_out")
    # Still parsed by the same parser: too deep is a 400, not a crash.
    deep = '{"username": "coordinator", "password": ' + nested(1000) + "}"
    assert_problem(login(deep), 400, "too_deep")
    # The lockout answer carries only an excerpt of a huge query string.
    locked = login(wrong, "?" + "q" * MB)
    assert locked.status_code == 429
    body = locked.json()
    assert body["code"] == "locked_out"
    assert len(body["instance"]) <= EXCERPT
    assert body["instance"].startswith(TOKEN_URL + "?qqq")
    assert body["instance"].endswith("…")
    assert len(locked.content) < 2000


# --- unknown paths, methods and unexpected errors -----------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/nothing",
        "/api/v1/enrolments/not-a-uuid",
        "/api/v1/patients/abc",
        "/api/nothing",
        "/api/v1/",
    ],
)
def test_an_unknown_api_path_is_a_404_problem(client_for, staff, path: str) -> None:  # type: ignore[no-untyped-def]
    for client in (APIClient(), client_for(staff["coordinator"])):
        response = client.get(path + "?x=1")
        body = assert_problem(response, 404, "not_found")
        assert body["instance"] == path + "?x=1"


def test_an_unknown_api_path_with_a_huge_name_answers_an_excerpt() -> None:
    response = APIClient().get("/api/v1/" + "n" * 100_000)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert len(response.json()["instance"]) <= EXCERPT
    assert len(response.content) < 2000


def test_a_method_not_allowed_is_a_405_problem(client_for, staff, patient) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["coordinator"])
    response = client.delete("/api/v1/patients")
    assert_problem(response, 405, "method_not_allowed")
    assert response["Allow"] == "GET, POST, HEAD, OPTIONS"
    assert_problem(client.put(f"/api/v1/patients/{patient.pk}"), 405, "method_not_allowed")


def test_an_unknown_page_outside_the_api_is_the_html_not_found_page(
    client_for, staff: dict[str, User]
) -> None:  # type: ignore[no-untyped-def]
    for path in ("/nothing", "/apis/v1/nothing", "/caseload/nothing"):
        response = APIClient().get(path)
        assert response.status_code == 404
        assert response["Content-Type"].startswith("text/html")
        html = response.content.decode()
        assert "<h1>Not found</h1>" in html
        assert "There is nothing here." in html
    client = APIClient()
    client.force_login(staff["coordinator"])
    page = client.get("/nothing")
    assert page.status_code == 404
    assert "Caseload" in page.content.decode()  # the site's navigation, as on other pages


@pytest.fixture
def failing_urls(settings) -> Iterator[list[logging.LogRecord]]:  # type: ignore[no-untyped-def]
    """Routes that fail unexpectedly, and what Django logs about requests."""
    settings.ROOT_URLCONF = "tests.api.failing_urls"
    records: list[logging.LogRecord] = []
    handler = logging.Handler(level=logging.ERROR)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("django.request")
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


def test_an_unexpected_api_error_is_a_generic_500_problem_and_logged(
    failing_urls: list[logging.LogRecord],
) -> None:
    response = APIClient(raise_request_exception=False).get("/api/v1/test-failure?x=1")
    body = assert_problem(response, 500, "server_error")
    assert body["instance"] == "/api/v1/test-failure?x=1"
    assert "hunter2" not in response.content.decode()
    assert "Traceback" not in response.content.decode()
    assert response["X-Request-ID"]
    [record] = [r for r in failing_urls if r.exc_info]
    assert record.exc_info is not None
    assert record.exc_info[0].__name__ == "UnexpectedError"
    assert record.levelno == logging.ERROR


def test_an_unexpected_error_outside_the_api_is_still_an_html_500(
    failing_urls: list[logging.LogRecord],
) -> None:
    response = APIClient(raise_request_exception=False).get("/test-failure")
    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html")
    assert "hunter2" not in response.content.decode()
    assert any(r.exc_info for r in failing_urls)


def test_errors_django_answers_itself_are_problems_under_the_api(
    failing_urls: list[logging.LogRecord],
) -> None:
    client = APIClient(raise_request_exception=False)
    # A Host header that is not allowed (Django's 400) ...
    assert_problem(client.get("/api/v1/patients", HTTP_HOST="evil.example"), 400, "bad_request")
    outside = client.get("/login/", HTTP_HOST="evil.example")
    assert outside.status_code == 400
    assert outside["Content-Type"].startswith("text/html")
    # ... and PermissionDenied from a view that is not DRF's (Django's 403).
    forbidden = client.get("/api/v1/test-forbidden")
    assert_problem(forbidden, 403, "not_permitted")
    assert "hunter2" not in forbidden.content.decode()
    outside = client.get("/test-forbidden")
    assert outside.status_code == 403
    assert outside["Content-Type"].startswith("text/html")


# --- pagination parameters ----------------------------------------------------------------------


@pytest.fixture
def patients(clinic, patient: Patient) -> list[Patient]:  # type: ignore[no-untyped-def]
    return [patient, register(clinic, "T-2", "Bob", "Brown"), register(clinic, "T-3", "Cy", "Cole")]


@pytest.mark.parametrize("size", ["0", "abc", "null", "-1", "101", "", "1.5", "1e2", " 5", "+5"])
def test_an_invalid_page_size_is_a_400_naming_it(client_for, staff, patients, size: str) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["coordinator"])
    body = assert_problem(client.get("/api/v1/patients", {"page_size": size}), 400, "invalid_input")
    assert list(body["errors"]) == ["page_size"]
    assert "1 to 100" in body["errors"]["page_size"][0]


def test_page_sizes_from_1_to_100_are_accepted(client_for, staff, patients) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["coordinator"])
    one = client.get("/api/v1/patients", {"page_size": "1"})
    assert one.status_code == 200
    assert len(one.json()["results"]) == 1
    assert len(client.get("/api/v1/patients", {"page_size": "100"}).json()["results"]) == 3
    assert client.get("/api/v1/flags", {"page_size": "100"}).status_code == 200
    assert_problem(client.get("/api/v1/flags", {"page_size": "0"}), 400, "invalid_input")


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.fixture
def observations(patient: Patient, procedure: Observation) -> str:
    """Several observations of the patient; their list URL."""
    make_eligible(patient)
    assert Observation.objects.filter(patient=patient).count() >= 3
    return f"/api/v1/patients/{patient.pk}/observations"


def test_following_next_and_previous_pages_works(
    client_for, staff, patients, observations: str
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["coordinator"])
    first = client.get("/api/v1/patients", {"page_size": "2"}).json()
    second = client.get(first["next"]).json()
    assert [p["mrn"] for p in first["results"] + second["results"]] == ["T-1", "T-2", "T-3"]
    back = client.get(second["previous"]).json()
    assert back["results"] == first["results"]
    seen = []
    url: str | None = f"{observations}?page_size=1"
    while url:
        page = client.get(url)
        assert page.status_code == 200, page.content
        seen += [row["id"] for row in page.json()["results"]]
        url = page.json()["next"]
    assert sorted(seen) == sorted(
        Observation.objects.filter(patient=patients[0]).values_list("pk", flat=True)
    )


@pytest.mark.parametrize(
    "cursor",
    [
        "forged",
        b64("abc"),  # base64, but not a cursor
        b64("o=0"),
        b64("p=not-a-date"),  # a position that is not one of the ordering's values
        b64("p=2026-01-05T09:30:00.123456+00:00"),  # a plausible position we never issued
        b64("o=1&r=1&p=2020-01-01T00:00:00%2B00:00"),
        b64("r=x"),
        "",
        "=" * 10,
        "é",
    ],
)
def test_a_cursor_that_is_not_ours_is_a_400_naming_it(
    client_for, staff, observations: str, cursor: str
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["coordinator"])
    body = assert_problem(client.get(observations, {"cursor": cursor}), 400, "invalid_input")
    assert list(body["errors"]) == ["cursor"]


def test_a_tampered_or_borrowed_cursor_is_refused(
    client_for, staff, patients, observations: str
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["coordinator"])
    cursor = client.get(observations, {"page_size": "1"}).json()["next"].split("cursor=")[1]
    cursor = unquote(cursor.split("&")[0])
    assert client.get(observations, {"cursor": cursor}).status_code == 200
    tampered = cursor[:-2] + ("AA" if cursor[-2:] != "AA" else "BB")
    assert_problem(client.get(observations, {"cursor": tampered}), 400, "invalid_input")
    # A cursor of another list (ordered otherwise) is not one of this list's.
    assert_problem(client.get("/api/v1/patients", {"cursor": cursor}), 400, "invalid_input")


def test_the_schema_documents_the_page_size_range() -> None:
    client = APIClient()
    schema = client.get("/api/schema/?format=json").json()
    parameters = schema["paths"]["/api/v1/patients"]["get"]["parameters"]
    [page_size] = [p for p in parameters if p["name"] == "page_size"]
    assert page_size["schema"]["minimum"] == 1
    assert page_size["schema"]["maximum"] == 100


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


def test_with_debug_on_the_api_still_answers_problems_never_debug_pages(
    failing_urls: list[logging.LogRecord], settings
) -> None:  # type: ignore[no-untyped-def]
    settings.DEBUG = True  # as in `make demo`
    client = APIClient(raise_request_exception=False)
    body = assert_problem(client.get("/api/v1/enrolments/not-a-uuid"), 404, "not_found")
    assert body["instance"] == "/api/v1/enrolments/not-a-uuid"
    failed = client.get("/api/v1/test-failure")
    assert_problem(failed, 500, "server_error")
    assert "hunter2" not in failed.content.decode()
    assert "Traceback" not in failed.content.decode()
    # Outside the API the debug pages stay (they are the developer's).
    assert client.get("/test-failure")["Content-Type"].startswith("text/html")
