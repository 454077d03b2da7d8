"""A fake SMS or e-mail provider on a local port: a threaded HTTP server (pytest-httpserver)
answering each request with the next scripted answer (status, JSON or raw body, headers, a
delay), or a default one. Nothing leaves the machine; every request is kept for the test."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

# The ports these tests may listen on.
PORTS = range(18200, 18300)


def free_port(exclude: frozenset[int] = frozenset()) -> int:
    for port in PORTS:
        if port in exclude:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free port in 18200-18299")


@dataclass
class Answer:
    status: int = 200
    json: Any = None
    text: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    # Called with the request before answering (e.g. to call back before the answer arrives).
    before: Callable[[Request], None] | None = None


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, str]
    json: Any


class FakeProvider:
    def __init__(self, default: Callable[[Request], Answer]) -> None:
        self.port = free_port()
        self.server = HTTPServer(host="127.0.0.1", port=self.port, threaded=True)
        self.default = default
        self.script: list[Answer] = []
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        self.server.expect_request(re.compile(".*")).respond_with_handler(self._handle)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answer(self, *answers: Answer) -> None:
        """The next requests get these answers, in order (then the default again)."""
        with self._lock:
            self.script.extend(answers)

    def _handle(self, request: Request) -> Response:
        body = request.get_data()
        try:
            payload = json.loads(body) if request.is_json else None
        except ValueError:
            payload = None
        with self._lock:
            self.requests.append(
                Received(
                    request.method, request.path, dict(request.headers),
                    request.form.to_dict(), payload,
                )
            )  # fmt: skip
            answer = self.script.pop(0) if self.script else self.default(request)
        if answer.before is not None:
            answer.before(request)
        if answer.delay:
            time.sleep(answer.delay)
        if answer.text is not None:
            return Response(answer.text, status=answer.status, headers=answer.headers)
        return Response(
            json.dumps(answer.json if answer.json is not None else {}),
            status=answer.status,
            headers=answer.headers,
            content_type="application/json",
        )

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        self.server.clear()
        self.server.stop()


@pytest.fixture
def fake_provider_factory() -> Iterator[Callable[[Callable[[Request], Answer]], FakeProvider]]:
    started: list[FakeProvider] = []

    def make(default: Callable[[Request], Answer]) -> FakeProvider:
        provider = FakeProvider(default)
        provider.start()
        started.append(provider)
        return provider

    yield make
    for provider in started:
        provider.stop()
