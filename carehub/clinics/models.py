from django.db import models

from carehub.core.models import TimeStampedModel
from carehub.core.validators import validate_time_zone


class Clinic(TimeStampedModel):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=64, unique=True)
    time_zone = models.CharField(
        max_length=64, default="UTC", validators=[validate_time_zone], help_text="IANA time zone"
    )
    phone = models.CharField(
        max_length=32,
        blank=True,
        db_default="",  # rows written by SQL (bench data, COPY) get one too
        help_text="The number patients call, shown on their pages (E.164, e.g. +15035550100)",
    )
    # A sandbox clinic (ADR 0024) is for integrators and trainers: its time is its test clock,
    # moved only by its admin, and its messages reach the recording backends only. Fixed when
    # the clinic is created (a trigger refuses changing it): a production clinic never
    # becomes a sandbox, nor a sandbox a production clinic.
    is_sandbox = models.BooleanField(
        default=False, db_default=False, editable=False, help_text="Fixed at creation"
    )
    test_clock_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="A sandbox's now (its test clock)"
    )
    # The advance under way (the lock: one at a time): where it goes and when it was asked for.
    advance_to = models.DateTimeField(null=True, blank=True, editable=False)
    advance_requested_at = models.DateTimeField(null=True, blank=True, editable=False)
    advance_requested_by = models.ForeignKey(
        "accounts.User",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
    advance_error = models.TextField(blank=True, default="", db_default="", editable=False)

    class Meta:
        ordering = ["name"]
        constraints = [
            # A sandbox always has a test clock; a production clinic never has one (nor an
            # advance).
            models.CheckConstraint(
                condition=models.Q(is_sandbox=True, test_clock_at__isnull=False)
                | models.Q(is_sandbox=False, test_clock_at__isnull=True, advance_to__isnull=True),
                name="clinic_test_clock_only_in_sandbox",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ClinicThreshold(TimeStampedModel):
    """A clinic's value for a pathway threshold, with where the number comes from.

    Pathway definitions carry a default and its source for every threshold; a clinic overrides
    the value here (e.g. MBB relief 50 % "ASRA 2020" instead of 80 % "Medicare LCD"). The guard
    explanation shows the value and this source.
    """

    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="thresholds")
    pathway_key = models.CharField(max_length=64)
    name = models.CharField(max_length=64)
    value = models.JSONField(help_text="A number, true/false or text")
    source = models.CharField(max_length=200, help_text="e.g. 'Medicare LCD L33906', 'ASRA 2020'")
    note = models.TextField(blank=True)
    updated_by = models.ForeignKey(
        "accounts.User", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["clinic", "pathway_key", "name"], name="threshold_unique_per_clinic"
            ),
            models.CheckConstraint(condition=~models.Q(source=""), name="threshold_has_source"),
        ]

    def __str__(self) -> str:
        return f"{self.pathway_key}.{self.name} = {self.value} ({self.source})"
