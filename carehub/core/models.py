from django.db import models


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class SchedulerHeartbeat(models.Model):
    """Last time the periodic scheduler (Celery beat) got a task through to a worker.

    /healthz reports the scheduler lag from it: beat → broker → worker → database is the whole
    path every timer and reminder takes.
    """

    name = models.CharField(primary_key=True, max_length=64)
    last_beat_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} @ {self.last_beat_at:%Y-%m-%d %H:%M:%S}"
