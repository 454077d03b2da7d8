"""Search words (often patient names) never reach a log line: the values of `search` (API) and
`q` (caseload) are redacted like check-in link tokens, in Django's logs and gunicorn's access
log."""

from __future__ import annotations

import io
import logging
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.test import Client, RequestFactory
from gunicorn.config import Config

from carehub.core.logging import RedactLinkTokens, redact, redact_for_log
from config.gunicorn_logging import RedactingLogger

TOKEN = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-abcd"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "GET /api/v1/patients?search=Adams HTTP/1.1",
            "GET /api/v1/patients?search=[redacted] HTTP/1.1",
        ),
        (
            "GET /caseload/?status=active&q=Alice+Adams&page=2 HTTP/1.1",
            "GET /caseload/?status=active&q=[redacted]&page=2 HTTP/1.1",
        ),
        ("q=Smith%20J&cursor=abc", "q=[redacted]&cursor=abc"),
        ("https://care.example/caseload/?q=Smith", "https://care.example/caseload/?q=[redacted]"),
        (f"GET /c/{TOKEN}?q=x HTTP/1.1", "GET /c/[redacted]?q=[redacted] HTTP/1.1"),
        # Other parameters whose names merely end in q or search stay.
        ("/x?faq=1&research=2&qq=3", "/x?faq=1&research=2&qq=3"),
    ],
)
def test_search_words_are_redacted_for_logs(text: str, expected: str) -> None:
    assert redact_for_log(text) == expected


def test_message_texts_keep_their_query_strings() -> None:
    # The API's message texts only lose link tokens (carehub.api.messages).
    assert redact("See https://care.example/help?q=pain") == "See https://care.example/help?q=pain"


def test_runserver_lines_lose_the_search_words() -> None:
    line = "GET /caseload/?q=Alice+Adams HTTP/1.1"
    record = logging.LogRecord(
        "django.server", logging.INFO, __file__, 1, '"%s" %s %s', (line, 200, 512), None
    )
    RedactLinkTokens().filter(record)
    assert "Alice" not in record.getMessage()
    assert "/caseload/?q=[redacted]" in record.getMessage()


def test_an_error_record_drops_a_request_with_search_words() -> None:
    request = RequestFactory().get("/api/v1/patients", {"search": "Adams"})
    record = logging.LogRecord(
        "django.request", logging.ERROR, __file__, 1, "Internal Server Error: %s",
        (request.path,), None,
    )  # fmt: skip
    record.request = request
    RedactLinkTokens().filter(record)
    assert record.request is None
    other = RequestFactory().get("/api/v1/patients", {"page_size": "5"})
    record.request = other
    RedactLinkTokens().filter(record)
    assert record.request is other


@pytest.mark.django_db
def test_a_request_with_search_words_logs_none_of_them() -> None:
    [handler] = [
        h for h in logging.getLogger("django").handlers
        if any(isinstance(f, RedactLinkTokens) for f in h.filters)
    ]  # fmt: skip
    buffer = io.StringIO()
    previous = handler.setStream(buffer)  # type: ignore[attr-defined]
    try:
        assert Client().get("/api/v1/patients", {"search": "Adams"}).status_code == 401
        assert Client().get("/no-such-page/", {"q": "Adams"}).status_code == 404
        logging.getLogger("django.server").info('"GET /caseload/?q=Adams HTTP/1.1" 200 9')
    finally:
        handler.setStream(previous)  # type: ignore[attr-defined]
    logged = buffer.getvalue()
    assert "/caseload/?q=[redacted]" in logged
    assert "Adams" not in logged


def test_gunicorn_access_lines_lose_the_search_words() -> None:
    cfg = Config()
    cfg.set("access_log_format", cfg.access_log_format + " %(q)s %(U)s %({query_string}e)s")
    logger = RedactingLogger(cfg)
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": "/api/v1/patients?search=Adams&page_size=5",
        "PATH_INFO": "/api/v1/patients",
        "QUERY_STRING": "search=Adams&page_size=5",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "10.0.0.1",
        "HTTP_REFERER": "https://care.example/caseload/?q=Adams",
        "HTTP_USER_AGENT": "test",
    }
    request = SimpleNamespace(headers=[("REFERER", environ["HTTP_REFERER"])])
    response = SimpleNamespace(status="200 OK", headers=[], sent=42)
    atoms = logger.atoms(response, request, environ, timedelta(milliseconds=5))
    line = cfg.access_log_format % logger.atoms_wrapper_class(atoms)
    assert "Adams" not in line
    assert "GET /api/v1/patients?search=[redacted]&page_size=5 HTTP/1.1" in line
    assert "https://care.example/caseload/?q=[redacted]" in line
    assert atoms["{referer}i"] == "https://care.example/caseload/?q=[redacted]"
    assert atoms["q"] == "search=[redacted]&page_size=5"
