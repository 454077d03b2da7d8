"""Delivery of messages to patients and staff.

A `Message` is one message to one recipient, written in PostgreSQL before anything is sent and
carrying its own state (due time, attempts, lease, errors). Every change of state appends a
`DeliveryEvent` with a human reason, so "why was this sent, or not sent?" always has an answer.
Redis only ever carries the message id (see ADR 0006).
"""

from __future__ import annotations

import uuid
from datetime import time

from django.conf import settings
from django.db import models

from carehub.core.models import TimeStampedModel, Urgency
from carehub.patients.models import Channel


class MessageStatus(models.TextChoices):
    PENDING = "pending", "Pending (waiting for its time)"
    QUEUED = "queued", "Queued (published to a worker)"
    SENDING = "sending", "Sending (a worker holds it)"
    SENT = "sent", "Sent"
    DEFERRED = "deferred", "Deferred (quiet hours)"
    SUPPRESSED = "suppressed", "Suppressed (no longer needed)"
    OPTED_OUT = "opted_out", "Not sent: opted out"
    OVER_BUDGET = "over_budget", "Not sent: over the daily budget"
    HELD_FOR_DIGEST = "held_for_digest", "Held for the daily digest"
    RETRY = "retry", "Waiting to retry"
    DEAD = "dead", "Dead (gave up)"


# Rows the dispatcher claims when their `not_before` has come.
DUE_STATUSES = (MessageStatus.PENDING, MessageStatus.DEFERRED, MessageStatus.RETRY)
# Rows handed to a worker: republished by the sweeper when nobody finished them.
IN_FLIGHT_STATUSES = (MessageStatus.QUEUED, MessageStatus.SENDING)
# Nothing more will happen to these (a dead message can be resent by staff).
FINAL_STATUSES = (
    MessageStatus.SENT,
    MessageStatus.SUPPRESSED,
    MessageStatus.OPTED_OUT,
    MessageStatus.OVER_BUDGET,
    MessageStatus.DEAD,
)


# The channels a message goes by are the ones a patient prefers (one declaration).
DeliveryChannel = Channel


class Purpose:
    """The purposes carehub itself uses; other apps may use their own (a short slug)."""

    CHECKIN_REQUEST = "checkin_request"
    CHECKIN_REMINDER = "checkin_reminder"
    CHECKIN_CRISIS = "checkin_crisis"
    RED_FLAG_ALERT = "red_flag_alert"
    TASK_REMINDER = "task_reminder"
    PATHWAY_NOTICE = "pathway_notice"
    ESCALATION_PROPOSED = "escalation_proposed"
    DIGEST = "digest"


