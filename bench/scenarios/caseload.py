"""P4: the caseload under load: the API list and the dashboard page at 20 requests/s.

gunicorn (config/gunicorn.conf.py, bound to a local port) serves the bench settings on the
generated clinic (10,000 patients); locust sends 20 requests/s (20 users, each a Poisson
process of one request a second, so arrivals are independent; see bench/locustfile.py) as a
coordinator, who sees the whole clinic: `GET /api/v1/patients?page_size=50` with a
knox token (one request in four searches a family name), and the caseload dashboard
(`web:caseload`, session cookie) when this build has it. Every request's time is recorded.
Query counts are taken in-process (Django's test client, the same token) at page sizes 10, 50
and 100. In full mode one more round of each is run with synchronised arrivals (the 20 users
firing in the same instant every second, what `constant_throughput` with all users spawned at
once gives) and reported beside the targets, not as them.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.core import ROOT, Context, Result, Target, describe

NAME = "p4_caseload"
TITLE = "P4: caseload: API list and dashboard page at 20 requests/s"
RATE = 20
PAGE_SIZES = [10, 50, 100]
USERNAME = "coordinator1"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def token_for(username: str = USERNAME) -> str:
    from knox.models import AuthToken

    from carehub.accounts.models import User

    _, token = AuthToken.objects.create(User.objects.get(username=username))
    return str(token)


def session_for(username: str = USERNAME) -> str:
    from django.test import Client

    from carehub.accounts.models import User

    client = Client()
    client.force_login(User.objects.get(username=username))
    return str(client.cookies["sessionid"].value)


def dashboard_path() -> str | None:
    from django.urls import NoReverseMatch, reverse

    try:
        return str(reverse("web:caseload"))
    except NoReverseMatch:
        return None


def query_counts(token: str) -> dict[str, int]:
    """Queries of one API list request per page size (token auth, as clients send it)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Token {token}")
    counts = {}
    for size in PAGE_SIZES:
        client.get(f"/api/v1/patients?page_size={size}")  # warm
        with CaptureQueriesContext(connection) as queries:
            response = client.get(f"/api/v1/patients?page_size={size}")
        assert response.status_code == 200, response.content[:300]
        counts[str(size)] = len(queries.captured_queries)
    return counts


def dashboard_query_counts(session: str, path: str) -> dict[str, int]:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST="127.0.0.1")
    client.cookies["sessionid"] = session
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    return {"status": response.status_code, "queries": len(queries.captured_queries)}


def start_gunicorn(port: int, log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py",
         "--bind", f"127.0.0.1:{port}", "--access-logfile", str(log.with_suffix(".access")),
         "config.wsgi:application"],
        cwd=ROOT, env=dict(os.environ), stdout=handle, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return process
        except OSError:
            time.sleep(0.5)
    raise RuntimeError("gunicorn did not answer /healthz within 60 s")


def load(
    port: int,
    *,
    path: str,
    seconds: int,
    env: dict[str, str],
    search: str | None = None,
    arrivals: str = "poisson",
) -> dict[str, Any]:
    """locust at RATE requests/s for `seconds` ("poisson" or synchronised "burst" arrivals);
    latencies (ms) and errors."""
    with tempfile.NamedTemporaryFile(suffix=".txt", delete=False) as raw:
        raw_path = raw.name
    child_env = {
        **os.environ, **env, "BENCH_TARGET_PATH": path, "BENCH_RAW_OUT": raw_path,
        "BENCH_ARRIVALS": arrivals,
    }  # fmt: skip
    if search:
        child_env["BENCH_SEARCH_PATH"] = search
    subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(ROOT / "bench" / "locustfile.py"),
         "--headless", "-u", str(RATE), "-r", str(RATE), "-t", f"{seconds}s",
         "--host", f"http://127.0.0.1:{port}", "--only-summary", "--loglevel", "WARNING",
         "--stop-timeout", "10"],
        cwd=ROOT, env=child_env, capture_output=True, check=False, timeout=seconds + 120,
    )  # fmt: skip
    latencies, errors = [], 0
    for line in Path(raw_path).read_text().splitlines():
        if not line.strip():
            continue
        ms, status = line.split()
        latencies.append(float(ms))
        if status == "error" or not status.startswith("2"):
            errors += 1
    os.unlink(raw_path)
    return {
        "arrivals": arrivals, "requests": len(latencies), "errors": errors,
        "rate_per_s": round(len(latencies) / seconds, 1), "ms": describe(latencies),
    }  # fmt: skip


