"""Check-ins: series started and stopped by pathway effects, occurrences opened and closed by
the scheduler, answers submitted by patients (from a link) or entered by staff.

Due work lives in rows (`Checkin.due_at` while scheduled, `closes_at` while open) claimed with
SKIP LOCKED by periodic tasks; messages go out through `carehub.messaging` (which applies quiet
hours, channel choice, budget and suppression).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet

from carehub.checkins.instruments import min_interval
from carehub.checkins.links import checkin_link_mint as checkin_link_mint
from carehub.checkins.links import token_hash
from carehub.checkins.messages import enqueue_requests_and_reminders
from carehub.checkins.models import Checkin, CheckinLink, CheckinSeries, CheckinStatus
from carehub.checkins.schedule import (
    Cadence,
    SendWindow,
    answer_window,
    checkin_reminders,
    next_due,
    series_cadence,
)
from carehub.clinics.clock import exclude_sandboxes
from carehub.core import clock
from carehub.core.exceptions import Conflict, InvalidInput
from carehub.instruments.scoring import RedFlag
from carehub.integrations.models import ChangeType
from carehub.integrations.services import change_record
from carehub.messaging.services import messages_cancel
from carehub.observations.scores import (
    RedFlagSubject,
    UnscorableAnswers,
    red_flags_act,
    score_observation_record,
)
from carehub.pathways.models import Enrolment, EnrolmentStatus
from carehub.worklists.services import care_task_create

logger = logging.getLogger(__name__)


# --- series -----------------------------------------------------------------------------------


def _window(series: CheckinSeries) -> SendWindow:
    patient = series.patient
    return SendWindow(patient.send_window_start, patient.send_window_end)


def cadence_for(series: CheckinSeries) -> Cadence:
    """Occurrences recur at the clinic's check-in time of day, in the patient's time zone."""
    send_at: time = settings.CHECKIN_SEND_TIME
    return series_cadence(
        started_at=series.started_at,
        every=series.every,
        zone=ZoneInfo(series.patient.time_zone),
        window=_window(series),
        send_at=send_at,
    )


def _schedule_next(series: CheckinSeries, *, after: datetime) -> Checkin | None:
    """Create the series' next occurrence due after `after` (none when the series stopped)."""
    if series.stopped_at is not None:
        return None
    last = series.checkins.order_by("-sequence").first()
    due = next_due(cadence_for(series), after=after, last_due=last.due_at if last else None)
    sequence = (last.sequence if last else 0) + 1
    window = answer_window(series.every, cap=timedelta(hours=settings.CHECKIN_ANSWER_WINDOW_HOURS))
    return Checkin.objects.create(
        series=series,
        patient_id=series.patient_id,
        enrolment_id=series.enrolment_id,
        instrument=series.instrument,
        sequence=sequence,
        due_at=due,
        closes_at=due + window,
    )


@transaction.atomic
def checkin_series_start(
    *, enrolment: Enrolment, series: str, instrument: str, every: timedelta, at: datetime
) -> CheckinSeries:
    """Start a series; an active series of the same name keeps running (starting is idempotent).

    The interval is never shorter than the instrument's recall period."""
    active = CheckinSeries.objects.filter(
        enrolment=enrolment, series=series, stopped_at__isnull=True
    ).first()
    if active is not None:
        return active
    minimum = _min_interval(instrument)
    if minimum is not None and every < minimum:
        logger.warning(
            "series %s: %s every %s is more often than its recall period; using %s",
            series,
            instrument,
            every,
            minimum,
        )
        every = minimum
    created = CheckinSeries.objects.create(
        patient_id=enrolment.patient_id,
        enrolment=enrolment,
        series=series,
        instrument=instrument,
        every=every,
        started_at=at,
    )
    _schedule_next(created, after=at)
    return created


