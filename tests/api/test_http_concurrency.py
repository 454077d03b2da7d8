"""Two clients send conflicting events to one pathway at the same moment, over real HTTP
(a live threaded server): exactly one succeeds, the other gets 409 with the current state;
never a double transition, never a server error. Repeated."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from typing import Any

import pytest

from carehub.accounts.models import User
from carehub.clinics.models import Clinic
from carehub.pathways.models import PathwayStep
from carehub.pathways.services import enrolment_start
from tests.api.conftest import EXAMPLE_KEY, PASSWORD, register

pytestmark = pytest.mark.django_db(transaction=True)
TRIALS = 15


def call(
    url: str, token: str | None, body: dict[str, Any], key: str | None = None
) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Token {token}"
    if key:
        headers["Idempotency-Key"] = key
    request = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - live_server
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def test_conflicting_events_over_http(live_server, clinic: Clinic, staff: dict[str, User]) -> None:  # type: ignore[no-untyped-def]
    tokens = []
    for username in ("coordinator", "physician"):
        status, body = call(
            f"{live_server.url}/api/v1/auth/token",
            None,
            {"username": username, "password": PASSWORD},
        )
        assert status == 201, body
        tokens.append(body["token"])

    for trial in range(TRIALS):
        patient = register(clinic, f"H-{trial}")
        enrolment = enrolment_start(patient=patient, definition_key=EXAMPLE_KEY)
        url = f"{live_server.url}/api/v1/enrolments/{enrolment.public_id}/events"
        barrier = threading.Barrier(2)
        results: list[tuple[int, dict[str, Any]]] = []

        body = {"event": "discharge", "expected_version": 1}

        def send(
            token: str,
            key: str,
            url: str = url,
            barrier: threading.Barrier = barrier,
            results: list[tuple[int, dict[str, Any]]] = results,
            body: dict[str, Any] = body,
        ) -> None:
            barrier.wait()
            results.append(call(url, token, body, key=key))

        threads = [
            threading.Thread(target=send, args=(token, f"t{trial}-{n}"))
            for n, token in enumerate(tokens)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        statuses = sorted(status for status, _ in results)
        assert statuses == [200, 409], (trial, results)
        conflict = next(body for status, body in results if status == 409)
        assert conflict["code"] == "conflict"
        assert conflict["current"]["states"]["ladder"] in ("intake", "discharged")
        assert PathwayStep.objects.filter(enrolment=enrolment, event="discharge").count() == 1
