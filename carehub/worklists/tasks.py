from celery import shared_task

from carehub.worklists.services import session_notes_overdue_tasks


@shared_task(name="carehub.worklists.session_notes_overdue", ignore_result=True, acks_late=False)
def session_notes_overdue_task() -> int:
    return session_notes_overdue_tasks()