@transaction.atomic
def checkin_series_stop(
    *,
    enrolment: Enrolment,
    at: datetime,
    series: str | None = None,
    instrument: str | None = None,
    reason: str = "",
) -> int:
    """Stop the active series named, or every active series of an instrument; occurrences not yet
    answered are cancelled. With a `reason` (a migration that stops the series), their messages
    not sent yet are cancelled now, each with a delivery event giving it (otherwise each is
    suppressed when it comes due, the check-in being cancelled)."""
    active = CheckinSeries.objects.filter(enrolment=enrolment, stopped_at__isnull=True)
    if series is not None:
        active = active.filter(series=series)
    elif instrument is not None:
        active = active.filter(instrument=instrument)
    else:
        return 0
    ids = list(active.values_list("pk", flat=True))
    cancelled = Checkin.objects.filter(
        series_id__in=ids,
        status__in=[CheckinStatus.SCHEDULED, CheckinStatus.OPEN, CheckinStatus.SUSPENDED],
    )
    if reason:
        keys = [f"checkin:{pk}" for pk in cancelled.values_list("pk", flat=True)]
        cancelled.update(status=CheckinStatus.CANCELLED)
        messages_cancel(subject_keys=keys, reason=reason, now=at)
    else:
        cancelled.update(status=CheckinStatus.CANCELLED)
    return CheckinSeries.objects.filter(pk__in=ids).update(stopped_at=at)


def _min_interval(instrument: str) -> timedelta | None:
    return min_interval(instrument)


# --- pause / resume ---------------------------------------------------------------------------


def checkins_suspend(*, enrolment: Enrolment) -> int:
    """Inside the pause transaction: scheduled and open check-ins wait for the resume."""
    waiting = Checkin.objects.filter(
        enrolment=enrolment, status__in=[CheckinStatus.SCHEDULED, CheckinStatus.OPEN]
    )
    count = 0
    for status in (CheckinStatus.SCHEDULED, CheckinStatus.OPEN):
        count += waiting.filter(status=status).update(
            status=CheckinStatus.SUSPENDED, status_before_pause=status
        )
    return count


def checkins_resume(*, enrolment: Enrolment, paused_for: timedelta) -> int:
    """Inside the resume transaction: suspended check-ins come back, moved by the paused time."""
    from django.db.models import F

    suspended = Checkin.objects.filter(enrolment=enrolment, status=CheckinStatus.SUSPENDED)
    count = 0
    for status in (CheckinStatus.SCHEDULED, CheckinStatus.OPEN):
        count += suspended.filter(status_before_pause=status).update(
            status=status,
            status_before_pause="",
            due_at=F("due_at") + paused_for,
            closes_at=F("closes_at") + paused_for,
        )
    return count


# --- the scheduler's two jobs ------------------------------------------------------------------


def _claim(queryset: QuerySet[Checkin], batch_size: int, *, by: str) -> list[Checkin]:
    """The oldest `batch_size` rows by `by` that nobody else holds. Ordered by the column of the
    partial index the filter matches (`checkin_due`, `checkin_open_closes`), so the claim walks
    only due rows: ordered by id, PostgreSQL walks the primary key through the whole history."""
    return list(
        queryset.select_for_update(skip_locked=True, of=("self",))
        .select_related("series", "patient__clinic", "enrolment")
        .order_by(by, "pk")[:batch_size]
    )


def _clinic_scope(queryset: QuerySet[Checkin], clinic_id: int | None) -> QuerySet[Checkin]:
    """The wall clock's sweeps leave sandbox clinics out; an advance of a sandbox's test clock
    sweeps that clinic alone (ADR 0024)."""
    if clinic_id is None:
        return queryset.filter(exclude_sandboxes("enrolment__clinic_id"))
    return queryset.filter(enrolment__clinic_id=clinic_id)


def due_checkins_query(now: datetime, *, clinic_id: int | None = None) -> QuerySet[Checkin]:
    """Scheduled check-ins due by `now` on active pathways (the opening sweep's claim)."""
    return _clinic_scope(
        Checkin.objects.filter(
            status=CheckinStatus.SCHEDULED,
            due_at__lte=now,
            enrolment__status=EnrolmentStatus.ACTIVE,
        ),
        clinic_id,
    )


