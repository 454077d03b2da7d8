"""P2: carehub's scheduler against django-celery-beat, one PeriodicTask per patient schedule.

The same patient schedules two ways, in the same database and Redis, alternated in one run:

- **beat**: what most Django projects do: one `PeriodicTask` per patient schedule (a weekly
  `IntervalSchedule`, the schedule's id as argument) under beat's `DatabaseScheduler`, which
  enqueues a task for each schedule when it is due. The scheduler runs its own loop
  (`tick()`, sleeping as `celery beat` does) in this process, loaded and warm before the due
  instant.
- **carehub**: one check-in series per schedule, its next occurrence a `Checkin` row; the
  sweep `checkins_open_due` (beat runs it every SCHEDULER_INTERVAL_SECONDS) claims the due rows
  (SKIP LOCKED), opens them, writes the request and reminder messages and publishes each due
  request's send task after commit. So carehub does more inside the measured time (it opens
  the check-in and writes its messages) than beat (which only enqueues).

Both measured the same way: from the due instant until the 1,000th task is in the Redis queue
(beat: LLEN of the queue; carehub's send tasks carry batches of ids, so its side counts the ids
in the queued task messages). carehub's sweep is started at the due instant; in production it
runs every SCHEDULER_INTERVAL_SECONDS (default 5 s), so a schedule waits up to that much
longer: the report gives the ratio both ways (tick at the due instant, and worst case + one
interval), and the target is met only when both reach it.
"""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection, transaction

from bench import generate
from bench.core import Context, Result, Target, describe

NAME = "p2_beat"
TITLE = "P2: carehub's scheduler vs django-celery-beat (one PeriodicTask per schedule)"
DUE = 1000
BEAT_TASK = "carehub.bench.checkin_schedule_due"
LEAD_SECONDS = 3.0


def _redis() -> Any:
    import redis
    from django.conf import settings

    return redis.Redis.from_url(settings.CELERY_BROKER_URL)


def queue_keys(queue: str) -> list[str]:
    """The Redis lists that hold `queue`'s messages: one per step of the broker's
    `priority_steps` (kombu's naming: the queue's name for step 0, a suffix for the others)."""
    from config.celery_app import app

    with app.connection_for_write() as conn:
        channel = conn.default_channel
        return [channel._q_for_pri(queue, step) for step in channel.priority_steps]


def queue_length(queue: str) -> int:
    client = _redis()
    return sum(int(client.llen(key)) for key in queue_keys(queue))


def queued_ids(queue: str) -> int:
    """How many ids the task messages in `queue` carry (a task of a list of ids counts each)."""
    count = 0
    client = _redis()
    for raw in (raw for key in queue_keys(queue) for raw in client.lrange(key, 0, -1)):
        envelope = json.loads(raw)
        body = envelope["body"]
        if envelope.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
        count += len(args[0]) if args and isinstance(args[0], list) else 1
    return count


def purge(queue: str) -> None:
    _redis().delete(*queue_keys(queue))


# --- beat -----------------------------------------------------------------------------------


