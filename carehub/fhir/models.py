"""Bulk exports (`Group/<clinic>/$export`): a job and its ndjson files, kept in the database so
that the web process serving the files and the worker writing them share nothing else."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from carehub.core.models import TimeStampedModel


class ExportStatus(models.TextChoices):
    ACCEPTED = "accepted", "Accepted"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"


class ExportJob(TimeStampedModel):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    clinic = models.ForeignKey("clinics.Clinic", on_delete=models.PROTECT, related_name="+")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    request_url = models.CharField(max_length=2000)
    types = models.JSONField(default=list, help_text="Resource types to export")
    since = models.DateTimeField(null=True, blank=True)
    status = models.CharField(
        max_length=16, choices=ExportStatus.choices, default=ExportStatus.ACCEPTED
    )
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    patient_ids = models.JSONField(default=list, help_text="Patients exported (for the audit)")

    def __str__(self) -> str:
        return f"export {self.public_id} ({self.status})"


class ExportFile(models.Model):
    job = models.ForeignKey(ExportJob, on_delete=models.CASCADE, related_name="files")
    resource_type = models.CharField(max_length=64)
    count = models.PositiveIntegerField()
    content = models.TextField(help_text="ndjson: one resource per line")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["job", "resource_type"], name="export_file_per_type")
        ]

    def __str__(self) -> str:
        return f"{self.resource_type} of {self.job_id}"
