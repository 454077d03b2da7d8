"""Tasks and flags within a user's scope (carehub.care_access), for the worklists."""

from __future__ import annotations

from django.db.models import BigIntegerField, Case, ExpressionWrapper, F, QuerySet, Value, When

from carehub.accounts.models import User
from carehub.core.exceptions import NotFound
from carehub.core.selectors import filtered_by_given
from carehub.worklists.access import flags_visible_to, tasks_visible_to
from carehub.worklists.models import CareTask, Flag, Severity

# Urgent flags sort above every other flag, then the newest first: one integer, so a cursor
# page boundary is a single comparison.
_URGENT_OFFSET = 10**15


def task_list_for_user(
    *, user: User, discipline: str | None = None, status: str | None = None
) -> QuerySet[CareTask]:
    tasks = tasks_visible_to(user).select_related("patient", "enrolment")
    return filtered_by_given(tasks, discipline=discipline, status=status)


def task_get_for_user(*, user: User, task_id: int) -> CareTask:
    task = tasks_visible_to(user).select_related("patient", "enrolment").filter(pk=task_id).first()
    if task is None:
        raise NotFound("No such task.")
    return task


def flag_list_for_user(*, user: User, status: str | None = None) -> QuerySet[Flag]:
    flags = (
        flags_visible_to(user)
        .select_related("patient", "enrolment")
        .annotate(
            worklist_rank=ExpressionWrapper(
                Case(When(severity=Severity.URGENT, then=Value(_URGENT_OFFSET)), default=Value(0))
                + F("id"),
                output_field=BigIntegerField(),
            )
        )
    )
    return filtered_by_given(flags, status=status)


def flag_get_for_user(*, user: User, flag_id: int) -> Flag:
    flag = flags_visible_to(user).select_related("patient", "enrolment").filter(pk=flag_id).first()
    if flag is None:
        raise NotFound("No such flag.")
    return flag
