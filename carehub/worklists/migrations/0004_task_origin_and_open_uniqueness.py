"""Tasks record where they came from (step, track, state) and why they were closed; an open task
and an unresolved flag are unique per (enrolment, discipline, title) and (patient, code).

Duplicates already open are merged first: the oldest stays, the others are closed (tasks:
cancelled with the reason; flags: resolved, the one kept taking the highest severity)."""

from typing import Any

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import Count, Min
from django.utils import timezone

_RANK = {"info": 0, "warning": 1, "urgent": 2}


def merge_duplicates(apps: Any, schema_editor: Any) -> None:
    CareTask = apps.get_model("worklists", "CareTask")
    Flag = apps.get_model("worklists", "Flag")
    now = timezone.now()
    groups = (
        CareTask.objects.filter(status="open", enrolment__isnull=False)
        .values("enrolment_id", "discipline", "title")
        .annotate(n=Count("id"), first=Min("id"))
        .filter(n__gt=1)
    )
    for group in groups:
        CareTask.objects.filter(
            status="open", enrolment_id=group["enrolment_id"], discipline=group["discipline"],
            title=group["title"],
        ).exclude(pk=group["first"]).update(
            status="cancelled", completed_at=now, updated_at=now,
            closed_reason=f"Duplicate of the open task #{group['first']}",
        )  # fmt: skip
    groups = (
        Flag.objects.exclude(status="resolved")
        .values("patient_id", "code")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    for group in groups:
        flags = list(
            Flag.objects.exclude(status="resolved")
            .filter(patient_id=group["patient_id"], code=group["code"])
            .order_by("raised_at", "pk")
        )
        kept, duplicates = flags[0], flags[1:]
        severity = max((flag.severity for flag in flags), key=lambda s: _RANK.get(s, 0))
        if severity != kept.severity:
            Flag.objects.filter(pk=kept.pk).update(severity=severity, updated_at=now)
        Flag.objects.filter(pk__in=[flag.pk for flag in duplicates]).update(
            status="resolved", updated_at=now
        )


class Migration(migrations.Migration):
    dependencies = [
        ("pathways", "0005_outbox_step"),
        ("worklists", "0003_task_dedupe_key"),
    ]

    operations = [
        migrations.AddField(
            model_name="caretask",
            name="closed_reason",
            field=models.CharField(blank=True, default="", max_length=300),
        ),
        migrations.AddField(
            model_name="caretask",
            name="source_step",
            field=models.ForeignKey(
                blank=True, db_index=False, null=True,
                on_delete=django.db.models.deletion.DO_NOTHING, related_name="+",
                to="pathways.pathwaystep",
            ),  # fmt: skip
        ),
        migrations.AddField(
            model_name="caretask",
            name="state",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AddField(
            model_name="caretask",
            name="track",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.RunPython(merge_duplicates, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="caretask",
            constraint=models.UniqueConstraint(
                condition=models.Q(("status", "open")),
                fields=("enrolment", "discipline", "title"),
                name="task_one_open_per_title",
            ),
        ),
        migrations.AddConstraint(
            model_name="flag",
            constraint=models.UniqueConstraint(
                condition=models.Q(("status", "resolved"), _negated=True),
                fields=("patient", "code"),
                name="flag_one_unresolved_per_code",
            ),
        ),
    ]
