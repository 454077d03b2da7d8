"""`python -m bench [--quick] [scenario ...]`: run the benchmark scenarios, write
bench/results/<scenario>.json and bench/results/REPORT.md.

Run it through `python -m carehub.devstack run -- python -m bench ...` (what `make bench` does)
so that PostgreSQL and Redis are found or started like for `make test`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from bench.env import configure

if TYPE_CHECKING:
    from bench.generate import ClinicInfo

SCENARIOS = {
    "p1": "bench.scenarios.burst",
    "p2": "bench.scenarios.beat",
    "p3": "bench.scenarios.claim",
    "p4": "bench.scenarios.caseload",
    "p5": "bench.scenarios.engine",
    "p6": "bench.scenarios.soak",
    "p7": "bench.scenarios.simulate",
    "f1": "bench.scenarios.fault_burst",
    "f2": "bench.scenarios.fault_postgres",
    "f3": "bench.scenarios.fault_beats",
    "f4": "bench.scenarios.fault_conflicts",
    "p8": "bench.scenarios.fhir_export",
    "p9": "bench.scenarios.migrate",
}
# F2 generates its own clinic in a private PostgreSQL cluster.
NEEDS_CLINIC = {"p1", "p2", "p4", "p5", "p6", "p8", "p9", "f1", "f3", "f4"}
# What the scenarios write in the clinic's tables; analysed after each of them, so the next one
# is planned on current statistics even where autovacuum is off or has not run yet.
WRITTEN_TABLES = (
    "pathways_pathwaystep", "pathways_enrolment", "pathways_processedevent",
    "pathways_outboxeffect", "pathways_pathwaytimer", "checkins_checkin", "messaging_message",
    "messaging_deliveryevent", "web_caseloadentry",
)  # fmt: skip
# The step log is append-only, so P5's transitions accumulate in the generated clinic; once they
# have grown it by this much the clinic is generated again (the caseload's counts read the
# recent steps, so P4 would otherwise measure a different clinic each run).
STEP_LOG_GROWTH_LIMIT = 1.25


def _step_log_grown(info: ClinicInfo) -> bool:
    from django.db import connection

    generated = info.rows.get("pathways_pathwaystep", 0)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pathways_pathwaystep")
        now = int(cursor.fetchone()[0])
    return bool(generated) and now > generated * STEP_LOG_GROWTH_LIMIT


def _analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {', '.join(WRITTEN_TABLES)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller scales, under 5 minutes")
    parser.add_argument(
        "scenarios", nargs="*", metavar="scenario",
        help=f"which to run (default: all): {', '.join(SCENARIOS)}",
    )  # fmt: skip
    parser.add_argument("--report-only", action="store_true", help="rebuild REPORT.md only")
    parser.add_argument(
        "--regenerate", action="store_true", help="generate the clinic again even if present"
    )
    parser.add_argument(
        "--results", metavar="DIR", help="write the JSON, plots and report here instead of "
        "bench/results (a scratch run that leaves the committed results alone)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    unknown = [name for name in args.scenarios if name not in SCENARIOS]
    if unknown:
        parser.error(
            f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}"
        )
    env = configure()

    from bench.db import ensure_database

    ensure_database(env.database_url, env.database_name)
    import django

    django.setup()
    from bench import generate, report
    from bench.core import Context, write_result
    from bench.db import migrate

    ctx = Context(env=env, quick=args.quick)
    if args.results:
        ctx.results_dir = Path(args.results).resolve()
    if args.report_only:
        report.write_report(ctx)
        return 0
    chosen = args.scenarios or list(SCENARIOS)
    ctx.log(f"bench: database {env.database_name}, redis {env.redis_url}, queue {env.queue}")
    migrate()
    if NEEDS_CLINIC & set(chosen):
        patients = 10_000
        months = 2 if args.quick else 6
        info = generate.clinic_info()
        grown = info is not None and _step_log_grown(info)
        if grown:
            ctx.log("bench: earlier runs' transitions grew the step log by over 25 %; regenerating")
        if (
            args.regenerate or grown or info is None or info.patients < patients
            or info.months < months
        ):  # fmt: skip
            ctx.log(f"bench: generating a clinic of {patients:,} patients, {months} months")
            info = generate.generate_clinic(patients=patients, months=months)
            ctx.log(f"bench: generated in {info.seconds} s: {info.rows}")
        else:
            ctx.log(f"bench: reusing the generated clinic ({info.patients:,} patients)")
    for key in chosen:
        module: ModuleType = importlib.import_module(SCENARIOS[key])
        ctx.log(f"bench: {module.TITLE}")
        started = time.perf_counter()
        result = module.run(ctx)
        path = write_result(ctx, result, started)
        for target in result.targets:
            mark = {True: "met", False: "MISSED", None: "n/a"}[target.met]
            ctx.log(f"  {target.name}: {target.measured} (target {target.target}) {mark}")
        ctx.log(f"  -> {path} ({time.perf_counter() - started:.0f} s)")
        if key in NEEDS_CLINIC:
            _analyze()
    report.write_report(ctx)
    return 0


if __name__ == "__main__":
    sys.exit(main())
