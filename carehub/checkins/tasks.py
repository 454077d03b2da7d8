from celery import shared_task

from carehub.checkins.services import checkins_close_expired, checkins_open_due


@shared_task(name="carehub.checkins.open_due", ignore_result=True, acks_late=False)
def checkins_open_due_task() -> int:
    return checkins_open_due()


@shared_task(name="carehub.checkins.close_expired", ignore_result=True, acks_late=False)
def checkins_close_expired_task() -> int:
    return checkins_close_expired()
