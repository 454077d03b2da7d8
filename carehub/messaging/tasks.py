"""Celery tasks of the messaging app: thin interfaces, ids in, one service call. Periodic ones
run from beat (see CELERY_BEAT_SCHEDULE); none is ever published with a long ETA."""

from celery import shared_task

from carehub.messaging.delivery import (
    message_send,
    messages_dispatch_due,
    messages_send,
    messages_sweep,
)
from carehub.messaging.provider_reports import provider_reports_sweep
from carehub.messaging.services import digests_compile, task_reminders_send


@shared_task(name="carehub.messaging.send_many", acks_late=True, ignore_result=True)
def messages_send_task(message_ids: list[int]) -> int:
    """Sends a batch of messages; returns how many were sent."""
    outcomes = messages_send(message_ids=message_ids)
    return sum(1 for status in outcomes.values() if status == "sent")


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
