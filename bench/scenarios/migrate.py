"""P9: migrating the generated clinic's running enrolments from intractable-pain v1 to v2.

The dry run (`carehub.pathways.migration.migration_dry_run`, as the command, the API and the
admin page call it) over every running enrolment of the clinic (10,000) must take under 60 s;
applying (`migration_apply`: each enrolment in its own transaction under its row lock, with its
step, timers, audit row and migration row) must reach 100 enrolments a second. The enrolments
applied are then rolled back (`migration_rollback`, also timed), so the clinic is on version 1
again for the next run.
"""

from __future__ import annotations

import time

from bench.core import Context, Result, Target

NAME = "p9_migrate"
TITLE = "P9: migrating running enrolments to a new pathway version"
KEY = "intractable-pain"
DRY_RUN_TARGET_SECONDS = 60.0
APPLY_TARGET_PER_SECOND = 100.0


def run(ctx: Context) -> Result:
    from carehub.accounts.models import User
    from carehub.pathways.migration import (
        migration_apply,
        migration_dry_run,
        migration_get,
        migration_rollback,
        running_enrolments,
    )

    applied_count = 500 if ctx.quick else 2000
    user = User.objects.get(username="physician1")
    migration = migration_get(KEY, 1, 2)
    running = list(
        running_enrolments(migration, clinic_id=user.clinic_id).values_list("pk", flat=True)
    )
    result = Result(
        NAME, TITLE,
        inputs={"pathway": f"{KEY} 1 → 2", "running_enrolments": len(running),
                "applied": applied_count},
    )  # fmt: skip

    started = time.perf_counter()
    report = migration_dry_run(
        definition_key=KEY, from_version=1, to_version=2, clinic_id=user.clinic_id
    )
    dry_seconds = time.perf_counter() - started
    counts = report.counts()
    ctx.log(f"  dry run: {len(report.enrolments)} enrolments in {dry_seconds:.1f} s, {counts}")

    sample = running[:applied_count]
    started = time.perf_counter()
    applied = migration_apply(
        definition_key=KEY, from_version=1, to_version=2, user=user, enrolment_ids=sample,
        approve=True,
    )  # fmt: skip
    apply_seconds = time.perf_counter() - started
    migrated = applied.migrated
    rate = len(migrated) / apply_seconds if apply_seconds else 0.0
    ctx.log(f"  apply: {len(migrated)} in {apply_seconds:.1f} s ({rate:.0f}/s), {applied.counts()}")

    started = time.perf_counter()
    for enrolment_id in migrated:
        migration_rollback(enrolment_id=enrolment_id, user=user)
    rollback_seconds = time.perf_counter() - started
    ctx.log(f"  rollback: {len(migrated)} in {rollback_seconds:.1f} s")

    result.runs.append({
        "dry_run_seconds": round(dry_seconds, 2), "classified": counts,
        "apply_seconds": round(apply_seconds, 2), "apply_counts": applied.counts(),
        "rollback_seconds": round(rollback_seconds, 2),
    })  # fmt: skip
    result.summary = {
        "dry_run_seconds": round(dry_seconds, 1),
        "dry_run_enrolments_per_s": round(len(report.enrolments) / dry_seconds)
        if dry_seconds
        else None,
        "apply_per_s": round(rate),
        "rollback_per_s": round(len(migrated) / rollback_seconds) if rollback_seconds else None,
    }
    result.targets = [
        Target(
            f"P9 dry run over {len(report.enrolments):,} running enrolments",
            f"< {DRY_RUN_TARGET_SECONDS:.0f} s",
            f"{dry_seconds:.1f} s",
            dry_seconds < DRY_RUN_TARGET_SECONDS if len(report.enrolments) >= 10_000 else None,
        ),
        Target(
            "P9 apply",
            f">= {APPLY_TARGET_PER_SECOND:.0f} enrolments/s",
            f"{rate:.0f}/s ({len(migrated)} in {apply_seconds:.1f} s)",
            rate >= APPLY_TARGET_PER_SECOND if migrated else None,
        ),
    ]
    result.notes.append(
        "Run in the bench process through the service the command, the API and the admin call; "
        "each applied enrolment is one transaction (lock, snapshot, plan, writes, audit). The "
        "applied enrolments are rolled back afterwards so the clinic stays on version 1."
    )
    return result
