"""F2: PostgreSQL stopped for 15 s in the middle of the burst, on a cluster of its own.

PostgreSQL is restarted, so this scenario never uses the bench's server: it creates a private
cluster and a private Redis (`bench.servers`, ports BENCH_PRIVATE_PORT_BASE and + 1), and runs
in a child process pointed at them (`python -m bench.scenarios.fault_postgres --child`), which
migrates, generates a clinic of as many patients as the burst has check-ins (one month of
history), starts gunicorn (port + 2), 2 workers and beat, and sends P1's burst. When 30 % is
delivered the cluster is stopped (`pg_ctl stop -m fast`: every session ends), and started again
15 s later. Nothing is done by hand. `/healthz` and `/readyz` are read every second throughout.

Targets: 0 lost, 0 delivered twice; every message in flight at the outage (queued or claimed)
delivered within 60 s of the restart; `/healthz` and `/readyz` report the outage (503) and the
recovery (200) on their own.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from bench.core import ROOT, Context, Result, Target
from bench.servers import PrivatePostgres, PrivateRedis, port_base

NAME = "f2_postgres_restart"
TITLE = "F2: PostgreSQL stopped for 15 s mid-burst (private cluster), recovery without a hand"
OUTAGE_SECONDS = 15.0


def run(ctx: Context) -> Result:
    count = 1000 if ctx.quick else 10_000
    # Quick: due within 5 s, so that the outage finds a backlog queued and claimed.
    spread = 5.0 if ctx.quick else 59.0
    result = Result(
        NAME, TITLE,
        inputs={"checkins": count, "spread_seconds": spread, "worker_processes": 2,
                "outage_seconds": OUTAGE_SECONDS, "stop_mode": "pg_ctl stop -m fast",
                "postgresql": "private cluster (initdb), fsync off",
                "redis": "private", "clinic": f"{count:,} patients, 1 month of history"},
    )  # fmt: skip
    pg = PrivatePostgres(port_base()).init()
    redis = PrivateRedis(port_base() + 1)
    out = Path(tempfile.mkdtemp(prefix="carehub-f2-")) / "figures.json"
    try:
        pg.start()
        redis.start()
        env = {
            **os.environ,
            "DATABASE_URL": pg.url("carehub"), "REDIS_URL": redis.url(0),
            "BENCH_DATABASE_NAME": "carehub_bench", "BENCH_REDIS_DB": "0",
            "BENCH_CELERY_QUEUE": "carehub-f2", "BENCH_PG_ROOT": str(pg.root),
            "BENCH_PG_PORT": str(pg.port),
        }  # fmt: skip
        command = [sys.executable, "-m", "bench.scenarios.fault_postgres", "--child", str(out),
                   "--count", str(count), "--spread", str(spread)]  # fmt: skip
        ctx.log(f"  private PostgreSQL on {pg.port}, Redis on {redis.port}")
        subprocess.run(command, cwd=ROOT, env=env, check=True, timeout=3600)
        figures: dict[str, Any] = json.loads(out.read_text())
    finally:
        redis.remove()
        pg.remove()
    result.runs.append(figures)
    from bench.faults import exactly_once_target

    once, text = exactly_once_target(figures)
    outage = figures["recovery"].get("PostgreSQL stop", {})
    after = outage.get("after_recovery_seconds", {})
    picked = outage.get("picked_up_after_recovery_seconds", {})
    health = figures["health"]
    result.summary = {
        "exactly_once": once, "lag_seconds": figures["lag_seconds"],
        "recovery": figures["recovery"], "delivery_events": figures["delivery_events"],
        "health": health, "burst_seconds": figures["burst_seconds"],
    }  # fmt: skip
    health_ok = bool(
        health.get("healthz_503_during_outage") and health.get("readyz_503_during_outage")
        and health.get("healthz_200_after_seconds") is not None
        and health.get("readyz_200_after_seconds") is not None
    )  # fmt: skip
    result.targets = [
        Target("F2 exactly once", "0 lost, 0 delivered twice", text, once),
        Target("F2 in flight at the outage delivered after the restart", "≤ 60 s",
               f"max {after.get('max', float('nan')):.1f} s over {outage.get('in_flight', 0)} "
               f"messages, {outage.get('missing', 0)} missing",
               outage.get("missing", 1) == 0 and after.get("max", 1e9) <= 60),
        Target("F2 in flight at the outage sent or queued again after the restart (apart from "
               "the wait behind the burst's backlog)", "≤ 60 s",
               f"max {picked.get('max', float('nan')):.1f} s",
               outage.get("missing", 1) == 0 and picked.get("max", 1e9) <= 60),
        Target("F2 /healthz and /readyz report the outage and the recovery",
               "503 during, 200 after, no manual step",
               f"healthz 200 again {health.get('healthz_200_after_seconds')} s after the "
               f"restart, readyz {health.get('readyz_200_after_seconds')} s", health_ok),
    ]  # fmt: skip
    result.notes.append(
        '"In flight" counts every message queued or claimed when the fault hit, so its delivery '
        "time after recovery includes the wait behind the rest of the burst in the queue (a "
        "message sent or queued again after recovery joins the end of the queue); that wait "
        "depends on the machine's throughput during the run (see its load average). The "
        '"sent or queued again" target measures carehub\'s own reaction.'
    )
    if ctx.quick:
        result.notes.append(f"Quick mode: {count:,} check-ins; full mode: 10,000.")
    return result


# --- the child process, on the private servers ------------------------------------------------


class HealthWatch(threading.Thread):
    """Reads /healthz and /readyz every second: (seconds since start, code, code)."""

    def __init__(self, base: str) -> None:
        super().__init__(daemon=True)
        self.base = base
        self.samples: list[tuple[float, int, int]] = []
        self.stopped = threading.Event()

    @staticmethod
    def _code(url: str) -> int:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (our server)
                return int(response.status)
        except urllib.error.HTTPError as error:
            return int(error.code)
        except OSError:
            return 0

    def run(self) -> None:
        while not self.stopped.is_set():
            at = time.time()
            self.samples.append(
                (at, self._code(f"{self.base}/healthz"), self._code(f"{self.base}/readyz"))
            )
            self.stopped.wait(1.0)


def _health_figures(
    samples: list[tuple[float, int, int]], stopped: float, started: float
) -> dict[str, Any]:
    during = [s for s in samples if stopped + 1 < s[0] < started]
    after = [s for s in samples if s[0] >= started]
    first_healthz = next((s[0] for s in after if s[1] == 200), None)
    first_readyz = next((s[0] for s in after if s[2] == 200), None)

    def since(at: float | None) -> float | None:
        return None if at is None else round(at - started, 1)

    return {
        "samples": len(samples),
        "healthz_503_during_outage": bool(during) and all(s[1] == 503 for s in during),
        "readyz_503_during_outage": bool(during) and all(s[2] == 503 for s in during),
        "healthz_200_after_seconds": since(first_healthz),
        "readyz_200_after_seconds": since(first_readyz),
        "timeline": [(round(s[0] - stopped, 1), s[1], s[2]) for s in samples[::5]],
    }


def child(out: Path, count: int, spread: float) -> None:
    from bench.env import configure

    env = configure()
    from bench.db import ensure_database

    ensure_database(env.database_url, env.database_name)
    import django

    django.setup()
    from bench import generate
    from bench.db import migrate
    from bench.faults import (
        FaultLog,
        delivery_events_summary,
        in_flight_ids,
        recovery_figures,
        run_burst,
    )
    from bench.scenarios.burst import measure

    ctx = Context(env=env, quick=count < 10_000)
    migrate()
    info = generate.generate_clinic(patients=count, months=1)
    ctx.log(f"  generated {info.patients:,} patients in {info.seconds} s")
    pg = PrivatePostgres(int(os.environ["BENCH_PG_PORT"]), root=Path(os.environ["BENCH_PG_ROOT"]))
    web_port = port_base() + 2
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind",
         f"127.0.0.1:{web_port}", "--workers", "1", "--log-level", "warning"],
        cwd=ROOT, env=dict(os.environ), start_new_session=True,
    )  # fmt: skip
    watch = HealthWatch(f"http://127.0.0.1:{web_port}")
    log = FaultLog()
    state: dict[str, float] = {}

    def inject(done: int, elapsed: float, checkins: list[int]) -> None:
        tick = time.time()  # `elapsed` is measured now
        if "stopped" not in state and done >= 0.3 * count:
            # Stop it while workers hold claims (a batch in flight), as an outage would find
            # them in a busy clinic.
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and not in_flight_ids(checkins, ("sending",)):
                time.sleep(0.02)
            flight = in_flight_ids(checkins)
            claimed = len(in_flight_ids(checkins, ("sending",)))
            pg.stop("fast")
            state["stopped"] = time.time()
            log.fault(
                "PostgreSQL stop", elapsed + state["stopped"] - tick, flight, delivered=done,
                claimed=claimed,
            )  # fmt: skip
        elif (
            "stopped" in state and "started" not in state
            and time.time() - state["stopped"] >= OUTAGE_SECONDS
        ):  # fmt: skip
            pg.start()
            state["started"] = time.time()
            log.recovered("PostgreSQL stop", elapsed + state["started"] - tick)

    try:
        time.sleep(3)
        watch.start()
        started = time.time()
        checkins, first_due, progress = run_burst(
            ctx, count, spread=spread, timeout=900.0, on_progress=inject
        )
        burst_seconds = time.time() - started
    finally:
        watch.stopped.set()
        web.terminate()
        web.wait(timeout=30)
    figures: dict[str, Any] = measure(checkins)
    figures.pop("lags")
    figures["faults"] = log.events
    figures["recovery"] = recovery_figures(log, first_due)
    figures["delivery_events"] = delivery_events_summary(checkins)
    figures["progress"] = progress
    figures["burst_seconds"] = round(burst_seconds, 1)
    figures["health"] = _health_figures(
        watch.samples, state.get("stopped", 0.0), state.get("started", 0.0)
    )
    out.write_text(json.dumps(figures, default=str))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", type=Path, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--spread", type=float, required=True)
    arguments = parser.parse_args()
    child(arguments.child, arguments.count, arguments.spread)
