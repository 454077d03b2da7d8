"""Form submissions of the web UI, by the idempotency key each form carries in a hidden field.

A submission is claimed before its action runs (a unique key): a second submit of the same form
(a double click, a reload that re-posts) finds the claim and does nothing again. Actions that
send a pathway event also pass the key to `pathway_dispatch`, whose own log answers a replay.
"""

from django.conf import settings
from django.db import models


class SubmissionStatus(models.TextChoices):
    RUNNING = "running", "Running"
    DONE = "done", "Done"


class FormSubmission(models.Model):
    key = models.CharField(max_length=200, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    action = models.CharField(max_length=64)
    status = models.CharField(
        max_length=16, choices=SubmissionStatus.choices, default=SubmissionStatus.RUNNING
    )
    result = models.CharField(max_length=300, blank=True, help_text="What the user was told")
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.action} {self.status}"
