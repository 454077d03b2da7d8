"""What every scenario shares: the run context, statistics, machine facts and result files."""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.env import BenchEnv

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


@dataclass
class Context:
    env: BenchEnv
    quick: bool
    results_dir: Path = RESULTS
    log: Callable[[str], None] = field(default=lambda line: print(line, flush=True))


@dataclass
class Target:
    name: str
    target: str
    measured: str
    met: bool | None  # None: not measured in this run

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "target": self.target,
            "measured": self.measured,
            "met": self.met,
        }


@dataclass
class Result:
    scenario: str
    title: str
    inputs: dict[str, Any]
    runs: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear interpolation between closest ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (rank - low))


def describe(values: Sequence[float]) -> dict[str, float]:
    """n, median, p95, p99, max and mean of a sample (NaN when empty)."""
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "median": round(statistics.median(values), 4),
        "p95": round(percentile(values, 95), 4),
        "p99": round(percentile(values, 99), 4),
        "max": round(max(values), 4),
        "mean": round(statistics.fmean(values), 4),
    }


def machine_facts() -> dict[str, Any]:
    import psutil

    facts: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    try:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            facts["postgresql"] = cursor.fetchone()[0]
    except Exception as exc:  # the facts are informative only
        facts["postgresql"] = f"unknown ({exc})"
    try:
        import redis

        facts["redis"] = redis.Redis.from_url(os.environ["REDIS_URL"]).info()["redis_version"]
    except Exception as exc:
        facts["redis"] = f"unknown ({exc})"
    with contextlib.suppress(OSError):
        facts["git_commit"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
            check=False,
        ).stdout.strip()  # fmt: skip
    return facts


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def write_result(ctx: Context, result: Result, started: float) -> Path:
    ctx.results_dir.mkdir(parents=True, exist_ok=True)
    data = {
        "scenario": result.scenario,
        "title": result.title,
        "mode": "quick" if ctx.quick else "full",
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "duration_seconds": round(time.perf_counter() - started, 1),
        "machine": machine_facts(),
        "inputs": result.inputs,
        "runs": result.runs,
        "summary": result.summary,
        "targets": [t.as_dict() for t in result.targets],
        "notes": result.notes,
        "plots": result.plots,
    }
    path = ctx.results_dir / f"{result.scenario}.json"
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path


def alternate(
    labels: Sequence[str], repetitions: int, run: Callable[[str, int], dict[str, Any]]
) -> list[dict[str, Any]]:
    """Run each label `repetitions` times, alternating A, B, A, B (B, A on odd rounds, so
    neither side always goes first); returns every run's figures tagged with label and round."""
    runs: list[dict[str, Any]] = []
    for round_ in range(repetitions):
        order = list(labels) if round_ % 2 == 0 else list(reversed(labels))
        for label in order:
            figures = run(label, round_)
            runs.append({"label": label, "round": round_, **figures})
    return runs
