"""Publishing a decision's effects: one task per commit carrying the effect ids (ids only), and
a redelivered task changes nothing; the sweeper still publishes one task per effect."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from celery.signals import before_task_publish
from django.utils import timezone

from carehub.accounts.models import User
from carehub.pathways.models import EffectStatus, Enrolment, OutboxEffect
from carehub.pathways.outbox import publish_after_commit
from carehub.pathways.services import pathway_dispatch
from carehub.pathways.tasks import effects_execute_task

pytestmark = pytest.mark.django_db


@pytest.fixture
def published() -> Iterator[list[tuple[str, Any]]]:
    """(task name, positional arguments) of every task published while the test runs."""
    seen: list[tuple[str, Any]] = []

    def record(sender: str | None = None, body: Any = None, **kwargs: Any) -> None:
        if sender and sender.startswith("carehub.pathways."):
            seen.append((sender, body[0]))

    before_task_publish.connect(record, weak=False)
    yield seen
    before_task_publish.disconnect(record)


def test_a_dispatch_publishes_once_after_its_commit(
    enrolment: Enrolment,
    staff: dict[str, User],
    published: list[tuple[str, Any]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    from tests.carehub.pathways.test_dispatch import to_conventional

    to_conventional(enrolment, staff["coordinator"])
    before = set(OutboxEffect.objects.values_list("pk", flat=True))
    published.clear()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        pathway_dispatch(enrolment_id=enrolment.pk, event="esi_requested", idempotency_key="esi")
    ids = sorted(set(OutboxEffect.objects.values_list("pk", flat=True)) - before)
    assert len(callbacks) == 1
    assert [(name, args[0]) for name, args in published] == [
        ("carehub.pathways.effect_execute", ids[0])
    ]


def test_several_effects_are_one_task_carrying_their_ids(
    enrolment: Enrolment,
    published: list[tuple[str, Any]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    rows = [
        OutboxEffect.objects.create(
            enrolment=enrolment,
            kind="raise_flag",
            idempotency_key=f"several:{n}",
            available_at=timezone.now(),
            payload={
                "kind": "raise_flag",
                "track": "cbt",
                "code": f"c{n}",
                "severity": "warning",
                "message": "m",
            },
        )
        for n in range(3)
    ]
    published.clear()
    with django_capture_on_commit_callbacks(execute=True):
        publish_after_commit([row.pk for row in rows])
        assert published == []  # nothing leaves before the commit
    assert published == [("carehub.pathways.effects_execute", ([row.pk for row in rows],))]


def test_a_redelivered_batch_runs_nothing_twice(enrolment: Enrolment) -> None:
    ids = list(OutboxEffect.objects.filter(enrolment=enrolment).values_list("pk", flat=True))
    assert set(effects_execute_task(ids)) == {EffectStatus.DONE}
    assert set(effects_execute_task(ids)) == {"skipped"}
    assert set(OutboxEffect.objects.values_list("attempts", flat=True)) == {1}
