"""Building the demo patients' histories: each script (`carehub.demo.scripts`) run as a
`Story` (`carehub.demo.stories`) on a replayed clock from its start to now, once per patient,
side by side in forked processes.
"""

from __future__ import annotations

import multiprocessing
import os
import random
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db import connection, connections

from carehub.accounts.models import User
from carehub.core import clock
from carehub.demo.scripts import HISTORIES, OPEN_AT_THE_END
from carehub.demo.stories import PATHWAY, Story
from carehub.pathways.models import Enrolment
from carehub.patients.models import Patient


def story_start(patient: Patient, days_ago: int, now: datetime) -> datetime:
    """09:00 in the patient's zone, `days_ago` days before their today."""
    zone = ZoneInfo(patient.time_zone)
    local_now = now.astimezone(zone)
    if patient.mrn in OPEN_AT_THE_END and local_now.time() < time(11, 0):
        days_ago += 1  # today's check-in is not open yet: end a day after one that is
    local_day = local_now.date() - timedelta(days=days_ago)
    return datetime.combine(local_day, time(9, 0), tzinfo=zone)


def demo_history_build(*, patient: Patient, staff: dict[str, User]) -> bool:
    """Build the patient's history once; False when they are already on the pathway."""
    if Enrolment.objects.filter(patient=patient, definition_key=PATHWAY).exists():
        return False
    history = HISTORIES.get(patient.mrn)
    if history is None:
        return False
    build, days_ago = history
    end = clock.now()
    start = story_start(patient, days_ago, end)
    rng = random.Random(patient.mrn)  # noqa: S311  (the same demo every time; no secrets)
    story = Story(patient=patient, staff=staff, now=start, end=end, rng=rng, start=start)
    with clock.replay(start) as replay:
        story.replay = replay
        build(story)
    return True


def _build_in_worker(args: tuple[int, dict[str, int]]) -> str | None:
    """In a forked worker process: build one patient's history with its own connection."""
    patient_id, staff_ids = args
    try:
        patient = Patient.objects.get(pk=patient_id)
        staff = {role: User.objects.get(pk=pk) for role, pk in staff_ids.items()}
        return patient.mrn if demo_history_build(patient=patient, staff=staff) else None
    finally:
        connections.close_all()


def demo_histories_build(
    *, patients: list[Patient], staff: dict[str, User], workers: int | None = None
) -> list[str]:
    """Build the histories not built yet; the MRNs built. Histories are independent of each
    other, so they are built side by side in forked processes (one per core, at most 4) unless
    the caller holds a transaction (which other processes could not see)."""
    todo = [
        p
        for p in patients
        if p.mrn in HISTORIES
        and not Enrolment.objects.filter(patient=p, definition_key=PATHWAY).exists()
    ]
    # The longest histories first, so that the processes finish together.
    todo.sort(key=lambda p: -HISTORIES[p.mrn][1])
    workers = workers or max(1, min(4, os.cpu_count() or 1))
    if workers == 1 or len(todo) < 2 or connection.in_atomic_block:
        return sorted(p.mrn for p in todo if demo_history_build(patient=p, staff=staff))
    staff_ids = {role: user.pk for role, user in staff.items()}
    connections.close_all()  # each process opens its own
    context = multiprocessing.get_context("fork")
    with context.Pool(workers) as pool:
        built = pool.map(_build_in_worker, [(p.pk, staff_ids) for p in todo], chunksize=1)
    return sorted(mrn for mrn in built if mrn)
