"""The only place carehub reads the current time (tests travel with time-machine).

`replay` runs code as if it were another moment: the demo seed rebuilds months of care through
the ordinary services (check-ins opening, messages sent, answers scored) at the times they
would have happened, and a sandbox clinic's work runs at its test clock (ADR 0024:
`carehub.clinics.clock.clinic_time` enters it for a request, a task or an advance of that
clinic). It holds for the current thread or task only.

`wall_now` is the machine's time whatever is replayed: for operational records that are not
the clinic's care (the audit trail), which keep real time even in a sandbox clinic.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

_replayed: ContextVar["ReplayClock | None"] = ContextVar("carehub_replay_clock", default=None)


def now() -> datetime:
    replayed = _replayed.get()
    return replayed.at if replayed is not None else timezone.now()


def wall_now() -> datetime:
    """The machine's time, even inside a replay (audit rows, never the clinic's care)."""
    return timezone.now()


def replaying() -> bool:
    """Whether `now()` is a replayed moment (a replay or a sandbox clinic's test clock)."""
    return _replayed.get() is not None


@dataclass
class ReplayClock:
    at: datetime

    def move_to(self, moment: datetime) -> None:
        if moment.tzinfo is None:
            raise ValueError("a replay moment must be timezone-aware")
        self.at = moment


@contextmanager
def replay(start: datetime) -> Iterator[ReplayClock]:
    """`now()` is `start` (then whatever `move_to` sets) inside the block."""
    clock = ReplayClock(start)
    clock.move_to(start)
    token = _replayed.set(clock)
    try:
        yield clock
    finally:
        _replayed.reset(token)
