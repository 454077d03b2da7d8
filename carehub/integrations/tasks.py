"""Celery tasks of the integrations app: thin interfaces, one service call."""

from celery import shared_task

from carehub.integrations.sender import webhooks_send


@shared_task(name="carehub.integrations.webhooks_send", ignore_result=True, acks_late=False)
def webhooks_send_task() -> int:
    return webhooks_send()
