"""Publishing many Celery tasks at once: one task per id (payloads stay ids), over one broker
connection and producer, after the caller's transaction commits."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django.db import transaction

BATCH_SIZE = 500


def publish_ids(task: Any, ids: Sequence[int]) -> None:
    """`task.apply_async((id,))` for each id over one producer, in kombu publish batches: on
    Redis the LPUSHes of up to BATCH_SIZE tasks go out in one pipelined round trip (transports
    without batching publish one by one). If the batch fails, the exception propagates (an
    on-commit caller logs it) and the sweepers republish what was lost."""
    if not ids:
        return
    if task.app.conf.task_always_eager:  # run here, one by one (the demo's replay): no broker
        for pk in ids:
            task.apply_async((pk,))
        return
    with task.app.producer_or_acquire() as producer, producer.batch(max_size=BATCH_SIZE):
        for pk in ids:
            task.apply_async((pk,), producer=producer)


def publish_ids_after_commit(task: Callable[[], Any], ids: Sequence[int]) -> None:
    """One on-commit callback for the batch; `task()` returns the Celery task (imported late).
    `robust`: a broker outage must not fail a transaction that already committed."""
    if not ids:
        return
    batch = list(ids)
    transaction.on_commit(lambda: publish_ids(task(), batch), robust=True)
