"""What check-ins do for a pathway's enrolment, registered with pathways from
CheckinsConfig.ready() (ADR 0032): pathways sits below check-ins and imports none of it.

- Pause hooks (carehub.pathways.lifecycle): scheduled and open check-ins are suspended in the
  pause transaction and moved by the paused time in the resume transaction.
- The `checkin` reader of an enrolment's next-due list (carehub.pathways.selectors).
- The reader of running series a migration plan stops, restarts or keeps
  (carehub.pathways.migration): in bulk for a dry run, as a subquery of an apply's plan read.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from django.db.models import Min, Q

from carehub.checkins.models import Checkin, CheckinSeries, CheckinStatus
from carehub.checkins.services import checkins_resume, checkins_suspend
from carehub.pathways.lifecycle import register_pause_hooks
from carehub.pathways.migration import SeriesReader, register_series_reader
from carehub.pathways.models import Enrolment
from carehub.pathways.selectors import NextDueItem, register_next_due_reader
from workflows.migration import ActiveSeries

# A check-in still to come: scheduled, open, or suspended while its enrolment is paused.
WAITING = (CheckinStatus.SCHEDULED, CheckinStatus.OPEN, CheckinStatus.SUSPENDED)


def checkins_next_due(enrolment: Enrolment, limit: int) -> list[NextDueItem]:
    """The enrolment's check-ins still to come, soonest first (an open one: when its window
    closes), at most `limit`: one query."""
    checkins = Checkin.objects.filter(enrolment=enrolment, status__in=WAITING).order_by(
        "due_at", "pk"
    )[:limit]
    return [
        NextDueItem(
            kind="checkin",
            at=checkin.closes_at if checkin.status == CheckinStatus.OPEN else checkin.due_at,
            id=checkin.pk,
            title=checkin.instrument,
            status=checkin.status,
            track="",
            detail={
                "due_at": checkin.due_at.isoformat(),
                "closes_at": checkin.closes_at.isoformat(),
            },
        )
        for checkin in checkins
    ]


def series_active(enrolment_ids: Sequence[int]) -> dict[int, list[ActiveSeries]]:
    """The running check-in series of each enrolment, with its next occurrence (one query)."""
    rows = (
        CheckinSeries.objects.filter(enrolment_id__in=enrolment_ids, stopped_at__isnull=True)
        .annotate(next_due=Min("checkins__due_at", filter=Q(checkins__status__in=WAITING)))
        .order_by("pk")
        .values_list("enrolment_id", "series", "instrument", "every", "next_due")
    )
    result: dict[int, list[ActiveSeries]] = defaultdict(list)
    for enrolment_id, name, instrument, every, next_due in rows:
        result[enrolment_id].append(ActiveSeries(name, instrument, every, next_due))
    return result


_WAITING_SQL = ", ".join(f"'{status.value}'" for status in WAITING)
# The same, of one enrolment, as a scalar subquery of the migration's plan read.
SERIES_ACTIVE_SQL = f"""SELECT coalesce(json_agg(json_build_array(
            s.series, s.instrument, extract(epoch FROM s.every),
            (SELECT min(k.due_at) FROM {Checkin._meta.db_table} k
             WHERE k.series_id = s.id AND k.status IN ({_WAITING_SQL})))
          ORDER BY s.id), '[]')
   FROM {CheckinSeries._meta.db_table} s
   WHERE s.enrolment_id = %(enrolment)s AND s.stopped_at IS NULL"""  # noqa: S608 - names from the models' metadata, values bound


def register() -> None:
    register_pause_hooks("checkins", suspend=checkins_suspend, resume=checkins_resume)
    register_next_due_reader("checkin", checkins_next_due)
    register_series_reader(SeriesReader(bulk=series_active, sql=SERIES_ACTIVE_SQL))
