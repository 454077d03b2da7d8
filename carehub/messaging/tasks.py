"""Celery tasks of the messaging app: thin interfaces, ids in, one service call. Periodic ones
run from beat (see CELERY_BEAT_SCHEDULE); none is ever published with a long ETA."""

import logging
from typing import Any

from celery import Task, shared_task
from django.conf import settings
from django.db import connection

from carehub.core.retry import describe_error, exponential_backoff, is_transient
from carehub.messaging.delivery import (
    DeliveryInterrupted,
    message_send,
    messages_dispatch_due,
    messages_send,
    messages_sweep,
)
from carehub.messaging.provider_reports import provider_reports_sweep
from carehub.messaging.services import digests_compile, task_reminders_send

logger = logging.getLogger(__name__)


@shared_task(
    bind=True,
    name="carehub.messaging.send_many",
    acks_late=True,
    ignore_result=True,
    max_retries=None,
)
def messages_send_task(
    self: Task, message_ids: list[int], unsettled: list[dict[str, Any]] | None = None
) -> int:
    """Sends a batch of messages; returns how many were sent. A transient database or broker
    error is retried with backoff (capped at MESSAGING_TASK_RETRY_MAX_SECONDS, never an ETA over
    60 s), carrying what an interrupted batch still has to record (`unsettled`), instead of
    acknowledging the task and leaving its messages to the sweeper."""
    try:
        outcomes = messages_send(message_ids=message_ids, unsettled=unsettled or ())
    except DeliveryInterrupted as exc:
        # The ids again: those this task claimed are settled first and then skipped (or sent,
        # once released); those it never reached are claimed.
        raise _retry(self, exc.cause, message_ids=message_ids, unsettled=exc.unsettled) from exc
    except Exception as exc:
        if not is_transient(exc):
            raise
        raise _retry(self, exc, message_ids=message_ids, unsettled=unsettled or []) from exc
    return sum(1 for status in outcomes.values() if status == "sent")


def _retry(
    task: Task, cause: BaseException, *, message_ids: list[int], unsettled: list[dict[str, Any]]
) -> BaseException:
    if not connection.in_atomic_block:
        connection.close()  # a fresh connection for the retry
    countdown = exponential_backoff(
        task.request.retries + 1,
        base_seconds=settings.MESSAGING_TASK_RETRY_BASE_SECONDS,
        max_seconds=min(float(settings.MESSAGING_TASK_RETRY_MAX_SECONDS), 60.0),
    ).total_seconds()
    logger.warning(
        "send task %s: %s; retry %s in %.1f s (%s id(s), %s to settle)",
        task.request.id,
        describe_error(cause),
        task.request.retries + 1,
        countdown,
        len(message_ids),
        len(unsettled),
    )
    return task.retry(
        kwargs={"message_ids": message_ids, "unsettled": unsettled},
        countdown=countdown,
        # Past the last retry Celery raises `exc` (MaxRetriesExceededError for an interruption
        # that is not an Exception, such as the worker's shutdown).
        exc=cause if isinstance(cause, Exception) else None,
    )


# One id per task: what earlier releases published (still in a queue during an upgrade).
@shared_task(name="carehub.messaging.send", acks_late=True, ignore_result=True)
def message_send_task(message_id: int) -> str:
    return message_send(message_id=message_id)


@shared_task(name="carehub.messaging.dispatch", ignore_result=True, acks_late=False)
def messages_dispatch_task() -> int:
    return messages_dispatch_due()


@shared_task(name="carehub.messaging.sweep", ignore_result=True, acks_late=False)
def messages_sweep_task() -> int:
    return messages_sweep() + provider_reports_sweep()


@shared_task(name="carehub.messaging.digests", ignore_result=True, acks_late=False)
def digests_compile_task() -> int:
    return digests_compile()


@shared_task(name="carehub.messaging.task_reminders", ignore_result=True, acks_late=False)
def task_reminders_task() -> int:
    return task_reminders_send()
