"""F3: two beat processes (two schedulers, two dispatchers, two sweepers) at once.

A deployment must run exactly one beat, but a second one (a deploy overlapping the old one, a
mistaken replica) must not send anything twice. P1's burst is opened and sent with two beat
processes running carehub's whole schedule (the check-in opening sweep every
SCHEDULER_INTERVAL_SECONDS, the dispatcher, the sweeper) and 2 workers. Checked per check-in
and per message: each check-in opened once (one request message, opened by one sweep), each
message queued by at most one dispatcher run, claimed for sending once and recorded by the
provider once, with no repeated request.
"""

from __future__ import annotations

from typing import Any

from bench.core import Context, Result, Target
from bench.faults import delivery_events_summary, exactly_once_target, run_burst

NAME = "f3_two_beats"
TITLE = "F3: two beats and two dispatchers at once: nothing opened or sent twice"


def _duplicates(checkin_ids: list[int]) -> dict[str, int]:
    from django.db import connection

    keys = [f"checkin:{pk}:request" for pk in checkin_ids]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM (SELECT subject_key FROM messaging_message"
            " WHERE purpose = 'checkin_request' AND subject_key = ANY(%s)"
            " GROUP BY subject_key HAVING count(*) > 1) d",
            [[f"checkin:{pk}" for pk in checkin_ids]],
        )
        opened_twice = int(cursor.fetchone()[0])
        cursor.execute(
            "SELECT count(*) FROM checkins_checkin WHERE id = ANY(%s) AND status = 'scheduled'",
            [checkin_ids],
        )
        never_opened = int(cursor.fetchone()[0])
        counts = {}
        for label, pattern in {
            "queued_twice_by_dispatchers": "Queued by the dispatcher%",
            "claimed_for_sending_twice": "% (attempt %/%)",
        }.items():
            status = "queued" if label.startswith("queued") else "sending"
            cursor.execute(
                "SELECT count(*) FROM (SELECT e.message_id FROM messaging_deliveryevent e"
                " JOIN messaging_message m ON m.id = e.message_id"
                " WHERE m.idempotency_key = ANY(%s) AND e.status = %s AND e.reason LIKE %s"
                " GROUP BY e.message_id HAVING count(*) > 1) d",
                [keys, status, pattern],
            )
            counts[label] = int(cursor.fetchone()[0])
    return {"opened_twice": opened_twice, "never_opened": never_opened, **counts}


def run(ctx: Context) -> Result:
    from bench.scenarios.burst import measure

    count = 1000 if ctx.quick else 10_000
    spread = 29.0 if ctx.quick else 59.0
    timeout = 300.0 if ctx.quick else 900.0
    result = Result(
        NAME, TITLE,
        inputs={"checkins": count, "spread_seconds": spread, "worker_processes": 2,
                "beat_processes": 2},
    )  # fmt: skip
    checkins, _, progress = run_burst(
        ctx, count, spread=spread, timeout=timeout, on_progress=lambda *_: None, beats=2
    )
    figures: dict[str, Any] = measure(checkins)
    figures.pop("lags")
    figures["duplicates"] = _duplicates(checkins)
    figures["delivery_events"] = delivery_events_summary(checkins)
    figures["progress"] = progress
    result.runs.append(figures)
    once, text = exactly_once_target(figures)
    twice = figures["duplicates"]
    clean = not any(twice.values())
    result.summary = {
        "exactly_once": once, "duplicates": twice, "lag_seconds": figures["lag_seconds"],
    }  # fmt: skip
    result.targets = [
        Target("F3 exactly once", "0 lost, 0 delivered twice", text, once),
        Target("F3 nothing opened, queued or claimed twice", "0 of each",
               ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in twice.items()),
               clean and figures["repeated_requests"] == 0),
    ]  # fmt: skip
    if ctx.quick:
        result.notes.append(f"Quick mode: {count:,} check-ins; full mode: 10,000.")
    return result
