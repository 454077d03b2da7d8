from datetime import datetime, timedelta

from django.db import transaction

from carehub.checkins.models import CheckinSeries
from carehub.pathways.models import Enrolment


@transaction.atomic
def checkin_series_start(
    *, enrolment: Enrolment, series: str, instrument: str, every: timedelta, at: datetime
) -> CheckinSeries:
    """Start a series; an active series of the same name keeps running (starting is idempotent)."""
    active = CheckinSeries.objects.filter(
        enrolment=enrolment, series=series, stopped_at__isnull=True
    ).first()
    if active is not None:
        return active
    return CheckinSeries.objects.create(
        patient_id=enrolment.patient_id,
        enrolment=enrolment,
        series=series,
        instrument=instrument,
        every=every,
        started_at=at,
    )


@transaction.atomic
def checkin_series_stop(
    *, enrolment: Enrolment, at: datetime, series: str | None = None, instrument: str | None = None
) -> int:
    """Stop the active series named, or every active series of an instrument."""
    active = CheckinSeries.objects.filter(enrolment=enrolment, stopped_at__isnull=True)
    if series is not None:
        active = active.filter(series=series)
    elif instrument is not None:
        active = active.filter(instrument=instrument)
    else:
        return 0
    return active.update(stopped_at=at)
