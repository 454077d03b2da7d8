"""Across a migration no reminder is sent twice or lost: a refill cycle's reminders (pathway
timers, fired by the real scheduler, their messages sent by the real delivery in a Celery
worker) before and after version 2 recomputes the cycle on the clinic's interval; and a check-in
series the migration stops has its pending reminders cancelled with a delivery event saying why.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import time, timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from carehub.accounts.models import Role
from carehub.accounts.services import staff_create
from carehub.checkins.models import Checkin, CheckinStatus
from carehub.checkins.services import checkins_open_due
from carehub.clinics.models import ClinicThreshold
from carehub.clinics.services import clinic_create
from carehub.messaging.models import DeliveryEvent, Message, MessageStatus
from carehub.pathways import registry as registry_module
from carehub.pathways.migration import migration_apply
from carehub.pathways.models import EffectStatus, OutboxEffect, PathwayTimer
from carehub.pathways.scheduler import timers_fire_due
from carehub.pathways.services import enrolment_start
from carehub.patients.services import care_team_add, patient_register
from tests.support.celery_worker import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

CYCLE_V1 = """
key: refill-cycle
version: 1
title: Refill cycle
roles: [coordinator]
events:
  refilled: {roles: [coordinator]}
  notice_due: {}
  confirm_due: {}
  missed_due: {}
  stop: {roles: [coordinator]}
tracks:
  pump:
    initial: cycle
    states:
      cycle:
        on_enter:
          - start_checkins: {instrument: peg, every: 1w, series: peg_weekly}
      done: {final: true}
    transitions:
      - {from: cycle, event: refilled, to: cycle}
      - from: cycle
        event: notice_due
        effects: [{notify: {to: [patient], message: "Refill in 14 days", urgency: urgent}}]
      - from: cycle
        event: confirm_due
        effects: [{notify: {to: [patient], message: "Refill in 7 days", urgency: urgent}}]
      - from: cycle
        event: missed_due
        effects: [{notify: {to: [patient], message: "Refill missed", urgency: urgent}}]
      - {from: cycle, event: stop, to: done}
    timers:
      - {name: notice, state: cycle, after: 14d, event: notice_due}
      - {name: confirm, state: cycle, after: 21d, event: confirm_due}
      - {name: missed, state: cycle, after: 28d, event: missed_due}
"""
CYCLE_V2 = (
    CYCLE_V1.replace("version: 1", "version: 2")
    .replace(
        "roles: [coordinator]\nevents:",
        "roles: [coordinator]\nthresholds:\n"
        "  refill_days: {default: 28, unit: days, source: Pump labelling}\nevents:",
    )
    .replace("after: 14d,", "after: threshold.refill_days, before: 14d,")
    .replace("after: 21d,", "after: threshold.refill_days, before: 7d,")
    .replace("after: 28d,", "after: threshold.refill_days,")
    + "migrations:\n  - {from: 1, timers: recompute, checkins: stop}\n"
)
REMINDERS = ("Refill in 14 days", "Refill in 7 days", "Refill missed")


@pytest.fixture(autouse=True)
def published(tmp_path: Path, settings) -> Iterator[None]:  # type: ignore[no-untyped-def]
    (tmp_path / "refill-cycle.v1.yaml").write_text(CYCLE_V1)
    (tmp_path / "refill-cycle.v2.yaml").write_text(CYCLE_V2)
    settings.PATHWAY_DIRS = [*django_settings.PATHWAY_DIRS, tmp_path]
    registry_module.registry.cache_clear()
    yield
    registry_module.registry.cache_clear()


def effects_done() -> bool:
    return not OutboxEffect.objects.exclude(status=EffectStatus.DONE).exists()


def test_no_reminder_is_sent_twice_or_lost_across_a_migration(celery_worker_process: str) -> None:
    now = timezone.now()
    clinic = clinic_create(name="Pump Clinic", slug="pump", time_zone="America/New_York")
    # The clinic refills every 42 days: version 2's reminders follow it, version 1's did not.
    ClinicThreshold.objects.create(
        clinic=clinic, pathway_key="refill-cycle", name="refill_days", value=42,
        source="Clinic: 40 mL reservoir",
    )  # fmt: skip
    patient = patient_register(
        clinic=clinic, mrn="P-1", given_name="Pia", family_name="Pump",
        time_zone="America/New_York", phone="+15555550142", email="pia@example.org",
        send_window_start=time(0), send_window_end=time(23, 59),
    )  # fmt: skip
    care_team_add(
        patient=patient,
        staff=staff_create(clinic=clinic, username="coord", role=Role.COORDINATOR, password=None),
    )
    t0 = now - timedelta(days=45)
    enrolment = enrolment_start(patient=patient, definition_key="refill-cycle", version=1, at=t0)
    wait_until(effects_done)  # the weekly check-ins started (by the worker)

    # Before the migration: day 15 of the cycle, the 14-day notice fires and is sent.
    assert timers_fire_due(now=t0 + timedelta(days=15)) == 1
    wait_until(effects_done)
    wait_until(lambda: Message.objects.filter(body=REMINDERS[0], status="sent").exists())

    # An open check-in with its reminders still to come.
    checkin = Checkin.objects.filter(enrolment=enrolment).order_by("pk").first()
    assert checkin is not None
    Checkin.objects.filter(pk=checkin.pk).update(
        due_at=now - timedelta(minutes=1), closes_at=now + timedelta(days=2)
    )
    checkins_open_due(now=now)
    wait_until(lambda: Message.objects.filter(purpose="checkin_request", status="sent").exists())
    pending = Message.objects.filter(purpose="checkin_reminder", status=MessageStatus.PENDING)
    assert pending.count() >= 1
    pending_ids = list(pending.values_list("pk", flat=True))

    # The migration, on day 16: the pending confirm (day 21) and missed (day 28) timers are
    # recomputed on 42 days (days 35 and 42); the notice fired already and is not started again.
    result = migration_apply(
        definition_key="refill-cycle", from_version=1, to_version=2, user=None,
        now=t0 + timedelta(days=16),
    )  # fmt: skip
    assert result.migrated == [enrolment.pk]
    due = dict(
        PathwayTimer.objects.filter(enrolment=enrolment, status="pending").values_list(
            "key", "due_at"
        )
    )
    assert due == {"pump.confirm": t0 + timedelta(days=35), "pump.missed": t0 + timedelta(days=42)}
    wait_until(effects_done)  # the series' stop, run by the worker

    # The stopped series' reminders are cancelled, each with a delivery event saying why.
    for message in Message.objects.filter(pk__in=pending_ids):
        assert message.status == MessageStatus.SUPPRESSED
        reason = DeliveryEvent.objects.filter(message=message).order_by("pk").last()
        assert reason is not None
        assert "stopped when the pathway was migrated to version 2" in reason.reason
    assert Checkin.objects.get(pk=checkin.pk).status == CheckinStatus.CANCELLED

    # The scheduler now (day 45): both remaining reminders fire once; nothing fires twice.
    assert timers_fire_due(now=now) == 2
    assert timers_fire_due(now=now + timedelta(minutes=1)) == 0
    wait_until(effects_done)

    def sent() -> list[str]:
        return list(
            Message.objects.filter(body__in=REMINDERS, status=MessageStatus.SENT)
            .order_by("pk")
            .values_list("body", flat=True)
        )

    wait_until(lambda: len(sent()) == 3)
    assert sent() == list(REMINDERS)  # each once, in order: none doubled, none lost
    assert Message.objects.filter(body__in=REMINDERS).count() == 3
