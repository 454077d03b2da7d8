from celery import shared_task

from carehub.api.services import idempotent_requests_prune


@shared_task(name="carehub.api.idempotent_requests_prune", ignore_result=True, acks_late=False)
def idempotent_requests_prune_task() -> int:
    return idempotent_requests_prune()
