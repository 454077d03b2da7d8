"""Locust user for P4 (run by bench.scenarios.caseload in its own process).

Environment: BENCH_TARGET_PATH (the path to GET), BENCH_AUTH_HEADER (an Authorization header
value) or BENCH_SESSION_COOKIE (a session id), BENCH_SEARCH_PATH (optional second path, one
request in four), BENCH_RAW_OUT (a file: one line "<ms> <status>" per request)."""

from __future__ import annotations

import os
from typing import Any

from locust import HttpUser, constant_throughput, events, task

RAW_OUT = os.environ.get("BENCH_RAW_OUT", "")
_lines: list[str] = []


@events.request.add_listener
def _record(response_time: float, exception: Any, response: Any, **_: Any) -> None:
    status = getattr(response, "status_code", 0) if response is not None else 0
    _lines.append(f"{response_time:.3f} {status if exception is None else 'error'}")


@events.quitting.add_listener
def _write(**_: Any) -> None:
    if RAW_OUT:
        with open(RAW_OUT, "w") as handle:
            handle.write("\n".join(_lines) + "\n")


class CaseloadUser(HttpUser):
    wait_time = constant_throughput(1)  # each user one request a second
    n = 0

    def on_start(self) -> None:
        header = os.environ.get("BENCH_AUTH_HEADER")
        if header:
            self.client.headers["Authorization"] = header
        cookie = os.environ.get("BENCH_SESSION_COOKIE")
        if cookie:
            self.client.cookies.set("sessionid", cookie)

    @task
    def page(self) -> None:
        self.n += 1
        search = os.environ.get("BENCH_SEARCH_PATH")
        path = search if search and self.n % 4 == 0 else os.environ["BENCH_TARGET_PATH"]
        self.client.get(path, name=path.split("?")[0])