def checkins_open_due(
    *,
    now: datetime | None = None,
    batch_size: int = 200,
    patient_id: int | None = None,
    clinic_id: int | None = None,
) -> int:
    """Open every check-in due by `now` (of one patient, when replaying a history; of one
    sandbox clinic, when its test clock is advanced): send the request and plan its reminders.

    Batch by batch: the claimed check-ins are opened with one UPDATE and their messages
    written with one `message_enqueue_many` (a constant number of queries per batch)."""
    now = now or clock.now()
    opened = 0
    query = due_checkins_query(now, clinic_id=clinic_id)
    if patient_id is not None:
        query = query.filter(patient_id=patient_id)
    while True:
        with transaction.atomic(durable=True):
            due = _claim(query, batch_size, by="due_at")
            _open_batch(due, now)
            opened += len(due)
        if len(due) < batch_size:
            return opened


@transaction.atomic
def checkin_open_now(*, checkin: Checkin, now: datetime | None = None) -> Checkin:
    """Open a scheduled check-in now instead of at its due time (the patient is at the clinic,
    or a clinician asks for it early): the request and reminders go out as when the scheduler
    opens it, and its answer window still closes at `closes_at`. Only a scheduled check-in of
    an active pathway opens (409 with the `current` state otherwise); its series goes on as
    planned."""
    now = now or clock.now()
    locked = (
        Checkin.objects.select_for_update(of=("self",))
        .select_related("series", "patient", "enrolment")
        .get(pk=checkin.pk)
    )
    current = {"id": locked.pk, "status": locked.status, "due_at": locked.due_at.isoformat()}
    if locked.status != CheckinStatus.SCHEDULED:
        raise Conflict(
            f"Only a scheduled check-in can be opened; this one is {locked.status}.",
            extra={"current": current},
        )
    if locked.enrolment.status != EnrolmentStatus.ACTIVE:
        raise Conflict(
            f"The pathway is {locked.enrolment.status}: its check-ins wait.",
            extra={"current": {**current, "enrolment_status": locked.enrolment.status}},
        )
    if locked.closes_at <= now:
        raise Conflict("The check-in's answer window has passed.", extra={"current": current})
    if locked.due_at > now:
        locked.due_at = now
        locked.save(update_fields=["due_at", "updated_at"])
    _open_batch([locked], now)
    return locked


def _open_batch(due: list[Checkin], now: datetime) -> None:
    to_open: list[Checkin] = []
    for checkin in due:
        if checkin.closes_at <= now:
            # Its whole answer window passed while nothing ran (an outage, a replayed
            # history): missed, without asking the patient for something they can no longer
            # answer.
            checkin.status = CheckinStatus.MISSED
            checkin.save(update_fields=["status", "updated_at"])
            _after_missed(checkin, now)
            _schedule_next(checkin.series, after=now)
        else:
            to_open.append(checkin)
    if not to_open:
        return
    Checkin.objects.filter(pk__in=[checkin.pk for checkin in to_open]).update(
        status=CheckinStatus.OPEN, opened_at=now, updated_at=now
    )
    batch: list[tuple[Checkin, list[datetime]]] = []
    for checkin in to_open:
        checkin.status = CheckinStatus.OPEN
        checkin.opened_at = now
        checkin.updated_at = now
        batch.append((checkin, _reminders(checkin, now)))
    enqueue_requests_and_reminders(batch)


def _reminders(checkin: Checkin, now: datetime) -> list[datetime]:
    zone = ZoneInfo(checkin.patient.time_zone)
    window = SendWindow(checkin.patient.send_window_start, checkin.patient.send_window_end)
    return checkin_reminders(
        due_at=checkin.due_at, closes_at=checkin.closes_at, opened_at=now, zone=zone, window=window
    )


