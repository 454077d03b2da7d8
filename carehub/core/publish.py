"""Publishing Celery tasks by name, and many at once, over one broker connection and producer,
after the caller's transaction commits: one task per id, or one task per chunk of ids (payloads
stay ids either way).

Publishers name the task (`task_named("carehub.pathways.effect_execute")`) instead of importing
the module that defines it: a tasks module imports the services it runs, so a service importing
its tasks module closes an import cycle (docs/adr/0032-layers-and-registration-by-name.md). Each
app's AppConfig.ready() imports its own tasks module, so every process that loads the apps (web,
worker, beat, commands) has them registered under their names.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from celery import current_app
from django.db import transaction

BATCH_SIZE = 500


def task_named(name: str) -> Any:
    """The Celery task registered under `name` (its `shared_task(name=...)`), the same object
    its module defines: `.delay`, `.apply_async` and an eager run behave exactly as if the
    caller had imported it. Raises celery's NotRegistered for a name no app registered."""
    return current_app.tasks[name]


def _payloads(ids: Sequence[int], per_task: int | None) -> list[tuple[Any, ...]]:
    if per_task is None:
        return [(pk,) for pk in ids]
    return [(list(ids[i : i + per_task]),) for i in range(0, len(ids), per_task)]


def publish_ids(
    task: Any, ids: Sequence[int], *, per_task: int | None = None, priority: int | None = None
) -> None:
    """`task.apply_async((id,))` for each id, or `task.apply_async(([id, ...],))` for each chunk
    of `per_task` ids, over one producer, in kombu publish batches: on Redis the LPUSHes of up
    to BATCH_SIZE tasks go out in one pipelined round trip (transports without batching publish
    one by one). If the batch fails, the exception propagates (an on-commit caller logs it) and
    the sweepers republish what was lost. `priority` (0 first; Redis keeps a list per step of
    `priority_steps`) overrides the task's own (CELERY_TASK_DEFAULT_PRIORITY)."""
    if not ids:
        return
    payloads = _payloads(ids, per_task)
    options: dict[str, Any] = {} if priority is None else {"priority": priority}
    if task.app.conf.task_always_eager:  # run here, one by one (the demo's replay): no broker
        for args in payloads:
            task.apply_async(args, **options)
        return
    with task.app.producer_or_acquire() as producer, producer.batch(max_size=BATCH_SIZE):
        for args in payloads:
            task.apply_async(args, producer=producer, **options)


def queued_tasks(task: Any) -> int | None:
    """How many tasks wait in `task`'s queue (every priority step), or None when the broker
    does not answer at once (or tasks run eagerly, with no broker). Tasks a worker has taken
    (unacknowledged) are not counted."""
    from kombu.exceptions import ChannelError

    app = task.app
    if app.conf.task_always_eager:
        return None
    queue = getattr(task, "queue", None) or app.conf.task_default_queue
    try:
        with app.connection_for_read() as conn:
            conn.ensure_connection(max_retries=1)
            try:
                declared = conn.default_channel.queue_declare(queue=queue, passive=True)
            except ChannelError:  # no such queue: nothing was ever left in it
                return 0
            return int(declared.message_count)
    except Exception:
        return None


def publish_ids_after_commit(
    task: Callable[[], Any], ids: Sequence[int], *, per_task: int | None = None
) -> None:
    """One on-commit callback for the batch; `task()` returns the Celery task (looked up late).
    `robust`: a broker outage must not fail a transaction that already committed."""
    if not ids:
        return
    batch = list(ids)
    transaction.on_commit(lambda: publish_ids(task(), batch, per_task=per_task), robust=True)
