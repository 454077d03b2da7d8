"""Locust user for P4 (run by bench.scenarios.caseload in its own process).

Arrivals: each of the N users sends requests as a Poisson process of one a second (exponential
gaps, independent of the response times), so N users make N requests/s whose arrivals are
independent, as N people at their desks would. (With `constant_throughput` and all users
spawned in the same second, every user fires in the same instant each second: bursts of N
requests at once, which is a different load; P4's report keeps both.) BENCH_ARRIVALS=burst
restores the synchronised bursts.

Environment: BENCH_TARGET_PATH (the path to GET), BENCH_AUTH_HEADER (an Authorization header
value) or BENCH_SESSION_COOKIE (a session id), BENCH_SEARCH_PATH (optional second path, one
request in four), BENCH_RAW_OUT (a file: one line "<ms> <status>" per request)."""

from __future__ import annotations

import os
import random
import time
from typing import Any

from locust import HttpUser, constant_throughput, events, task

POISSON = os.environ.get("BENCH_ARRIVALS", "poisson") == "poisson"

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
    n = 0
    _next = 0.0
    _burst_wait = constant_throughput(1)

    def wait_time(self) -> float:
        """Seconds until this user's next request: one a second on average."""
        if not POISSON:
            return float(self._burst_wait())
        self._next += random.expovariate(1.0)
        return max(0.0, self._next - time.monotonic())

    def on_start(self) -> None:
        if POISSON:  # a first request at a random instant, then exponential gaps
            time.sleep(random.expovariate(1.0))
            self._next = time.monotonic()
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
