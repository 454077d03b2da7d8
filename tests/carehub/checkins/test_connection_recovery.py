"""Connections opened while the database refused writes do not outlive the outage (ADR 0016).

A real gunicorn process (one sync worker, CONN_MAX_AGE 60 as in production) serves the test
database. The database is made read-only for new sessions (`ALTER DATABASE ... SET
default_transaction_read_only`, as during a failover or maintenance), the patient opens the
check-in link (the worker's connection is opened then) and sends the answers: the form comes
back (503) with the answers kept. The database takes writes again, and the very next submission
is recorded: the connection that failed was closed at the end of its request, not kept for
CONN_MAX_AGE, and /readyz followed the outage and the recovery.
"""

from __future__ import annotations

import http.cookiejar
import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator

import pytest
from django.db import connection

from carehub.checkins.models import Checkin, CheckinStatus
from tests.support.celery_worker import ROOT, worker_env
from tests.support.patients import clinic_with_team, enrolled_patient, open_checkin, send_link

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PORT = 18321
BASE = f"http://127.0.0.1:{PORT}"
PEG = {"pain": "6", "enjoyment": "5", "activity": "4"}


@pytest.fixture
def web() -> Iterator[subprocess.Popen[bytes]]:
    env = {**worker_env(), "DATABASE_CONN_MAX_AGE": "60", "DJANGO_DEBUG": "false"}
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind",
         f"127.0.0.1:{PORT}", "--workers", "1", "--worker-class", "sync", "--log-level",
         "warning"],
        cwd=ROOT, env=env, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{BASE}/livez", timeout=2):  # noqa: S310 (our server)
                break
        except OSError:
            time.sleep(0.2)
    else:
        process.terminate()
        raise AssertionError("gunicorn did not start")
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def read_only_database() -> Iterator[str]:
    name = connection.settings_dict["NAME"]
    yield name
    with connection.cursor() as cursor:
        cursor.execute(f'ALTER DATABASE "{name}" RESET default_transaction_read_only')


def _set_read_only(name: str, on: bool) -> None:
    with connection.cursor() as cursor:
        if on:
            cursor.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
        else:
            cursor.execute(f'ALTER DATABASE "{name}" RESET default_transaction_read_only')


class Browser:
    """A patient's phone: cookies kept, the form's CSRF token sent back."""

    def __init__(self) -> None:
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def fetch(self, url: str, data: dict[str, str] | None = None) -> tuple[int, str]:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        request = urllib.request.Request(url, body, {"Origin": BASE})  # noqa: S310
        try:
            with self.opener.open(request, timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def submit(self, url: str, answers: dict[str, str]) -> tuple[int, str]:
        status, page = self.fetch(url)
        assert status in (200, 503), (status, page[:500])
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        assert token is not None, page[:500]
        return self.fetch(url, {"csrfmiddlewaretoken": token.group(1), **answers})


def _ready() -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(f"{BASE}/readyz", timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.db_owner  # ALTER DATABASE: the owner's right
def test_connections_opened_while_read_only_do_not_outlive_the_outage(
    web: subprocess.Popen[bytes], read_only_database: str
) -> None:
    enrolment = enrolled_patient(clinic_with_team("cr"), "CR-1")
    checkin = open_checkin(enrolment)
    url = f"{BASE}/c/{send_link(checkin)}"
    phone = Browser()

    _set_read_only(read_only_database, True)
    # The worker's connection to the database is opened now, read-only.
    status, page = phone.submit(url, PEG)
    assert status == 503, page[:1000]
    assert "We could not save your answers just now" in page
    assert re.search(r'name="pain" value="6"[^>]*\bchecked\b', page)
    assert _ready()[0] == 503  # readiness notices the read-only database
    checkin.refresh_from_db()
    assert checkin.status == CheckinStatus.OPEN

    _set_read_only(read_only_database, False)
    recovered = time.monotonic()
    status, page = phone.submit(url, PEG)
    assert status == 200, page[:1000]
    assert "Thank you" in page
    assert time.monotonic() - recovered < 10  # at once, not after CONN_MAX_AGE (60 s)
    assert Checkin.objects.get(pk=checkin.pk).status == CheckinStatus.ANSWERED
    ready, body = _ready()
    assert ready == 200, body
