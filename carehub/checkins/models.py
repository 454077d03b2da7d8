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