class Message(TimeStampedModel):
    clinic = models.ForeignKey("clinics.Clinic", on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(
        "patients.Patient",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="messages",
        help_text="The patient the message is about (empty only for a staff digest)",
    )
    # The recipient: this member of staff, or the patient when empty.
    to_staff = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Empty: the message is for the patient",
    )
    purpose = models.CharField(max_length=32)
    urgency = models.CharField(max_length=16, choices=Urgency.choices, default=Urgency.ROUTINE)
    body = models.TextField(help_text="The text, or a template a renderer completes at send time")
    subject_key = models.CharField(
        max_length=100, blank=True, help_text="What it is about, e.g. checkin:123 or task:45"
    )
    idempotency_key = models.CharField(max_length=400, unique=True)
    why = models.CharField(max_length=500, help_text="Why this message was decided")
    channel = models.CharField(
        max_length=16, choices=DeliveryChannel.choices, blank=True, help_text="Chosen at send time"
    )
    status = models.CharField(
        max_length=16, choices=MessageStatus.choices, default=MessageStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    not_before = models.DateTimeField(help_text="Not sent before this time (UTC)")
    claimed_at = models.DateTimeField(
        null=True, blank=True, help_text="When it was queued, or taken by a worker (the lease)"
    )
    sent_at = models.DateTimeField(null=True, blank=True)
    provider_message_id = models.CharField(max_length=200, blank=True)
    provider_status = models.CharField(
        max_length=16,
        blank=True,
        default="",
        db_default="",  # rows written by COPY (the benchmark's generator) leave it out
        help_text="The last state the provider reported (queued, sent, delivered, undelivered, "
        "failed); empty when it reports none",
    )
    last_error = models.TextField(blank=True)
    source_effect = models.ForeignKey(
        "pathways.OutboxEffect", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    digest = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="digested",
        help_text="The daily digest that carries this held message",
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(patient__isnull=False) | models.Q(to_staff__isnull=False),
                name="message_patient_or_staff",
            ),
        ]
        indexes = [
            # The dispatcher's claim: due work only, however many sent rows pile up.
            models.Index(
                fields=["not_before"],
                condition=models.Q(status__in=["pending", "deferred", "retry"]),
                name="message_due",
            ),
            # The sweeper: queued or sending rows whose worker never finished.
            models.Index(
                fields=["claimed_at"],
                condition=models.Q(status__in=["queued", "sending"]),
                name="message_in_flight",
            ),
            # The patient's daily budget: what reached them on a given day.
            models.Index(
                fields=["patient", "sent_at"],
                condition=models.Q(to_staff__isnull=True, status="sent"),
                name="message_sent_to_patient",
            ),
            models.Index(
                fields=["to_staff", "created_at"],
                condition=models.Q(status="held_for_digest"),
                name="message_held_for_digest",
            ),
            models.Index(fields=["purpose", "subject_key"], name="message_subject"),
            models.Index(
                fields=["created_at"], condition=models.Q(status="dead"), name="message_dead"
            ),
            # Delivery-status callbacks find their message by the provider's id.
            models.Index(
                fields=["provider_message_id"],
                condition=~models.Q(provider_message_id=""),
                name="message_provider_id",
            ),
        ]

    @property
    def to_patient(self) -> bool:
        return self.to_staff_id is None

    def recipient_label(self) -> str:
        return "patient" if self.to_patient else f"staff #{self.to_staff_id}"

    def __str__(self) -> str:
        return f"{self.purpose} #{self.pk} to {self.recipient_label()} ({self.status})"


# A delivery event's status is the status the message takes, or what its provider reported
# afterwards: a sent message stays sent when the provider confirms delivery.
DELIVERED = "delivered"
EVENT_STATUS_CHOICES = [*MessageStatus.choices, (DELIVERED, "Delivered (the provider confirmed)")]


class DeliveryEvent(models.Model):
    """One change of a message's state and the reason for it. Append-only (a database trigger
    refuses UPDATE and DELETE)."""

    message = models.ForeignKey(Message, on_delete=models.PROTECT, related_name="events")
    at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=EVENT_STATUS_CHOICES)
    reason = models.CharField(max_length=1000)
    attempt = models.PositiveSmallIntegerField(default=0)
    related_message = models.ForeignKey(
        Message,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="e.g. the digest that carried it",
    )

    class Meta:
        ordering = ["pk"]  # the order the changes were recorded in
        indexes = [models.Index(fields=["message", "at"])]

    def __str__(self) -> str:
        return f"{self.get_status_display()}: {self.reason}"


def default_daily_budget() -> int:
    return int(settings.MESSAGING_PATIENT_DAILY_BUDGET)


class ContactPreference(TimeStampedModel):
    """What a patient agreed to receive. The channels and send window live on the patient."""

    patient = models.OneToOneField(
        "patients.Patient", on_delete=models.CASCADE, related_name="contact_preference"
    )
    opted_out = models.BooleanField(default=False, help_text="No messages at all")
    opted_out_sms = models.BooleanField(default=False)
    opted_out_email = models.BooleanField(default=False)
    opted_out_in_app = models.BooleanField(default=False)
    daily_budget = models.PositiveSmallIntegerField(
        default=default_daily_budget, help_text="At most this many routine messages a (local) day"
    )

    def opted_out_of(self, channel: str) -> bool:
        return self.opted_out or bool(getattr(self, f"opted_out_{channel}", False))

    def __str__(self) -> str:
        return f"Contact preferences of patient #{self.patient_id}"


