"""`manage.py pathway migrate KEY FROM TO`: the command line's door to `pathways.migration`."""

from __future__ import annotations

import json
import uuid
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from carehub.accounts.models import User
from carehub.clinics.models import Clinic
from carehub.core.exceptions import ApplicationError
from carehub.pathways.migration import migration_apply, migration_dry_run, migration_rollback
from carehub.pathways.models import Enrolment


def add_migrate_arguments(parser: ArgumentParser) -> None:
    parser.add_argument("pathway", help="the published pathway key")
    parser.add_argument("from_version", type=int, help="the version enrolments are on")
    parser.add_argument("to_version", type=int, help="the version they move to")
    parser.add_argument(
        "--dry-run", action="store_true", help="report what would change; write nothing"
    )
    parser.add_argument("--clinic", default=None, help="only this clinic's enrolments (slug)")
    parser.add_argument(
        "--enrolment",
        action="append",
        default=None,
        dest="enrolments",
        help="only this enrolment (its public id or number); repeat for a list",
    )
    parser.add_argument(
        "--user", default=None, help="the member of staff applying it (username; audited)"
    )
    parser.add_argument(
        "--approve",
        action="store_true",
        help="also migrate those that need a clinician's approval (--user must be a physician)",
    )
    parser.add_argument(
        "--rollback",
        action="store_true",
        help="roll back the listed enrolments' last migration (--enrolment)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the report as JSON")


def _enrolment_ids(values: list[str] | None) -> list[int] | None:
    if values is None:
        return None
    ids = []
    for value in values:
        try:
            query = {"public_id": uuid.UUID(value)} if "-" in value else {"pk": int(value)}
        except ValueError as exc:
            raise CommandError(f"{value!r} is not an enrolment id") from exc
        found = Enrolment.objects.filter(**query).values_list("pk", flat=True).first()
        if found is None:
            raise CommandError(f"no enrolment {value}")
        ids.append(found)
    return ids


def run_migrate(command: BaseCommand, options: dict[str, Any]) -> None:
    key, old, new = options["pathway"], options["from_version"], options["to_version"]
    clinic_id = None
    if options["clinic"]:
        clinic = Clinic.objects.filter(slug=options["clinic"]).first()
        if clinic is None:
            raise CommandError(f"no clinic '{options['clinic']}'")
        clinic_id = clinic.pk
    ids = _enrolment_ids(options["enrolments"])
    user = None
    if options["user"]:
        user = User.objects.filter(username=options["user"]).first()
        if user is None:
            raise CommandError(f"no user '{options['user']}'")
    try:
        if options["rollback"]:
            if not ids:
                raise CommandError("--rollback needs the enrolments to roll back (--enrolment)")
            for enrolment_id in ids:
                done = migration_rollback(enrolment_id=enrolment_id, user=user)
                command.stdout.write(
                    f"enrolment {enrolment_id}: back on version {done.from_version}"
                )
            return
        report = migration_dry_run(
            definition_key=key,
            from_version=old,
            to_version=new,
            clinic_id=clinic_id,
            enrolment_ids=ids,
        )
        if options["json"] is not None:
            options["json"].write_text(json.dumps(report.as_dict(), indent=2), encoding="utf-8")
        if options["dry_run"]:
            command.stdout.write(report.text())
            return
        result = migration_apply(
            definition_key=key,
            from_version=old,
            to_version=new,
            user=user,
            clinic_id=clinic_id,
            enrolment_ids=ids,
            approve=options["approve"],
        )
    except ApplicationError as exc:
        raise CommandError(str(exc)) from exc
    counts = result.counts()
    command.stdout.write(
        f"{key} version {old} → {new}: {counts['migrated']} migrated, {counts['already']} "
        f"already on version {new}, {counts['needs_approval']} waiting for a clinician's "
        f"approval (--approve), {counts['blocked']} blocked, {counts['locked']} busy (run "
        f"again), {counts['skipped']} skipped"
    )
