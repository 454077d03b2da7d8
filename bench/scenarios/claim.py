"""P3: the cost of claiming the next 1,000 due rows as the schedule table grows.

The scheduler's claim (`carehub.pathways.scheduler.due_timers_query`) and the message
dispatcher's claim (`carehub.messaging.delivery.due_messages_query`), exactly as the code runs
them (SELECT … FOR UPDATE SKIP LOCKED … LIMIT 1000 on the partial index), on tables of 10,000,
100,000 and 1,000,000 rows. Each size lives in a database of its own, so the sizes are measured
alternately in one run (every round visits every size); each claim is rolled back so the same
rows are due again.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from django.db import connections, transaction

from bench import generate
from bench.core import Context, Result, Target, describe
from bench.db import add_alias, ensure_database, migrate

NAME = "p3_claim"
TITLE = "P3: claim the next 1,000 due rows vs table size"
SIZES = [10_000, 100_000, 1_000_000]
BATCH = 1000
DUE = 2000  # more due than one claim takes: the claim stops at its LIMIT


def alias_for(size: int) -> str:
    return f"p3_{size}"


def prepare(ctx: Context, size: int, *, now: datetime) -> str:
    """The database of one size, with both tables filled (kept between runs when they are)."""
    alias = alias_for(size)
    name = f"{ctx.env.database_name}_p3_{size}"
    ensure_database(ctx.env.database_url, name)
    add_alias(alias, name)
    migrate(alias)
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pathways_pathwaytimer")
        timers = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM messaging_message")
        messages = cursor.fetchone()[0]
    if timers != size:
        generate.timer_table(alias, size, DUE, now=now)
    if messages != size:
        generate.message_table(alias, size, DUE, now=now)
    return alias


def claim_once(alias: str, table: str, now: datetime, batch: int = BATCH) -> tuple[float, int]:
    """One claim as the code runs it, timed, then rolled back; (seconds, rows claimed)."""
    from carehub.messaging.delivery import due_messages_query
    from carehub.pathways.scheduler import due_timers_query

    query = due_timers_query if table == "timers" else due_messages_query
    with transaction.atomic(using=alias):
        started = time.perf_counter()
        ids = list(query(now, batch).using(alias).values_list("pk", flat=True))
        elapsed = time.perf_counter() - started
        transaction.set_rollback(True, using=alias)
    return elapsed, len(ids)


def plan(alias: str, table: str, now: datetime, batch: int = BATCH) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the claim."""
    from carehub.messaging.delivery import due_messages_query
    from carehub.pathways.scheduler import due_timers_query

    query = due_timers_query if table == "timers" else due_messages_query
    queryset = query(now, batch).using(alias).values_list("pk", flat=True)
    with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
        sql, params = queryset.query.get_compiler(alias).as_sql()
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
        text = "\n".join(row[0] for row in cursor.fetchall())
        transaction.set_rollback(True, using=alias)
    return text


def run(ctx: Context) -> Result:
    rounds = 15 if ctx.quick else 60
    now = datetime.now(UTC)
    result = Result(
        NAME, TITLE,
        inputs={"sizes": SIZES, "batch": BATCH, "due_rows": DUE, "rounds": rounds,
                "composition": "80 % closed history, 20 % pending (future), 2,000 due"},
    )  # fmt: skip
    aliases = {}
    for size in SIZES:
        ctx.log(f"  p3: preparing {size:,} rows")
        aliases[size] = prepare(ctx, size, now=now)
    now = datetime.now(UTC)
    # Warm each database's cache and connection once.
    for size in SIZES:
        for table in ("timers", "messages"):
            claim_once(aliases[size], table, now)
    samples: dict[tuple[str, int], list[float]] = {}
    for round_ in range(rounds):
        order = SIZES if round_ % 2 == 0 else list(reversed(SIZES))
        for size in order:
            for table in ("timers", "messages"):
                seconds, claimed = claim_once(aliases[size], table, now)
                samples.setdefault((table, size), []).append(seconds * 1000)
                result.runs.append({
                    "table": table, "size": size, "round": round_,
                    "ms": round(seconds * 1000, 3), "claimed": claimed,
                })  # fmt: skip
    for table in ("timers", "messages"):
        per_size = {}
        for size in SIZES:
            per_size[str(size)] = describe(samples[(table, size)])
            text = plan(aliases[size], table, now)
            index = "timer_pending_due" if table == "timers" else "message_due"
            per_size[str(size)]["uses_partial_index"] = index in text and "Seq Scan" not in text
            per_size[str(size)]["plan"] = text
        ratio = per_size[str(SIZES[-1])]["median"] / per_size[str(SIZES[0])]["median"]
        result.summary[table] = {"by_size": per_size, "ratio_1m_to_10k_median": round(ratio, 2)}
        p95 = per_size[str(SIZES[-1])]["p95"]
        result.targets.append(Target(
            f"P3 {table}: claim 1,000 at 1M rows, p95", "≤ 20 ms", f"{p95:.1f} ms", p95 <= 20,
        ))  # fmt: skip
        result.targets.append(Target(
            f"P3 {table}: 1M / 10k (medians)", "≤ 2x", f"{ratio:.2f}x", ratio <= 2,
        ))  # fmt: skip
    result.plots.append(_plot(ctx, samples))
    return result


def _plot(ctx: Context, samples: dict[tuple[str, int], list[float]]) -> str:
    from bench.report import new_figure, save_figure

    fig, ax = new_figure()
    for table, marker in (("timers", "o"), ("messages", "s")):
        medians = [sorted(samples[(table, s)])[len(samples[(table, s)]) // 2] for s in SIZES]
        from bench.core import percentile

        p95s = [percentile(samples[(table, s)], 95) for s in SIZES]
        ax.plot(SIZES, medians, marker=marker, label=f"{table} median")
        ax.plot(SIZES, p95s, marker=marker, linestyle="--", label=f"{table} p95")
    ax.axhline(20, color="red", linewidth=0.8, label="target p95 (20 ms)")
    ax.set_xscale("log")
    ax.set_xlabel("rows in the table")
    ax.set_ylabel("claim of 1,000 rows (ms)")
    ax.set_title("P3: claim cost vs table size")
    ax.legend(fontsize=7)
    return save_figure(ctx, fig, "p3_claim.png")
