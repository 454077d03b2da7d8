"""What carehub tells a clinic's other systems: the change feed and webhook deliveries.

A `ChangeEvent` is written in the same transaction as the change it reports (a transition, a
proposal, a flag, a check-in, a task, a dead message), by the service that makes the change.
A database trigger (migration 0001) gives every active subscription of the clinic that asked for
the event's type one `WebhookDelivery` row in that same transaction: a change and its
deliveries commit together or not at all. The pull feed (`GET /api/v1/events`) reads the same
`ChangeEvent` rows. Payloads carry ids and codes only, never free text.
"""

from __future__ import annotations

import secrets
import uuid

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Func

from carehub.core.models import TimeStampedModel


class ChangeType(models.TextChoices):
    ENROLMENT_TRANSITIONED = "enrolment.transitioned", "Enrolment transitioned"
    PROPOSAL_OPENED = "proposal.opened", "Proposal opened"
    PROPOSAL_DECIDED = "proposal.decided", "Proposal decided"
    FLAG_RAISED = "flag.raised", "Flag raised"
    FLAG_ACKNOWLEDGED = "flag.acknowledged", "Flag acknowledged"
    FLAG_RESOLVED = "flag.resolved", "Flag resolved"
    CHECKIN_ANSWERED = "checkin.answered", "Check-in answered"
    CHECKIN_MISSED = "checkin.missed", "Check-in missed"
    TASK_OPENED = "task.opened", "Task opened"
    TASK_CLOSED = "task.closed", "Task closed"
    MESSAGE_DEAD = "message.dead", "Message dead"


class CurrentTransactionId(Func):
    """The writing transaction's id (`pg_current_xact_id()`, as a bigint): the feed's order."""

    template = "(pg_current_xact_id()::text::bigint)"
    output_field = models.BigIntegerField()


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and 32 random bytes in base64."""
    import base64

    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class WebhookSubscription(TimeStampedModel):
    """A clinic's receiver: where to POST which event types, signed with `secret`."""

    clinic = models.ForeignKey(
        "clinics.Clinic", on_delete=models.PROTECT, related_name="webhook_subscriptions"
    )
    url = models.URLField(max_length=500, help_text="HTTPS address the events are POSTed to")
    event_types = ArrayField(
        models.CharField(max_length=40, choices=ChangeType.choices),
        help_text="The event types sent to this receiver",
    )
    secret = models.CharField(
        max_length=100, default=new_secret, help_text="Standard Webhooks signing secret"
    )
    active = models.BooleanField(default=True)
    description = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        "accounts.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.url} ({', '.join(self.event_types)})"


class ChangeEvent(models.Model):
    """One change, as the feed and the webhooks report it (append-only: a trigger refuses UPDATE
    and DELETE). `txid` is the writing transaction's id: readers order by (`txid`, `id`) and see
    only rows of transactions older than every transaction still running, so a row that commits
    late is never skipped."""

    id = models.BigAutoField(primary_key=True)
    public_id = models.UUIDField(
        unique=True, default=uuid.uuid4, help_text="The event id receivers dedupe on"
    )
    clinic = models.ForeignKey("clinics.Clinic", on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    enrolment = models.ForeignKey(
        "pathways.Enrolment", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    type = models.CharField(max_length=40, choices=ChangeType.choices)
    subject_id = models.BigIntegerField(help_text="The id of the row the event is about")
    data = models.JSONField(default=dict, help_text="Ids and codes only, never free text")
    occurred_at = models.DateTimeField()
    txid = models.BigIntegerField(db_default=CurrentTransactionId(), editable=False)

    class Meta:
        indexes = [
            models.Index(fields=["clinic", "txid", "id"], name="change_feed_order"),
        ]

    def __str__(self) -> str:
        return f"{self.type} #{self.subject_id} @ {self.occurred_at:%Y-%m-%d %H:%M}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    DELIVERED = "delivered", "Delivered"
    DEAD = "dead", "Dead (gave up)"


class WebhookDelivery(models.Model):
    """One event for one subscription: sent in order per patient, retried with backoff, dead
    after `WEBHOOK_MAX_ATTEMPTS`, resent on request."""

    id = models.BigAutoField(primary_key=True)
    subscription = models.ForeignKey(
        WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.ForeignKey(ChangeEvent, on_delete=models.PROTECT, related_name="deliveries")
    status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    claimed_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "event"], name="webhook_delivery_once_per_event"
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="webhook_delivery_due",
                condition=models.Q(status="pending"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event.type} → {self.subscription.url}: {self.status}"