def checkins_close_expired(
    *,
    now: datetime | None = None,
    batch_size: int = 200,
    patient_id: int | None = None,
    clinic_id: int | None = None,
) -> int:
    """Close every open check-in whose answer window has passed (of one patient, when replaying
    a history; of one sandbox clinic, when its test clock is advanced): missed; plan the next
    one."""
    now = now or clock.now()
    closed = 0
    scope = _clinic_scope(
        Checkin.objects.filter(patient_id=patient_id) if patient_id else Checkin.objects.all(),
        clinic_id,
    )
    while True:
        with transaction.atomic(durable=True):
            expired = _claim(
                scope.filter(status=CheckinStatus.OPEN, closes_at__lte=now),
                batch_size,
                by="closes_at",
            )
            for checkin in expired:
                checkin.status = CheckinStatus.MISSED
                checkin.save(update_fields=["status", "updated_at"])
                _checkin_change(ChangeType.CHECKIN_MISSED, checkin, now)
                _after_missed(checkin, now)
                _schedule_next(checkin.series, after=now)
            closed += len(expired)
        if len(expired) < batch_size:
            return closed


def _checkin_change(type: ChangeType, checkin: Checkin, at: datetime) -> None:
    """The change feed's record of a check-in answered or missed (codes and the score only)."""
    change_record(
        clinic_id=checkin.enrolment.clinic_id,
        patient_id=checkin.patient_id,
        enrolment_id=checkin.enrolment_id,
        type=type,
        subject_id=checkin.pk,
        data={
            "instrument": checkin.instrument,
            "score": checkin.score if type == ChangeType.CHECKIN_ANSWERED else None,
            "red_flag": bool(checkin.red_flags),
        },
        at=at,
    )


def _after_missed(checkin: Checkin, now: datetime) -> None:
    """N misses in a row of one series: a task for the coordinator (once per streak)."""
    limit: int = settings.CHECKIN_MISSES_BEFORE_TASK
    recent = list(
        checkin.series.checkins.filter(sequence__lte=checkin.sequence)
        .exclude(status=CheckinStatus.CANCELLED)
        .order_by("-sequence")
        .values_list("status", flat=True)[:limit]
    )
    if len(recent) == limit and all(status == CheckinStatus.MISSED for status in recent):
        # Exactly at the limit, so one task per streak (the next miss makes limit + 1).
        before = (
            checkin.series.checkins.filter(sequence__lt=checkin.sequence - limit + 1)
            .exclude(status=CheckinStatus.CANCELLED)
            .order_by("-sequence")
            .values_list("status", flat=True)
            .first()
        )
        if before != CheckinStatus.MISSED:
            care_task_create(
                enrolment=checkin.enrolment,
                discipline="coordinator",
                title=f"{limit} {checkin.instrument.upper()} check-ins missed in a row: "
                "contact the patient",
                due_at=now + timedelta(days=1),
            )


# --- links ----------------------------------------------------------------------------------


def checkin_link_reissue(*, subject_key: str) -> str | None:
    """A fresh link token for the check-in a request or reminder was about (its `subject_key`,
    `checkin:<id>`), while that check-in is open; None otherwise. For the development page of
    sent messages, whose rows keep only redacted links: the token goes to the caller only."""
    kind, _, pk = subject_key.partition(":")
    if kind != "checkin" or not pk.isdigit():
        return None
    checkin = Checkin.objects.filter(pk=int(pk)).first()
    if checkin is None or not link_is_live(checkin, clock.now()):
        return None
    return checkin_link_mint(checkin=checkin)


def checkin_for_token(token: str) -> Checkin | None:
    """The check-in a link token is for, or None (unknown token). Reading never consumes it."""
    if not token or len(token) > 200:
        return None
    link = CheckinLink.objects.select_related("checkin__patient__clinic").filter(
        token_hash=token_hash(token)
    )
    found = link.first()
    return found.checkin if found is not None else None


def link_is_live(checkin: Checkin, now: datetime) -> bool:
    return checkin.status == CheckinStatus.OPEN and now < checkin.closes_at


# --- answers --------------------------------------------------------------------------------


@dataclass
class CheckinRecorded:
    """What a check-in's answers gave: the total and band, the red flags acted on and what the
    patient must be shown at once."""

    score: float | None
    band: str
    red_flags: list[dict[str, Any]] = field(default_factory=list)
    patient_messages: list[str] = field(default_factory=list)


