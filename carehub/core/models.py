from django.conf import settings
from django.db import models


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class Urgency(models.TextChoices):
    """Routine or urgent: a message's urgency, and a task's priority (its reminder is sent with
    it)."""

    ROUTINE = "routine", "Routine"
    URGENT = "urgent", "Urgent"


class SchedulerHeartbeat(models.Model):
    """Last time the periodic scheduler (Celery beat) got a task through to a worker.

    /healthz reports the scheduler lag from it: beat → broker → worker → database is the whole
    path every timer and reminder takes.
    """

    name = models.CharField(primary_key=True, max_length=64)
    last_beat_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} @ {self.last_beat_at:%Y-%m-%d %H:%M:%S}"


class IdempotencyStatus(models.TextChoices):
    IN_PROGRESS = "in_progress", "In progress"
    DONE = "done", "Done"
    INCOMPLETE = "incomplete", "Incomplete"


class IdempotencyRecord(models.Model):
    """A write sent with a one-time key (the API's `Idempotency-Key` header, a page form's hidden
    key), one per actor and key (carehub.core.idempotency, ADR 0013): the fingerprint of the
    request, whether it is still running, and the first answer, which a retry of the same
    request gets again. Kept `IDEMPOTENCY_KEY_HOURS`, then pruned."""

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=100)
    operation = models.CharField(max_length=64, help_text="e.g. enrolment.pause")
    target = models.CharField(max_length=200, help_text="What it acted on: a URL or an object")
    fingerprint = models.CharField(
        max_length=64, help_text="SHA-256 of the operation, target, canonical body and actor"
    )
    status = models.CharField(
        max_length=16, choices=IdempotencyStatus.choices, default=IdempotencyStatus.IN_PROGRESS
    )
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True, help_text="The API's first answer")
    message = models.CharField(max_length=500, blank=True, help_text="What the page said")
    progress = models.JSONField(
        default=dict, blank=True, help_text="Steps of a write in several steps already committed"
    )
    created_at = models.DateTimeField()
    started_at = models.DateTimeField(help_text="When the request now holding it began")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["actor", "key"], name="idempotency_record_unique_key")
        ]
        indexes = [models.Index(fields=["created_at"], name="idempotency_record_created")]

    def __str__(self) -> str:
        return f"{self.operation} {self.status}"
