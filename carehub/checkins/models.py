"""Check-in series started and stopped by pathway effects (the schedule is built on these)."""

from datetime import timedelta

from django.db import models

from carehub.core.models import TimeStampedModel


class CheckinSeries(TimeStampedModel):
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="checkin_series"
    )
    enrolment = models.ForeignKey(
        "pathways.Enrolment", on_delete=models.PROTECT, related_name="checkin_series"
    )
    series = models.CharField(max_length=64, help_text="Name within the enrolment, e.g. 'peg'")
    instrument = models.CharField(max_length=32)
    every = models.DurationField()
    started_at = models.DateTimeField()
    stopped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "check-in series"
        constraints = [
            models.UniqueConstraint(
                fields=["enrolment", "series"],
                condition=models.Q(stopped_at__isnull=True),
                name="checkin_series_one_active",
            ),
            models.CheckConstraint(
                condition=models.Q(every__gte=timedelta(minutes=1)), name="checkin_every_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.instrument} every {self.every}"


class CheckinStatus(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    OPEN = "open", "Open for answers"
    ANSWERED = "answered", "Answered"
    MISSED = "missed", "Missed"
    CANCELLED = "cancelled", "Cancelled (series stopped)"
    SUSPENDED = "suspended", "Suspended (pathway paused)"


class Checkin(TimeStampedModel):
    """One occurrence of a series: due at a moment in the patient's send window, open for
    answers until `closes_at`, then answered or missed."""

    series = models.ForeignKey(CheckinSeries, on_delete=models.PROTECT, related_name="checkins")
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="+")
    enrolment = models.ForeignKey("pathways.Enrolment", on_delete=models.PROTECT, related_name="+")
    instrument = models.CharField(max_length=32)
    instrument_version = models.PositiveIntegerField(null=True, blank=True)
    sequence = models.PositiveIntegerField()
    due_at = models.DateTimeField()
    closes_at = models.DateTimeField()
    status = models.CharField(
        max_length=16, choices=CheckinStatus.choices, default=CheckinStatus.SCHEDULED
    )
    status_before_pause = models.CharField(max_length=16, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    answers = models.JSONField(default=dict, blank=True)
    score = models.FloatField(null=True, blank=True)
    band = models.CharField(max_length=64, blank=True)
    red_flags = models.JSONField(default=list, blank=True)
    observation = models.ForeignKey(
        "observations.Observation",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["series", "sequence"], name="checkin_sequence_unique"),
            models.CheckConstraint(
                condition=models.Q(closes_at__gt=models.F("due_at")), name="checkin_window_ordered"
            ),
        ]
        indexes = [
            models.Index(
                fields=["due_at"], condition=models.Q(status="scheduled"), name="checkin_due"
            ),
            models.Index(
                fields=["closes_at"], condition=models.Q(status="open"), name="checkin_open_closes"
            ),
            models.Index(fields=["patient", "due_at"]),
            # The caseload's "overdue or missed" count reads only these few rows per patient.
            models.Index(
                fields=["patient", "due_at", "closes_at"],
                condition=models.Q(status__in=["open", "missed"]),
                name="checkin_needs_attention",
            ),
            # The caseload's count of patients with overdue or missed check-ins reads the
            # patients of each kind straight from these (index-only, one pass each).
            models.Index(
                fields=["due_at", "patient"],
                condition=models.Q(status="open"),
                name="checkin_open_due_patient",
            ),
            models.Index(
                fields=["closes_at", "patient"],
                condition=models.Q(status="missed"),
                name="checkin_missed_patient",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.instrument} #{self.sequence} due {self.due_at:%Y-%m-%d %H:%M}"


class CheckinLink(models.Model):
    """A link sent to the patient for one check-in. Only the SHA-256 of the token is stored; the
    token itself exists in the message the patient receives and nowhere else."""

    checkin = models.ForeignKey(Checkin, on_delete=models.CASCADE, related_name="links")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    last_opened_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"link for check-in {self.checkin_id}"
