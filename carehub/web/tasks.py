from celery import shared_task

from carehub.web.services import submissions_prune


@shared_task(name="carehub.web.submissions_prune", ignore_result=True, acks_late=False)
def submissions_prune_task() -> int:
    return submissions_prune()
