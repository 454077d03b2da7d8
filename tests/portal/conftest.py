from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine

from carehub.pathways.models import Enrolment
from tests.support.patients import Clinicians, clinic_with_team, enrolled_patient


@pytest.fixture(autouse=True)
def afternoon_in_london() -> Iterator[None]:
    with time_machine.travel(
        datetime(2026, 6, 2, 14, 0, tzinfo=ZoneInfo("Europe/London")), tick=True
    ):
        yield


@pytest.fixture
def team() -> Clinicians:
    return clinic_with_team()


@pytest.fixture
def enrolment(team: Clinicians) -> Enrolment:
    return enrolled_patient(team, "PP-1", username="pat1")


@pytest.fixture
def other_enrolment(team: Clinicians) -> Enrolment:
    return enrolled_patient(team, "PP-2", username="pat2")
