"""Persistence of pathway instances: the Django side of `workflows.decide`.

Where each kind of state lives (written only by the services in `services.py`):

- `Enrolment`: the instance, its configuration (track → state) and optimistic `version`;
- `PathwayStep`: every decision with its explanation (append-only, enforced by a trigger);
- `PathwayTimer`: durable timers (due work in PostgreSQL, never long Celery countdowns), with
  attempts, a retry time and a dead state;
- `Proposal`: escalations waiting for a clinician's decision;
- `OutboxEffect`: effects to execute after commit, with attempts and a dead state;
- `ProcessedEvent`: event idempotency keys and their outcome.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models.functions import Coalesce

from carehub.core import clock
from carehub.core.models import TimeStampedModel


class EnrolmentStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"
    COMPLETED = "completed", "Completed"


class Enrolment(TimeStampedModel):
    """One patient on one pathway, pinned to the definition version it started on."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="enrolments"
    )
    clinic = models.ForeignKey("clinics.Clinic", on_delete=models.PROTECT, related_name="+")
    definition_key = models.CharField(max_length=64)
    definition_version = models.PositiveIntegerField()
    status = models.CharField(
        max_length=16, choices=EnrolmentStatus.choices, default=EnrolmentStatus.ACTIVE
    )
    # {"<track>": {"state": "<state>", "entered_at": "<ISO 8601>"}}
    configuration = models.JSONField(default=dict)
    version = models.PositiveIntegerField(default=1)
    started_at = models.DateTimeField()
    paused_at = models.DateTimeField(null=True, blank=True)
    pause_reason = models.CharField(max_length=200, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["patient", "definition_key"],
                condition=~models.Q(status="completed"),
                name="enrolment_one_open_per_pathway",
            ),
            models.CheckConstraint(
                condition=~models.Q(status="paused") | models.Q(paused_at__isnull=False),
                name="enrolment_paused_has_time",
            ),
        ]
        indexes = [
            models.Index(fields=["clinic", "status"]),
            # The caseload reads open enrolments by patient (which patients are on it, which are
            # active, which definitions they use) from this index alone.
            models.Index(
                fields=["patient", "status"],
                include=["clinic", "definition_key", "definition_version"],
                condition=models.Q(status__in=["active", "paused"]),
                name="enrolment_open_by_patient",
            ),
            # Which definition versions a clinic's open enrolments use (the caseload's filters
            # and labels): one probe per published version.
            models.Index(
                fields=["clinic", "definition_key", "definition_version"],
                condition=models.Q(status__in=["active", "paused"]),
                name="enrolment_open_definitions",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.patient} on {self.definition_key}@{self.definition_version}"

    def state_of(self, track: str) -> str:
        return str(self.configuration[track]["state"])


class PathwayStep(models.Model):
    """One decision of the engine for one event: what moved, what was proposed, and why.

    Append-only: a database trigger refuses UPDATE and DELETE.
    """

    enrolment = models.ForeignKey(Enrolment, on_delete=models.PROTECT, related_name="steps")
    sequence = models.PositiveIntegerField(help_text="Enrolment version after this step")
    event = models.CharField(max_length=64)
    event_key = models.CharField(max_length=200)
    outcome = models.CharField(max_length=16)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    actor_role = models.CharField(max_length=32, blank=True)
    transitions = models.JSONField(default=list)
    explanation = models.JSONField(default=dict)
    configuration = models.JSONField(default=dict, help_text="Configuration after the step")
    effects = models.JSONField(default=list)
    at = models.DateTimeField()

    class Meta:
        ordering = ["enrolment", "id"]
        indexes = [models.Index(fields=["enrolment", "at"])]

    def __str__(self) -> str:
        return f"{self.event} → {self.outcome}"


class TimerStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    FIRED = "fired", "Fired"
    CANCELLED = "cancelled", "Cancelled"
    SUSPENDED = "suspended", "Suspended (pathway paused)"
    DEAD = "dead", "Dead (gave up)"


class PathwayTimer(TimeStampedModel):
    enrolment = models.ForeignKey(Enrolment, on_delete=models.PROTECT, related_name="timers")
    key = models.CharField(max_length=140, help_text="<track>.<timer name>")
    track = models.CharField(max_length=64)
    state = models.CharField(max_length=64)
    event = models.CharField(max_length=64)
    due_at = models.DateTimeField()
    status = models.CharField(
        max_length=16, choices=TimerStatus.choices, default=TimerStatus.PENDING
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    # Failed dispatches: counted, the error kept, the next try at `next_attempt_at` (NULL: at
    # `due_at`, which stays the clinical due time); dead after TIMER_MAX_ATTEMPTS.
    attempts = models.PositiveIntegerField(default=0, db_default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="", db_default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["enrolment", "key"],
                condition=models.Q(status__in=["pending", "suspended"]),
                name="timer_one_pending_per_kind",
            ),
        ]
        indexes = [
            # The scheduler's claim walks only what is pending, ordered by when it may fire
            # (a failed timer's retry time, else its due time): waiting retries are not claimed.
            models.Index(
                Coalesce("next_attempt_at", "due_at"),
                condition=models.Q(status="pending"),
                name="timer_pending_due",
            ),
            models.Index(
                fields=["updated_at"], condition=models.Q(status="dead"), name="timer_dead"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.key} due {self.due_at:%Y-%m-%d %H:%M}"


class ProposalStatus(models.TextChoices):
    PENDING = "pending", "Waiting for approval"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    WITHDRAWN = "withdrawn", "Withdrawn"


class Proposal(TimeStampedModel):
    """An escalation the engine proposed; it happens only when an allowed clinician approves."""

    enrolment = models.ForeignKey(Enrolment, on_delete=models.PROTECT, related_name="proposals")
    proposal_id = models.CharField(max_length=300)
    track = models.CharField(max_length=64)
    transition_id = models.CharField(max_length=80)
    source = models.CharField(max_length=64)
    target = models.CharField(max_length=64)
    event = models.CharField(max_length=64)
    roles = ArrayField(models.CharField(max_length=32))
    summary = models.CharField(max_length=300)
    evidence = models.JSONField(default=dict)
    status = models.CharField(
        max_length=16, choices=ProposalStatus.choices, default=ProposalStatus.PENDING
    )
    proposed_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reason = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["enrolment", "proposal_id"], name="proposal_unique_per_enrolment"
            ),
            models.CheckConstraint(
                condition=~models.Q(status="rejected") | ~models.Q(reason=""),
                name="proposal_rejection_has_reason",
            ),
        ]
        indexes = [
            models.Index(
                fields=["enrolment"],
                condition=models.Q(status="pending"),
                name="proposal_pending",
            )
        ]

    def __str__(self) -> str:
        return f"{self.source} → {self.target} ({self.get_status_display()})"


class EffectStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    RETRY = "retry", "Waiting to retry"
    DONE = "done", "Done"
    DEAD = "dead", "Dead (gave up)"


class OutboxEffect(TimeStampedModel):
    """An effect decided in a transaction, executed after commit by a Celery task (id only)."""

    enrolment = models.ForeignKey(Enrolment, on_delete=models.PROTECT, related_name="effects")
    # The decision that emitted it, written by the statement that inserts the step. Steps are
    # never deleted (a trigger refuses it), so the column needs no index, no cascade and no
    # foreign-key check (one per outbox row, on the dispatch's hot path).
    step = models.ForeignKey(
        PathwayStep,
        on_delete=models.DO_NOTHING,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    kind = models.CharField(max_length=32)
    payload = models.JSONField()
    idempotency_key = models.CharField(max_length=300, unique=True)
    decided_at = models.DateTimeField(
        default=clock.now, help_text="When the pathway decided it (the step's time)"
    )
    status = models.CharField(
        max_length=16, choices=EffectStatus.choices, default=EffectStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    available_at = models.DateTimeField(help_text="Not executed before this time (retry backoff)")
    claimed_at = models.DateTimeField(null=True, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["available_at"],
                condition=models.Q(status__in=["pending", "retry", "running"]),
                name="outbox_open_available",
            ),
            models.Index(
                fields=["created_at"], condition=models.Q(status="dead"), name="outbox_dead"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.status})"


class ProcessedEvent(models.Model):
    """An event key already applied to an enrolment, with the outcome to answer a redelivery."""

    enrolment = models.ForeignKey(Enrolment, on_delete=models.PROTECT, related_name="+")
    idempotency_key = models.CharField(max_length=200)
    event = models.CharField(max_length=64)
    outcome = models.CharField(max_length=16)
    step = models.ForeignKey(PathwayStep, on_delete=models.PROTECT, related_name="+")
    processed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["enrolment", "idempotency_key"], name="processed_event_unique"
            )
        ]

    def __str__(self) -> str:
        return self.idempotency_key


class MigrationStatus(models.TextChoices):
    APPLIED = "applied", "Applied"
    ROLLED_BACK = "rolled_back", "Rolled back"


class EnrolmentMigration(TimeStampedModel):
    """One enrolment moved from one version of its pathway to another
    (`carehub.pathways.migration`), with what it takes to undo it exactly: the previous version,
    configuration and enrolment version, the timer rows it closed and opened, the proposals and
    tasks it changed and the check-in series it stopped."""

    enrolment = models.ForeignKey(Enrolment, on_delete=models.PROTECT, related_name="migrations")
    definition_key = models.CharField(max_length=64)
    from_version = models.PositiveIntegerField()
    to_version = models.PositiveIntegerField()
    classification = models.CharField(max_length=16)
    status = models.CharField(
        max_length=16, choices=MigrationStatus.choices, default=MigrationStatus.APPLIED
    )
    report = models.JSONField(default=dict, help_text="The plan, as the dry run shows it")
    previous = models.JSONField(default=dict, help_text="What a rollback restores")
    version_after = models.PositiveIntegerField(help_text="The enrolment's version it left")
    step = models.ForeignKey(PathwayStep, on_delete=models.PROTECT, related_name="+")
    applied_at = models.DateTimeField()
    applied_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    rolled_back_at = models.DateTimeField(null=True, blank=True)
    rolled_back_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        constraints = [
            # A re-run migrates nothing twice: one applied migration per enrolment and target.
            models.UniqueConstraint(
                fields=["enrolment", "to_version"],
                condition=models.Q(status="applied"),
                name="migration_applied_once",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.definition_key} v{self.from_version} → v{self.to_version} ({self.status})"
