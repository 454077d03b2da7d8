from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from workflows import Actor, Event, MemoryInstance, PathwayDefinition, load_definition

DEFINITIONS = Path(__file__).parent / "definitions"
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

PHYSICIAN = Actor(id="dr-raman", role="physician")
COORDINATOR = Actor(id="nurse-okafor", role="coordinator")


@pytest.fixture(scope="session")
def stepped_care() -> PathwayDefinition:
    return load_definition(DEFINITIONS / "stepped_care.yaml")


class Clock:
    def __init__(self) -> None:
        self.now = T0
        self.counter = 0

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)

    def key(self) -> str:
        self.counter += 1
        return f"e{self.counter}"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def instance(stepped_care: PathwayDefinition, clock: Clock) -> MemoryInstance:
    return MemoryInstance(stepped_care, clock.now)


def send(instance: MemoryInstance, clock: Clock, name: str, **kwargs: object):
    return instance.dispatch(Event(name=name, key=clock.key(), **kwargs), clock.now)  # type: ignore[arg-type]
