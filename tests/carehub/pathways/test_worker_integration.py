"""End to end with a real Celery worker process, real Redis and real PostgreSQL: events commit,
outbox rows are published after commit, the worker executes them, tasks/flags/messages appear."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from carehub.accounts.models import User
from carehub.messaging.models import Message
from carehub.pathways.models import EffectStatus, Enrolment, OutboxEffect
from carehub.pathways.outbox import outbox_sweep
from carehub.pathways.scheduler import timers_fire_due
from carehub.pathways.services import pathway_dispatch
from carehub.worklists.models import CareTask
from tests.carehub.pathways.test_dispatch import make_eligible
from tests.support.celery_worker import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def all_done() -> bool:
    return not OutboxEffect.objects.exclude(status=EffectStatus.DONE).exists()


def test_effects_are_executed_by_a_real_worker_after_commit(
    celery_worker_process: str, enrolment: Enrolment, staff: dict[str, User]
) -> None:
    # enrolment_start committed: its create_task effect was published after commit.
    wait_until(lambda: CareTask.objects.filter(enrolment=enrolment).exists())
    make_eligible(enrolment.patient)
    pathway_dispatch(enrolment_id=enrolment.pk, event="intake_complete", idempotency_key="i")
    pathway_dispatch(enrolment_id=enrolment.pk, event="esi_requested", idempotency_key="e")
    wait_until(all_done)
    assert Message.objects.filter(to_staff=staff["physician"]).exists()
    assert enrolment.checkin_series.filter(instrument="peg", stopped_at__isnull=True).exists()
    assert CareTask.objects.filter(enrolment=enrolment).count() == 1


def test_timer_fired_by_the_scheduler_has_its_effects_run_by_the_worker(
    celery_worker_process: str, enrolment: Enrolment
) -> None:
    wait_until(all_done)
    assert timers_fire_due(now=timezone.now() + timedelta(weeks=6, minutes=1)) == 1
    enrolment.refresh_from_db()
    assert enrolment.state_of("pt") == "review"


def test_a_publish_lost_between_commit_and_broker_is_delivered_by_the_sweeper(
    celery_worker_process: str, enrolment: Enrolment, settings
) -> None:  # type: ignore[no-untyped-def]
    wait_until(all_done)
    # A row committed whose publish never happened (the web process died right after COMMIT).
    effect = OutboxEffect.objects.create(
        enrolment=enrolment, kind="create_task", idempotency_key="lost-publish",
        available_at=timezone.now()
        - timedelta(seconds=settings.OUTBOX_REPUBLISH_AFTER_SECONDS + 1),
        payload={"kind": "create_task", "track": "ladder", "discipline": "coordinator",
                 "title": "Call the patient", "due_at": None, "priority": "routine"},
    )  # fmt: skip
    assert outbox_sweep() == 1
    wait_until(lambda: CareTask.objects.filter(source_effect=effect).exists())
    effect.refresh_from_db()
    assert (effect.status, effect.attempts) == (EffectStatus.DONE, 1)