def beat_schedules(rows: int, due: int, *, due_at: datetime, queue: str) -> None:
    """`rows` PeriodicTasks (weekly interval), `due` of them due at `due_at`, the others over
    the coming week. Replaces the bench's earlier ones."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTasks

    every = IntervalSchedule.objects.get_or_create(every=7, period=IntervalSchedule.DAYS)[0]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM django_celery_beat_periodictask")
        cursor.execute(
            """
            INSERT INTO django_celery_beat_periodictask
              (name, task, args, kwargs, queue, exchange, routing_key, headers, priority,
               expires, expire_seconds, one_off, start_time, enabled, last_run_at,
               total_run_count, date_changed, description, interval_id, crontab_id, solar_id,
               clocked_id)
            SELECT 'checkin-schedule-' || n, %(task)s, '[' || n || ']', '{}', %(queue)s, NULL,
                   NULL, '{}', NULL, NULL, NULL, false, NULL, true,
                   CASE WHEN n <= %(due)s THEN %(due_at)s - interval '7 days'
                        ELSE %(due_at)s - interval '7 days' + (1 + n %% 10080) * interval '1 minute'
                   END,
                   0, %(due_at)s - interval '8 days', '', %(interval)s, NULL, NULL, NULL
            FROM generate_series(1, %(rows)s) AS n
            """,
            {"task": BEAT_TASK, "queue": queue, "due": due, "due_at": due_at, "rows": rows,
             "interval": every.pk},
        )  # fmt: skip
        cursor.execute("ANALYZE django_celery_beat_periodictask")
    PeriodicTasks.update_changed()


def beat_trial(
    rows: int, *, queue: str, cap_seconds: float, due: int = DUE, lead: float = LEAD_SECONDS
) -> dict[str, Any]:
    """One burst through beat's DatabaseScheduler; seconds from due to the 1,000th enqueued."""
    from django_celery_beat.schedulers import DatabaseScheduler

    from config.celery_app import app

    purge(queue)
    # Due far enough ahead to write and load the schedules first (beat's start-up is not
    # measured): 100,000 PeriodicTasks take about 20 s to write and 6 s to load.
    due_at = datetime.now(UTC) + timedelta(seconds=lead + (30 if rows >= 100_000 else 5))
    beat_schedules(rows, due, due_at=due_at, queue=queue)
    saved = app.conf.beat_schedule
    app.conf.beat_schedule = {}  # only the patient schedules: carehub's own entries stay out
    try:
        load_started = time.perf_counter()
        scheduler = DatabaseScheduler(app=app, lazy=False)
        scheduler.tick()  # loads every entry and builds the heap, as beat's first tick does
        load_seconds = time.perf_counter() - load_started
        while datetime.now(UTC) < due_at - timedelta(seconds=lead):
            time.sleep(0.05)
        deadline = due_at.timestamp() + cap_seconds
        ticks = 0
        enqueued = 0
        while True:
            interval = scheduler.tick()
            ticks += 1
            if (interval and interval > 0) or ticks % 25 == 0:
                enqueued = queue_length(queue)
                if enqueued >= due:
                    break
                if time.time() > deadline:
                    break
                if interval and interval > 0:
                    time.sleep(min(interval, 0.05))
        finished = time.time()
        enqueued = queue_length(queue)
    finally:
        app.conf.beat_schedule = saved
    seconds = finished - due_at.timestamp()
    capped = enqueued < due
    figures = {
        "seconds": round(seconds, 3), "enqueued": enqueued, "capped": capped, "ticks": ticks,
        "load_seconds": round(load_seconds, 2),
    }  # fmt: skip
    if capped and enqueued:
        figures["extrapolated_seconds"] = round(seconds * due / enqueued, 1)
    purge(queue)
    return figures


# --- carehub ----------------------------------------------------------------------------------


def carehub_trial(
    rows: int, *, queue: str, due: int = DUE, lead: float = LEAD_SECONDS
) -> dict[str, Any]:
    """One burst through carehub's sweep; seconds from due to the 1,000th send task enqueued."""
    from carehub.checkins.services import checkins_open_due

    purge(queue)
    generate.push_clinic_schedule()
    # A short head start: when writing the schedules (and ANALYZE) takes longer, the due
    # instant is moved just after it (below), since that set-up is not what is measured.
    due_at = datetime.now(UTC) + timedelta(seconds=lead + 2)
    setup_started = time.perf_counter()
    ids = generate.checkin_schedules(rows, due, due_at=due_at)
    setup_seconds = time.perf_counter() - setup_started
    if datetime.now(UTC) > due_at - timedelta(seconds=1):
        # The set-up overran its head start (a loaded machine): move the due instant of the
        # due rows just ahead, so the sweep starts at it rather than late.
        due_at = datetime.now(UTC) + timedelta(seconds=2)
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE checkins_checkin SET due_at = %s, closes_at = %s WHERE id = ANY(%s)",
                [due_at, due_at + timedelta(hours=72), ids],
            )
    while datetime.now(UTC) < due_at:
        time.sleep(0.002)
    started_late = max(0.0, time.time() - due_at.timestamp())
    opened = checkins_open_due()
    finished = time.time()
    enqueued = queued_ids(queue)
    purge(queue)
    return {
        "seconds": round(finished - due_at.timestamp(), 3), "enqueued": enqueued,
        "opened": opened, "due": len(ids), "setup_seconds": round(setup_seconds, 2),
        "started_late_seconds": round(started_late, 3),
    }  # fmt: skip


