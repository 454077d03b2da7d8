"""The only place carehub reads the current time (tests travel with time-machine).

`replay` runs code as if it were another moment: the demo seed rebuilds months of care through
the ordinary services (check-ins opening, messages sent, answers scored) at the times they
would have happened. It holds for the current thread or task only and is never used while
serving requests.
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
