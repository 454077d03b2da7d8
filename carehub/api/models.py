"""What the API itself stores besides its tokens: the keys of retryable writes."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class IdempotentRequest(models.Model):
    """An API write a client may retry: its `Idempotency-Key` (per user), the operation it named
    (including its target) and the id of the row it created. A retry with the same key answers
    that row again instead of creating a second one."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=100)
    operation = models.CharField(max_length=100)
    object_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotent_request_unique_key")
        ]

    def __str__(self) -> str:
        return f"{self.operation} by user {self.user_id}"
