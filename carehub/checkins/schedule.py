"""When check-ins fall due: pure date arithmetic in the patient's IANA time zone.

Rules (README, "Check-ins"):

* A series whose interval is a whole number of days recurs on the *local calendar*: the n-th
  occurrence is on the start's local date + n * interval, at the series' local time of day, so
  "daily at 09:00" stays 09:00 through daylight-saving changes. Other intervals step in elapsed
  time.
* Every occurrence is placed inside the patient's send window: a time before the window opens
  moves to the opening that day; at or after the window closes, to the next day's opening.
* A local time that does not exist (the hour skipped when clocks go forward) is read with the
  offset in force before the change, which lands that many minutes later (02:30 → 03:30); a
  local time that happens twice (clocks go back) means its first occurrence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DAY = timedelta(days=1)


@dataclass(frozen=True)
class SendWindow:
    start: time
    end: time

    def __post_init__(self) -> None:
        if not self.start < self.end:
            raise ValueError("a send window opens before it closes (same local day)")

    def contains(self, local: time) -> bool:
        return self.start <= local < self.end


def local_instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of wall-clock time `at` on `day` in `zone` (gaps forward, folds first)."""
    return datetime.combine(day, at).replace(tzinfo=zone, fold=0).astimezone(UTC)


def place_in_window(instant: datetime, zone: ZoneInfo, window: SendWindow) -> datetime:
    """`instant` if it is inside the window in local time, else the next window opening."""
    local = instant.astimezone(zone)
    if window.contains(local.timetz().replace(tzinfo=None)):
        return instant.astimezone(UTC)
    day = local.date() if local.time() < window.start else local.date() + DAY
    opening = local_instant(day, window.start, zone)
    # An opening inside a DST gap lands later than the window start; it is still inside the
    # window unless the window is shorter than the gap, which a sane window never is.
    return opening


def next_window_opening(instant: datetime, zone: ZoneInfo, window: SendWindow) -> datetime:
    """The first moment at or after `instant` when a message may go out."""
    return place_in_window(instant, zone, window)


@dataclass(frozen=True)
class Cadence:
    """A series: first occurrence at `start` (UTC), then every `every`."""

    start: datetime
    every: timedelta
    zone: ZoneInfo
    window: SendWindow

    @property
    def calendar_days(self) -> int | None:
        """The interval in local calendar days, when it is a whole number of days."""
        if self.every % DAY == timedelta(0):
            return self.every // DAY
        return None

    def occurrence(self, n: int) -> datetime:
        """The n-th due instant (n = 0 is the first), inside the send window, in UTC."""
        if n < 0:
            raise ValueError("occurrences are numbered from 0")
        days = self.calendar_days
        if days is not None:
            local_start = self.start.astimezone(self.zone)
            wall = local_start.time().replace(tzinfo=None)
            due = local_instant(local_start.date() + timedelta(days=days * n), wall, self.zone)
        else:
            due = self.start.astimezone(UTC) + self.every * n
        return place_in_window(due, self.zone, self.window)

    def first_after(self, instant: datetime) -> tuple[int, datetime]:
        """The first occurrence due strictly after `instant`, with its number."""
        elapsed = instant - self.start
        n = max(int(elapsed / self.every) - 1, 0) if elapsed > timedelta(0) else 0
        while (due := self.occurrence(n)) <= instant:
            n += 1
        return n, due


def series_cadence(
    *, started_at: datetime, every: timedelta, zone: ZoneInfo, window: SendWindow, send_at: time
) -> Cadence:
    """A series' cadence: occurrences recur at the clinic's check-in time of day (`send_at`), in
    the patient's time zone, counted from the local day the series started."""
    local_start = started_at.astimezone(zone)
    anchor = datetime.combine(local_start.date(), send_at).replace(tzinfo=zone, fold=0)
    return Cadence(start=anchor, every=every, zone=zone, window=window)


def next_due(cadence: Cadence, *, after: datetime, last_due: datetime | None) -> datetime:
    """When the series' next occurrence is due, planned at `after` (the series started, or the
    last occurrence was answered or missed): the first occurrence after both `after` and the
    last one's due time, and never the series' start itself (the first check-in comes one
    interval after the series starts)."""
    floor = max(after, last_due) if last_due is not None else after
    n, due = cadence.first_after(floor)
    if n < 1:
        due = cadence.occurrence(1)
    return due


def answer_window(every: timedelta, *, cap: timedelta) -> timedelta:
    """How long an occurrence stays open: until the next one is due, at most `cap`."""
    return min(every, cap)


def checkin_reminders(
    *,
    due_at: datetime,
    closes_at: datetime,
    opened_at: datetime,
    zone: ZoneInfo,
    window: SendWindow,
) -> list[datetime]:
    """An opened check-in's reminders: at a third and two thirds of its answer window, counted
    from when it opened (if later than due), inside the send window and before it closes."""
    span = closes_at - due_at
    return reminder_times(
        max(due_at, opened_at), closes_at, after=[span / 3, span * 2 / 3], zone=zone, window=window
    )


def reminder_times(
    opened: datetime,
    closes: datetime,
    *,
    after: list[timedelta],
    zone: ZoneInfo,
    window: SendWindow,
) -> list[datetime]:
    """Reminder instants inside the answer window and the send window, without duplicates."""
    times: list[datetime] = []
    for delay in after:
        at = place_in_window(opened + delay, zone, window)
        if at < closes and at not in times:
            times.append(at)
    return times
