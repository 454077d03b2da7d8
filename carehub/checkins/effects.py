"""What check-ins do for pathway effects: `start_checkins` and `stop_checkins` start and stop a
series. Registered by kind with the outbox (carehub.pathways.effects) from
CheckinsConfig.ready()."""

from __future__ import annotations

from datetime import datetime, timedelta

from carehub.checkins.services import checkin_series_start, checkin_series_stop
from carehub.pathways.effects import register_effect_handler
from carehub.pathways.models import OutboxEffect


def _start_checkins(effect: OutboxEffect, now: datetime) -> None:
    p = effect.payload
    checkin_series_start(
        enrolment=effect.enrolment,
        series=p["series"],
        instrument=p["instrument"],
        every=timedelta(seconds=p["every"]),
        at=effect.decided_at,
    )


def _stop_checkins(effect: OutboxEffect, now: datetime) -> None:
    p = effect.payload
    checkin_series_stop(
        enrolment=effect.enrolment,
        series=p.get("series"),
        instrument=p.get("instrument"),
        at=effect.decided_at,
        reason=p.get("reason", ""),
    )


def register() -> None:
    register_effect_handler("start_checkins", _start_checkins)
    register_effect_handler("stop_checkins", _stop_checkins)
