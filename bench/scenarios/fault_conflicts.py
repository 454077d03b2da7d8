"""F4: concurrent conflicting changes over HTTP: never a double transition, never a 5xx.

gunicorn (`config/gunicorn.conf.py`'s worker class, 2 processes, on BENCH_PRIVATE_PORT_BASE + 3)
serves the bench database. For each trial a fresh patient is enrolled on the intractable-pain
pathway; a coordinator and a physician, each with an API token, send `discharge_recorded` with
`expected_version` 1 to the same enrolment at the same moment (two threads behind a barrier,
each with its own Idempotency-Key). Exactly one must succeed (200) and the other be refused
with 409 and the current state; the step log must hold one discharge per enrolment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from typing import Any

from bench.core import ROOT, Context, Result, Target
from bench.servers import port_base

NAME = "f4_http_conflicts"
TITLE = "F4: concurrent conflicting events over HTTP: no double transition, no 5xx"
PASSWORD = "bench-faults-password-1"  # noqa: S105 (a local benchmark database only)


def _call(url: str, token: str | None, body: dict[str, Any], key: str | None = None) -> int:
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Token {token}"
    if key:
        headers["Idempotency-Key"] = key
    request = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 (our server)
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError:
        return 0


def _token(base: str, username: str) -> str:
    request = urllib.request.Request(  # noqa: S310
        f"{base}/api/v1/auth/token",
        json.dumps({"username": username, "password": PASSWORD}).encode(),
        {"Content-Type": "application/json"}, method="POST",
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return str(json.loads(response.read())["token"])


def _setup(trials: int) -> tuple[list[str], list[str]]:
    """A clinic of this run: a coordinator, a physician, `trials` enrolled patients."""
    from carehub.accounts.models import Role
    from carehub.accounts.services import staff_create
    from carehub.clinics.services import clinic_create
    from carehub.pathways.services import enrolment_start
    from carehub.patients.services import care_team_add, patient_register

    run = uuid.uuid4().hex[:8]
    clinic = clinic_create(name=f"F4 {run}", slug=f"f4-{run}", time_zone="UTC")
    users = [
        staff_create(clinic=clinic, username=f"f4-{run}-{role.value}", role=role, password=PASSWORD)
        for role in (Role.COORDINATOR, Role.PHYSICIAN)
    ]
    enrolments = []
    for n in range(trials):
        patient = patient_register(
            clinic=clinic, mrn=f"F4-{n}", given_name="Trial", family_name=f"{n}",
            time_zone="UTC",
        )  # fmt: skip
        for user in users:
            care_team_add(patient=patient, staff=user)
        enrolments.append(
            str(enrolment_start(patient=patient, definition_key="intractable-pain").public_id)
        )
    return [u.username for u in users], enrolments


def _double_transitions(enrolments: list[str]) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM (SELECT s.enrolment_id FROM pathways_pathwaystep s"
            " JOIN pathways_enrolment e ON e.id = s.enrolment_id"
            " WHERE e.public_id = ANY(%s::uuid[]) AND s.event = 'discharge_recorded'"
            " GROUP BY s.enrolment_id HAVING count(*) > 1) d",
            [enrolments],
        )
        return int(cursor.fetchone()[0])


def run(ctx: Context) -> Result:
    trials = 100 if ctx.quick else 1000
    result = Result(
        NAME, TITLE,
        inputs={"trials": trials, "gunicorn_workers": 2, "event": "discharge_recorded",
                "expected_version": 1},
    )  # fmt: skip
    started = time.perf_counter()
    usernames, enrolments = _setup(trials)
    setup_seconds = time.perf_counter() - started
    port = port_base() + 3
    base = f"http://127.0.0.1:{port}"
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind",
         f"127.0.0.1:{port}", "--workers", "2", "--log-level", "warning"],
        cwd=ROOT, env=dict(os.environ), start_new_session=True,
    )  # fmt: skip
    outcomes: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{base}/livez", timeout=2):  # noqa: S310
                    break
            except OSError:
                time.sleep(0.2)
        tokens = [_token(base, name) for name in usernames]
        trials_started = time.perf_counter()
        for trial, public_id in enumerate(enrolments):
            url = f"{base}/api/v1/enrolments/{public_id}/events"
            barrier = threading.Barrier(2)
            codes: list[int] = []
            body = {"event": "discharge_recorded", "expected_version": 1,
                    "reason": "bench: conflicting discharge"}  # fmt: skip

            def send(token: str, key: str, url: str = url, barrier: threading.Barrier = barrier,
                     codes: list[int] = codes, body: dict[str, Any] = body) -> None:  # fmt: skip
                barrier.wait()
                codes.append(_call(url, token, body, key))

            threads = [
                threading.Thread(target=send, args=(token, f"f4-{trial}-{n}-{uuid.uuid4().hex}"))
                for n, token in enumerate(tokens)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            statuses.update(codes)
            outcomes[",".join(str(c) for c in sorted(codes))] += 1
        trial_seconds = time.perf_counter() - trials_started
    finally:
        web.terminate()
        web.wait(timeout=30)
    doubles = _double_transitions(enrolments)
    server_errors = sum(n for code, n in statuses.items() if code >= 500 or code == 0)
    one_each = outcomes.get("200,409", 0)
    figures = {
        "trials": trials, "outcomes": dict(outcomes),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "double_transitions": doubles, "server_errors": server_errors,
        "setup_seconds": round(setup_seconds, 1), "trial_seconds": round(trial_seconds, 1),
    }  # fmt: skip
    result.runs.append(figures)
    result.summary = figures
    result.targets = [
        Target("F4 double transitions", "0", f"{doubles} in {trials:,} trials", doubles == 0),
        Target("F4 server errors (5xx)", "0", f"{server_errors}", server_errors == 0),
        Target("F4 one winner and one 409 per trial", f"{trials:,}/{trials:,}",
               f"{one_each:,}/{trials:,} ({dict(outcomes)})", one_each == trials),
    ]  # fmt: skip
    if ctx.quick:
        result.notes.append(f"Quick mode: {trials} trials; full mode: 1,000.")
    return result
