from celery import shared_task

from carehub.core.idempotency import idempotency_keys_prune
from carehub.core.services import scheduler_heartbeat_record


@shared_task(name="carehub.core.scheduler_heartbeat", ignore_result=True, acks_late=False)
def scheduler_heartbeat_task() -> None:
    scheduler_heartbeat_record()


@shared_task(name="carehub.core.idempotency_keys_prune", ignore_result=True, acks_late=False)
def idempotency_keys_prune_task() -> int:
    return idempotency_keys_prune()
