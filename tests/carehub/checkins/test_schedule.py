"""Check-in schedule arithmetic in patients' time zones (pure; no database)."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carehub.checkins.schedule import (
    Cadence,
    SendWindow,
    local_instant,
    place_in_window,
    reminder_times,
)

ZONES = [
    "America/New_York", "America/Chicago", "America/Denver", "America/Phoenix",
    "America/Los_Angeles", "America/Anchorage", "Pacific/Honolulu", "America/Sao_Paulo",
    "America/St_Johns", "Europe/London", "Europe/Berlin", "Europe/Dublin", "Africa/Casablanca",
    "Asia/Jerusalem", "Asia/Tehran", "Asia/Kolkata", "Asia/Kathmandu", "Australia/Sydney",
    "Australia/Lord_Howe", "Pacific/Chatham",
]  # fmt: skip
WINDOW = SendWindow(time(8, 0), time(21, 0))


def test_gap_times_move_forward_and_fold_times_take_the_first() -> None:
    ny = ZoneInfo("America/New_York")
    # 2026-03-08: clocks go from 02:00 to 03:00.
    assert local_instant(date(2026, 3, 8), time(2, 30), ny).astimezone(ny).time() == time(3, 30)
    # 2026-11-01: 01:30 happens twice; the first is still daylight time (UTC-4).
    first = local_instant(date(2026, 11, 1), time(1, 30), ny)
    assert first == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)


def test_daily_0900_stays_0900_across_both_changes() -> None:
    ny = ZoneInfo("America/New_York")
    start = local_instant(date(2026, 3, 1), time(9, 0), ny)
    cadence = Cadence(start=start, every=timedelta(days=1), zone=ny, window=WINDOW)
    for n in range(0, 300):
        local = cadence.occurrence(n).astimezone(ny)
        assert local.time() == time(9, 0)
        assert local.date() == date(2026, 3, 1) + timedelta(days=n)


def test_times_outside_the_window_move_to_the_next_opening() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    early = local_instant(date(2026, 6, 1), time(6, 15), berlin)
    late = local_instant(date(2026, 6, 1), time(22, 0), berlin)
    assert place_in_window(early, berlin, WINDOW).astimezone(berlin) == datetime(
        2026, 6, 1, 8, 0, tzinfo=berlin
    )
    assert place_in_window(late, berlin, WINDOW).astimezone(berlin) == datetime(
        2026, 6, 2, 8, 0, tzinfo=berlin
    )
    inside = local_instant(date(2026, 6, 1), time(12, 0), berlin)
    assert place_in_window(inside, berlin, WINDOW) == inside


def test_weekly_series_and_first_after() -> None:
    sydney = ZoneInfo("Australia/Sydney")
    start = local_instant(date(2026, 3, 30), time(10, 0), sydney)
    cadence = Cadence(start=start, every=timedelta(weeks=1), zone=sydney, window=WINDOW)
    # Across the April change (clocks go back) the local time stays 10:00.
    assert [cadence.occurrence(n).astimezone(sydney).time() for n in range(3)] == [time(10)] * 3
    n, due = cadence.first_after(cadence.occurrence(1))
    assert (n, due) == (2, cadence.occurrence(2))
    assert cadence.first_after(start - timedelta(days=1)) == (0, start)


def test_elapsed_time_intervals_for_non_day_cadences() -> None:
    utc = ZoneInfo("UTC")
    start = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
    cadence = Cadence(start=start, every=timedelta(hours=36), zone=utc, window=WINDOW)
    assert cadence.occurrence(1) == datetime(2026, 1, 2, 21, 0, tzinfo=UTC) + timedelta(hours=11)
    # 21:00 is the window's end (exclusive), so it moves to 08:00 the next day.


def test_reminders_stay_inside_both_windows() -> None:
    london = ZoneInfo("Europe/London")
    opened = local_instant(date(2026, 5, 4), time(9, 0), london)
    closes = opened + timedelta(days=3)
    reminders = reminder_times(
        opened, closes, after=[timedelta(hours=24), timedelta(hours=48), timedelta(hours=80)],
        zone=london, window=WINDOW,
    )  # fmt: skip
    assert [r.astimezone(london).time() for r in reminders] == [time(9), time(9)]


def test_a_window_must_open_before_it_closes() -> None:
    with pytest.raises(ValueError, match="opens before it closes"):
        SendWindow(time(21), time(8))


@settings(max_examples=60, deadline=None)
@given(
    zone_name=st.sampled_from(ZONES),
    start_day=st.dates(min_value=date(2024, 1, 1), max_value=date(2027, 12, 31)),
    at=st.times(min_value=time(0, 0), max_value=time(23, 59)),
    window_start=st.sampled_from([time(7), time(8), time(9, 30)]),
    window_end=st.sampled_from([time(19), time(20, 30), time(22)]),
)
def test_daily_series_one_occurrence_per_local_day_for_two_years(
    zone_name: str, start_day: date, at: time, window_start: time, window_end: time
) -> None:
    zone = ZoneInfo(zone_name)
    window = SendWindow(window_start, window_end)
    start = local_instant(start_day, at, zone)
    cadence = Cadence(start=start, every=timedelta(days=1), zone=zone, window=window)
    days: list[date] = []
    previous: datetime | None = None
    for n in range(731):
        due = cadence.occurrence(n)
        local = due.astimezone(zone)
        assert window.contains(local.time()), (zone_name, n, local)
        if previous is not None:
            assert due > previous
        previous = due
        days.append(local.date())
    # Exactly one occurrence per local day, on consecutive days (none skipped, none doubled).
    assert len(set(days)) == len(days)
    assert all(b - a == timedelta(days=1) for a, b in itertools.pairwise(days))