class StaffNotificationPreference(TimeStampedModel):
    staff = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preference"
    )
    daily_digest = models.BooleanField(
        default=False, help_text="Routine messages wait for one daily digest (urgent ones never)"
    )
    digest_hour = models.TimeField(
        default=time(8, 0), help_text="Local time of the digest, in the clinic's time zone"
    )
    channel = models.CharField(
        max_length=16,
        choices=[(DeliveryChannel.IN_APP, "In-app"), (DeliveryChannel.EMAIL, "E-mail")],
        default=DeliveryChannel.IN_APP,
    )

    def __str__(self) -> str:
        return f"Notification preferences of {self.staff}"


class InAppNotification(TimeStampedModel):
    """A message delivered inside carehub (the patient portal or the staff inbox)."""

    message = models.OneToOneField(Message, on_delete=models.PROTECT, related_name="in_app")
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    staff = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="in_app_notifications",
    )
    body = models.TextField()
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(patient__isnull=True, staff__isnull=False)
                | models.Q(patient__isnull=False, staff__isnull=True),
                name="in_app_one_recipient",
            )
        ]

    def __str__(self) -> str:
        return self.body[:60]


def new_provider_id() -> str:
    return f"rec-{uuid.uuid4().hex}"


class RecordedMessage(models.Model):
    """What the development SMS gateway and e-mail backend "sent": nothing leaves the system.
    Like a real provider they accept an idempotency key and deliver a key once."""

    channel = models.CharField(max_length=16)
    to = models.CharField(max_length=254)
    subject = models.CharField(max_length=300, blank=True)
    body = models.TextField()
    idempotency_key = models.CharField(max_length=400, unique=True)
    provider_id = models.CharField(max_length=64, default=new_provider_id, unique=True)
    at = models.DateTimeField()
    duplicate_requests = models.PositiveIntegerField(
        default=0, help_text="Later requests with the same key (accepted, not delivered again)"
    )

    class Meta:
        verbose_name = "sent message (development backends)"
        verbose_name_plural = "sent messages (development backends)"
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.channel} to {self.to} at {self.at:%Y-%m-%d %H:%M:%S}"


class ProviderStatus(models.TextChoices):
    """What an SMS or e-mail provider reports about a message it accepted, in carehub's words
    (each provider's own statuses are mapped onto these)."""

    QUEUED = "queued", "Queued at the provider"
    SENT = "sent", "Sent (handed to the carrier or mail server)"
    DELIVERED = "delivered", "Delivered"
    UNDELIVERED = "undelivered", "Undelivered"
    FAILED = "failed", "Failed"


# Later states win; a report of an earlier or equal state changes nothing.
PROVIDER_STATUS_RANK = {
    "": 0,
    ProviderStatus.QUEUED: 1,
    ProviderStatus.SENT: 2,
    ProviderStatus.DELIVERED: 3,
    ProviderStatus.UNDELIVERED: 3,
    ProviderStatus.FAILED: 3,
}


class ProviderReport(models.Model):
    """One delivery-status report (a provider's callback), kept as received. A repeated report
    (same provider, provider message id and status) is not stored again.

    A report may arrive before the send that it is about has recorded the provider's id (the
    provider answers the callback faster than our worker commits): it then waits here, unapplied,
    and is applied when the message is marked sent (or by the sweep)."""

    provider = models.CharField(max_length=40, help_text="e.g. twilio, http, email:postmark")
    provider_message_id = models.CharField(max_length=200)
    status = models.CharField(max_length=16, choices=ProviderStatus.choices)
    provider_status = models.CharField(max_length=40, help_text="The provider's own word")
    error_code = models.CharField(max_length=40, blank=True)
    error = models.CharField(max_length=300, blank=True)
    received_at = models.DateTimeField()
    message = models.ForeignKey(
        Message, on_delete=models.PROTECT, null=True, blank=True, related_name="provider_reports"
    )
    applied_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "provider_message_id", "status"],
                name="provider_report_once",
            )
        ]
        indexes = [
            models.Index(
                fields=["provider_message_id"],
                condition=models.Q(applied_at__isnull=True),
                name="provider_report_pending",
            )
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.provider_message_id}: {self.status}"