def run(ctx: Context) -> Result:
    sizes = [10_000, 100_000]
    rounds = 1 if ctx.quick else 3
    cap = 20.0 if ctx.quick else 300.0
    queue = f"{ctx.env.queue}-p2"
    result = Result(
        NAME, TITLE,
        inputs={"sizes": sizes, "due": DUE, "rounds": rounds, "beat_cap_seconds": cap,
                "beat": "DatabaseScheduler, one PeriodicTask per schedule, weekly interval",
                "carehub": "Checkin rows claimed by checkins_open_due (SKIP LOCKED)",
                "queue": queue},
    )  # fmt: skip
    from django.conf import settings
    from django.test import override_settings

    poll = int(settings.SCHEDULER_INTERVAL_SECONDS)
    result.inputs["sweep_interval_seconds"] = poll
    summary: dict[str, Any] = {}
    with override_settings(CELERY_TASK_DEFAULT_QUEUE=queue):
        from config.celery_app import app

        saved_queue = app.conf.task_default_queue
        app.conf.task_default_queue = queue
        try:
            for size in sizes:
                samples: dict[str, list[float]] = {"beat": [], "carehub": []}
                for round_ in range(rounds):
                    order = ["carehub", "beat"] if round_ % 2 == 0 else ["beat", "carehub"]
                    for label in order:
                        if label == "beat":
                            figures = beat_trial(size, queue=queue, cap_seconds=cap)
                            value = figures.get("extrapolated_seconds", figures["seconds"])
                        else:
                            figures = carehub_trial(size, queue=queue)
                            value = figures["seconds"]
                        samples[label].append(value)
                        result.runs.append({"size": size, "label": label, "round": round_,
                                            **figures})  # fmt: skip
                        ctx.log(f"  p2 {size:,} {label}: {json.dumps(figures)}")
                beat_median = describe(samples["beat"])["median"]
                carehub_median = describe(samples["carehub"])["median"]
                summary[str(size)] = {
                    "beat": describe(samples["beat"]), "carehub": describe(samples["carehub"]),
                    "ratio_median": round(beat_median / carehub_median, 1),
                    "ratio_worst_case_poll": round(beat_median / (carehub_median + poll), 1),
                }  # fmt: skip
        finally:
            app.conf.task_default_queue = saved_queue
    result.summary = summary
    big = summary[str(sizes[-1])]
    result.targets.append(Target(
        "P2 due→enqueued, 1,000 due at 100,000 schedules: beat / carehub", "≥ 10x",
        f"{big['ratio_median']}x (with a worst-case {poll} s sweep interval: "
        f"{big['ratio_worst_case_poll']}x)",
        big["ratio_median"] >= 10 and big["ratio_worst_case_poll"] >= 10,
    ))  # fmt: skip
    if any(run.get("capped") for run in result.runs):
        result.notes.append(
            f"Some beat runs did not enqueue all 1,000 within {cap:.0f} s; their time is "
            "extrapolated from the rate reached (seconds x 1000 / enqueued), marked `capped`."
        )
    result.plots.append(_plot(ctx, sizes, summary))
    return result


def _plot(ctx: Context, sizes: list[int], summary: dict[str, Any]) -> str:
    from bench.report import new_figure, save_figure

    fig, ax = new_figure()
    width = 0.35
    xs = range(len(sizes))
    ax.bar([x - width / 2 for x in xs], [summary[str(s)]["beat"]["median"] for s in sizes],
           width, label="django-celery-beat")  # fmt: skip
    ax.bar([x + width / 2 for x in xs], [summary[str(s)]["carehub"]["median"] for s in sizes],
           width, label="carehub")  # fmt: skip
    ax.set_xticks(list(xs), [f"{s:,} schedules" for s in sizes])
    ax.set_yscale("log")
    ax.set_ylabel("due → 1,000 enqueued (s, median)")
    ax.set_title("P2: burst of 1,000 due")
    ax.legend(fontsize=7)
    return save_figure(ctx, fig, "p2_beat.png")
