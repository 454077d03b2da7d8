"""The only place carehub reads the current time (tests travel with time-machine)."""

from datetime import datetime

from django.utils import timezone


def now() -> datetime:
    return timezone.now()