def run(ctx: Context) -> Result:
    seconds, rounds = (20, 1) if ctx.quick else (60, 3)
    result = Result(
        NAME, TITLE,
        inputs={"rate_per_s": RATE, "seconds_per_round": seconds, "rounds": rounds,
                "server": "gunicorn -c config/gunicorn.conf.py (3 sync workers)",
                "arrivals": "Poisson, 1/s per user (plus one round of synchronised bursts)",
                "api_path": "/api/v1/patients?page_size=50 (+ 1 in 4 with ?search=)",
                "user": f"{USERNAME} (coordinator: the whole clinic)"},
    )  # fmt: skip
    token = token_for()
    counts = query_counts(token)
    result.summary["api_queries_by_page_size"] = counts
    dashboard = dashboard_path()
    session = session_for() if dashboard else None
    if dashboard and session:
        result.summary["dashboard_queries"] = dashboard_query_counts(session, dashboard)
    log_dir = Path(tempfile.mkdtemp(prefix="carehub-bench-web-"))
    port = _free_port()
    server = start_gunicorn(port, log_dir / "gunicorn.log")
    api: list[dict[str, Any]] = []
    pages: list[dict[str, Any]] = []
    try:
        for round_ in range(rounds):
            figures = load(
                port, path="/api/v1/patients?page_size=50", seconds=seconds,
                env={"BENCH_AUTH_HEADER": f"Token {token}"},
                search="/api/v1/patients?page_size=50&search=Tanaka",
            )  # fmt: skip
            api.append(figures)
            result.runs.append({"target": "api", "round": round_, **figures})
            ctx.log(f"  p4 api round {round_}: {figures['ms']} errors {figures['errors']}")
            if dashboard and session:
                figures = load(
                    port, path=dashboard, seconds=seconds,
                    env={"BENCH_SESSION_COOKIE": session},
                )  # fmt: skip
                pages.append(figures)
                result.runs.append({"target": "dashboard", "round": round_, **figures})
                ctx.log(f"  p4 dashboard round {round_}: {figures['ms']}")
        # For comparison only (full mode): the same rate as synchronised bursts of 20 at once.
        burst = {} if ctx.quick else {"api": load(
            port, path="/api/v1/patients?page_size=50", seconds=seconds,
            env={"BENCH_AUTH_HEADER": f"Token {token}"},
            search="/api/v1/patients?page_size=50&search=Tanaka", arrivals="burst",
        )}  # fmt: skip
        if dashboard and session and not ctx.quick:
            burst["dashboard"] = load(
                port, path=dashboard, seconds=seconds, env={"BENCH_SESSION_COOKIE": session},
                arrivals="burst",
            )  # fmt: skip
        for target, figures in burst.items():
            result.runs.append({"target": target, "round": "burst", **figures})
            ctx.log(f"  p4 {target} synchronised bursts: {figures['ms']}")
        if burst:
            result.summary["synchronised_bursts"] = {
                target: {"p50_ms": f["ms"].get("median"), "p95_ms": f["ms"].get("p95"),
                         "errors": f["errors"]}
                for target, f in burst.items()
            }  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=30)
    worst = max(counts.values())
    api_p95 = sorted(r["ms"]["p95"] for r in api)[len(api) // 2]
    result.summary["api"] = {
        "p50_ms": sorted(r["ms"]["median"] for r in api)[len(api) // 2],
        "p95_ms": api_p95, "p99_ms": sorted(r["ms"]["p99"] for r in api)[len(api) // 2],
        "errors": sum(r["errors"] for r in api), "requests": sum(r["requests"] for r in api),
    }  # fmt: skip
    result.targets = [
        Target("P4 API list queries, page sizes 10/50/100", "≤ 12, whatever the size",
               " / ".join(str(counts[str(s)]) for s in PAGE_SIZES),
               worst <= 12 and len(set(counts.values())) == 1),
        Target("P4 API list p95 at 20 req/s", "≤ 150 ms", f"{api_p95:.0f} ms "
               f"({result.summary['api']['errors']} errors)", api_p95 <= 150),
    ]  # fmt: skip
    if pages:
        page_p95 = sorted(r["ms"]["p95"] for r in pages)[len(pages) // 2]
        result.summary["dashboard"] = {
            "p50_ms": sorted(r["ms"]["median"] for r in pages)[len(pages) // 2],
            "p95_ms": page_p95, "p99_ms": sorted(r["ms"]["p99"] for r in pages)[len(pages) // 2],
            "errors": sum(r["errors"] for r in pages),
        }  # fmt: skip
        result.targets.append(Target("P4 dashboard page p95 at 20 req/s", "≤ 400 ms",
                                     f"{page_p95:.0f} ms", page_p95 <= 400))  # fmt: skip
    else:
        result.summary["dashboard"] = "dashboard page: not available in this build"
        result.targets.append(
            Target(
                "P4 dashboard page p95 at 20 req/s",
                "≤ 400 ms",
                "dashboard page: not available in this build",
                None,
            )
        )
        result.notes.append(
            "dashboard page: not available in this build "
            "(reverse('web:caseload') does not resolve); nothing was measured."
        )
    return result