def _red_flag_subject(checkin: Checkin) -> RedFlagSubject:
    """A check-in's red flags are raised once per check-in and flag, on its enrolment."""
    return RedFlagSubject(key=f"checkin:{checkin.pk}", enrolment=checkin.enrolment)


def checkin_answers_record(
    checkin: Checkin, answers: dict[str, Any], *, source: str, at: datetime
) -> CheckinRecorded:
    """Inside the check-in's submit transaction: score and record the answers through
    `score_observation_record` (score observation, red flags once per check-in) and link the
    observation to the check-in (the caller saves it). Incomplete or invalid answers raise
    InvalidInput naming each item (`UnscorableAnswers` when they raise red flags: the caller
    acts on those after rolling back, `checkin_red_flags_act`)."""
    recorded = score_observation_record(
        patient=checkin.patient,
        instrument=checkin.instrument,
        version=checkin.instrument_version,
        items=answers,
        observed_at=at,
        source=source,
        subject=_red_flag_subject(checkin),
    )
    checkin.observation = recorded.observation
    return CheckinRecorded(
        score=recorded.result.total,
        band=recorded.result.band or "",
        red_flags=recorded.red_flags,
        patient_messages=recorded.patient_messages,
    )


def checkin_red_flags_act(
    checkin: Checkin, red_flags: list[RedFlag], at: datetime
) -> list[dict[str, Any]]:
    """The flags and alerts of a check-in's red flags (`red_flags_act`): once per check-in
    and flag."""
    return red_flags_act(
        patient=checkin.patient,
        instrument=checkin.instrument,
        red_flags=red_flags,
        at=at,
        subject=_red_flag_subject(checkin),
    )


def checkin_submit(
    *,
    checkin_id: int,
    answers: dict[str, Any],
    source: str = "patient",
    at: datetime | None = None,
) -> CheckinRecorded:
    """Score and record the answers of an open check-in, once. Red flags alert the care team at
    once (urgent, so quiet hours and digests do not hold them).

    Invalid or incomplete answers are refused (InvalidInput naming each item) and the check-in
    stays open; red flags the valid answers raise are still acted on (once per check-in), in a
    transaction of their own: a refused form must not hide a crisis."""
    now = at or clock.now()
    try:
        return _submit(checkin_id=checkin_id, answers=answers, source=source, now=now)
    except UnscorableAnswers as refused:
        if refused.red_flags:
            _act_on_refused(checkin_id, refused, now)
        raise


def _act_on_refused(checkin_id: int, refused: UnscorableAnswers, now: datetime) -> None:
    with transaction.atomic(durable=True):
        checkin = Checkin.objects.select_related("patient", "enrolment").get(pk=checkin_id)
        checkin_red_flags_act(checkin, list(refused.red_flags), now)


def _submit(
    *, checkin_id: int, answers: dict[str, Any], source: str, now: datetime
) -> CheckinRecorded:
    with transaction.atomic(durable=True):
        checkin = (
            Checkin.objects.select_for_update(of=("self",))
            .select_related("series", "patient", "enrolment")
            .get(pk=checkin_id)
        )
        if checkin.status == CheckinStatus.ANSWERED:
            raise Conflict("This check-in has already been answered.", extra={"gone": True})
        if checkin.status != CheckinStatus.OPEN or now >= checkin.closes_at:
            raise Conflict("This check-in is no longer open.", extra={"gone": True})
        if not isinstance(answers, dict) or not answers:
            raise InvalidInput("No answers were given.", extra={"fields": {"answers": "required"}})
        result = checkin_answers_record(checkin, answers, source=source, at=now)
        checkin.status = CheckinStatus.ANSWERED
        checkin.answered_at = now
        checkin.answers = answers
        checkin.score = result.score
        checkin.band = result.band
        checkin.red_flags = result.red_flags
        checkin.save()
        _checkin_change(ChangeType.CHECKIN_ANSWERED, checkin, now)
        _schedule_next(checkin.series, after=now)
    return result
