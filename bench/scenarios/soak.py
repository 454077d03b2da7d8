"""P6: steady delivery for a long time; worker memory sampled as it goes.

carehub's beat and 2 worker processes (as in P1); the bench adds check-ins due now at a steady
rate (default 3 a second) for the soak's duration, which the sweep opens and the workers send.
The resident memory of each worker (its main process and pool child) is sampled at every
interval; growth is measured from the first sample after the warm-up (the first fifth of the
soak) to the last. Full mode: 30 minutes, one sample a minute. Quick mode: 3 minutes, one sample
every 15 s (and it says so: the target is for 30 minutes).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from bench import generate
from bench.core import Context, Result, Target
from bench.scenarios.burst import delivered, insert_checkins, prepare_patients
from bench.workers import delivery_stack, rss_bytes

NAME = "p6_soak"
TITLE = "P6: soak: steady delivery, worker RSS over time"
RATE = 3  # check-ins due per second


def soak(ctx: Context, *, seconds: int, sample_every: int) -> dict[str, Any]:
    from config.celery_app import app

    generate.purge_bench_deliveries()
    generate.push_clinic_schedule()
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge(ctx.env.queue)
    patients = prepare_patients(min(10_000, RATE * seconds + 100))
    samples: list[dict[str, Any]] = []
    checkins: list[int] = []
    with delivery_stack(ctx.env.queue, workers=2) as workers:
        started = time.time()
        next_sample = started
        cursor = 0
        while time.time() < started + seconds:
            now = datetime.now(UTC)
            batch = patients[cursor % len(patients) : cursor % len(patients) + RATE]
            cursor += RATE
            checkins += insert_checkins(batch, first_due=now, spread=0.9)
            if time.time() >= next_sample:
                samples.append({
                    "t": round(time.time() - started),
                    "rss_mib": [round(rss_bytes(w) / 2**20, 1) for w in workers],
                    "delivered": delivered(checkins),
                    "due": len(checkins),
                })  # fmt: skip
                ctx.log(f"  p6 t={samples[-1]['t']}s rss={samples[-1]['rss_mib']} MiB "
                        f"delivered {samples[-1]['delivered']}/{len(checkins)}")  # fmt: skip
                next_sample += sample_every
            time.sleep(max(0.0, 1.0 - (time.time() - now.timestamp())))
        samples.append({
            "t": round(time.time() - started),
            "rss_mib": [round(rss_bytes(w) / 2**20, 1) for w in workers],
            "delivered": delivered(checkins), "due": len(checkins),
        })  # fmt: skip
    return {"samples": samples, "checkins": len(checkins)}


def run(ctx: Context) -> Result:
    seconds, every = (30, 5) if ctx.quick else (1800, 60)
    result = Result(
        NAME, TITLE,
        inputs={"seconds": seconds, "sample_every_seconds": every, "checkins_per_second": RATE,
                "worker_processes": 2, "warm_up": "first fifth of the soak"},
    )  # fmt: skip
    if ctx.quick:
        result.notes.append(
            f"Quick mode: a {seconds} s soak sampled every {every} s; the target is "
            "for a 30-minute soak (full mode)."
        )
    figures = soak(ctx, seconds=seconds, sample_every=every)
    samples = figures["samples"]
    result.runs.append(figures)
    warm = [s for s in samples if s["t"] >= seconds / 5]
    growth = []
    for index in range(len(samples[0]["rss_mib"])):
        first, last = warm[0]["rss_mib"][index], warm[-1]["rss_mib"][index]
        growth.append(round(100 * (last - first) / first, 1) if first else float("nan"))
    result.summary = {
        "rss_growth_pct_per_worker": growth, "delivered": samples[-1]["delivered"],
        "due": samples[-1]["due"],
    }  # fmt: skip
    worst = max(growth)
    label = "30-min soak" if not ctx.quick else f"{seconds} s soak (quick, not the 30 min)"
    result.targets.append(Target(
        f"P6 worker RSS growth after warm-up, {label}", "≤ 10 %",
        " / ".join(f"{g:+.1f} %" for g in growth), worst <= 10,
    ))  # fmt: skip
    result.plots.append(_plot(ctx, samples))
    return result


def _plot(ctx: Context, samples: list[dict[str, Any]]) -> str:
    from bench.report import new_figure, save_figure

    fig, ax = new_figure()
    for index in range(len(samples[0]["rss_mib"])):
        ax.plot([s["t"] / 60 for s in samples], [s["rss_mib"][index] for s in samples],
                marker=".", label=f"worker {index + 1}")  # fmt: skip
    ax.set_xlabel("minutes")
    ax.set_ylabel("RSS (MiB)")
    ax.set_title("P6: worker memory during the soak")
    ax.legend(fontsize=7)
    return save_figure(ctx, fig, "p6_soak.png")
