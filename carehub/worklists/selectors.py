"""Tasks and flags within a user's scope (carehub.care_access), for the worklists."""

from __future__ import annotations

from django.db.models import BigIntegerField, Case, ExpressionWrapper, F, QuerySet, Value, When

from carehub.accounts.models import User
from carehub.core.selectors import filtered_by_given, one_or_not_found
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
    visible = tasks_visible_to(user).select_related("patient", "enrolment")
    return one_or_not_found(visible, "task", pk=task_id)


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
    visible = flags_visible_to(user).select_related("patient", "enrolment")
    return one_or_not_found(visible, "flag", pk=flag_id)
