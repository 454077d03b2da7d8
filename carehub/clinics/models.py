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

    class Meta:
        ordering = ["name"]

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
