"""Executing outbox effects (the task body, called directly): handlers, idempotency, retries with
backoff, the dead state, resend, and the sweeper."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from carehub.accounts.models import User
from carehub.checkins.models import CheckinSeries
from carehub.messaging.models import Message
from carehub.pathways import effects as effects_module
from carehub.pathways.effects import effect_execute, effect_resend
from carehub.pathways.models import EffectStatus, Enrolment, OutboxEffect
from carehub.pathways.outbox import outbox_sweep
from carehub.pathways.services import pathway_dispatch
from carehub.worklists.models import CareTask, Flag

pytestmark = pytest.mark.django_db


def run_all() -> list[str]:
    return [
        effect_execute(effect_id=pk) for pk in OutboxEffect.objects.values_list("pk", flat=True)
    ]


def test_create_task_effect_creates_the_task_once(enrolment: Enrolment) -> None:
    effect = OutboxEffect.objects.get(enrolment=enrolment, kind="create_task")
    assert effect_execute(effect_id=effect.pk) == EffectStatus.DONE
    assert effect_execute(effect_id=effect.pk) == "skipped"
    task = CareTask.objects.get()
    assert (task.discipline, task.title, task.patient_id) == (
        "physical_therapist", "Start the PT programme", enrolment.patient_id,
    )  # fmt: skip
    effect.refresh_from_db()
    assert (effect.status, effect.attempts) == (EffectStatus.DONE, 1)


def test_every_effect_kind_lands_in_its_table(enrolment: Enrolment, staff: dict[str, User]) -> None:
    from tests.carehub.pathways.test_dispatch import to_conventional

    to_conventional(enrolment, staff["coordinator"])
    pathway_dispatch(enrolment_id=enrolment.pk, event="esi_requested", idempotency_key="esi")
    run_all()
    assert CheckinSeries.objects.filter(enrolment=enrolment, instrument="peg").count() == 1
    # The proposal told the physicians on the care team.
    [message] = Message.objects.filter(to_staff=staff["physician"])
    assert "Escalation waiting for your decision" in message.body
    assert OutboxEffect.objects.exclude(status=EffectStatus.DONE).count() == 0


def test_flag_and_notify_effects(enrolment: Enrolment, staff: dict[str, User]) -> None:
    effect = OutboxEffect.objects.create(
        enrolment=enrolment, kind="raise_flag", idempotency_key="f1", available_at=timezone.now(),
        payload={"kind": "raise_flag", "track": "cbt", "code": "psych_deferred",
                 "severity": "warning", "message": "Evaluation deferred"},
    )  # fmt: skip
    notify = OutboxEffect.objects.create(
        enrolment=enrolment, kind="notify", idempotency_key="n1", available_at=timezone.now(),
        payload={"kind": "notify", "track": "ladder", "to": ["patient", "physician"],
                 "message": "Your plan has moved on.", "urgency": "routine"},
    )  # fmt: skip
    for pk in (effect.pk, notify.pk, notify.pk):
        effect_execute(effect_id=pk)
    flag = Flag.objects.get()
    assert (flag.code, flag.severity, flag.patient_id) == (
        "psych_deferred",
        "warning",
        enrolment.patient_id,
    )
    assert Message.objects.filter(to_staff__isnull=True).count() == 1
    assert Message.objects.filter(to_staff=staff["physician"]).count() == 1
    assert Message.objects.count() == 2


def test_a_failing_effect_retries_with_backoff_then_is_parked_dead(
    enrolment: Enrolment, monkeypatch: pytest.MonkeyPatch, settings
) -> None:  # type: ignore[no-untyped-def]
    effect = OutboxEffect.objects.get(enrolment=enrolment, kind="create_task")

    def broken(effect: OutboxEffect, now: object) -> None:
        raise RuntimeError("worklist service unavailable")

    # The handler table is the seam for an outside dependency failing; our own code is not mocked.
    monkeypatch.setitem(effects_module.HANDLERS, "create_task", broken)
    statuses = []
    for attempt in range(1, settings.OUTBOX_MAX_ATTEMPTS + 1):
        statuses.append(effect_execute(effect_id=effect.pk))
        effect.refresh_from_db()
        assert effect.attempts == attempt
        if effect.status == EffectStatus.RETRY:
            assert effect.available_at > timezone.now()
            assert effect_execute(effect_id=effect.pk) == "skipped"  # not before its time
            OutboxEffect.objects.filter(pk=effect.pk).update(available_at=timezone.now())
    assert statuses == ["retry"] * (settings.OUTBOX_MAX_ATTEMPTS - 1) + ["dead"]
    assert "worklist service unavailable" in effect.last_error
    assert not CareTask.objects.exists()

    monkeypatch.undo()
    effect_resend(effect_id=effect.pk)
    effect.refresh_from_db()
    assert (effect.status, effect.attempts) == (EffectStatus.PENDING, 0)
    assert effect_execute(effect_id=effect.pk) == EffectStatus.DONE
    assert CareTask.objects.count() == 1


def test_backoff_grows_and_is_capped(settings) -> None:  # type: ignore[no-untyped-def]
    settings.OUTBOX_RETRY_BASE_SECONDS = 5
    settings.OUTBOX_RETRY_MAX_SECONDS = 600
    assert timedelta(seconds=2.5) <= effects_module.backoff(1) <= timedelta(seconds=5)
    assert timedelta(seconds=20) <= effects_module.backoff(4) <= timedelta(seconds=40)
    assert effects_module.backoff(30) <= timedelta(seconds=600)


def test_a_crashed_worker_leaves_a_running_effect_that_the_lease_recovers(
    enrolment: Enrolment, settings
) -> None:  # type: ignore[no-untyped-def]
    effect = OutboxEffect.objects.get(enrolment=enrolment, kind="create_task")
    long_ago = timezone.now() - timedelta(seconds=settings.OUTBOX_LEASE_SECONDS + 5)
    # What a worker killed mid-effect leaves behind: claimed, attempt counted, never finished.
    OutboxEffect.objects.filter(pk=effect.pk).update(
        status=EffectStatus.RUNNING, attempts=1, claimed_at=long_ago
    )
    assert outbox_sweep() == 1
    assert effect_execute(effect_id=effect.pk) == EffectStatus.DONE
    effect.refresh_from_db()
    assert effect.attempts == 2
    assert CareTask.objects.count() == 1


def test_sweeper_publishes_pending_rows_missed_after_commit_and_due_retries(
    enrolment: Enrolment, settings, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    effect = OutboxEffect.objects.get(enrolment=enrolment, kind="create_task")
    assert outbox_sweep() == 0  # just created: its after-commit publish is still expected
    old = timezone.now() - timedelta(seconds=settings.OUTBOX_REPUBLISH_AFTER_SECONDS + 1)
    OutboxEffect.objects.filter(pk=effect.pk).update(available_at=old)
    with django_capture_on_commit_callbacks() as callbacks:
        assert outbox_sweep() == 1
    assert len(callbacks) == 1
    assert outbox_sweep() == 0  # not swept again before another grace period
