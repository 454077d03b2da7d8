"""The worklists: the flag inbox, the disciplines' task lists and undelivered messages."""

from __future__ import annotations

from django.db.models import (
    F,
    QuerySet,
)

from carehub.accounts.models import User
from carehub.care_access import (
    flags_visible_to,
    messages_visible_to,
    tasks_visible_to,
)
from carehub.core.selectors import one_or_not_found
from carehub.messaging.models import Message, MessageStatus

# --- worklists --------------------------------------------------------------------------------
from carehub.web.selectors.shared import SEVERITY_RANK
from carehub.worklists.models import CareTask, Flag, FlagStatus, TaskStatus


def flag_inbox_for_user(*, user: User, show: str = "open") -> QuerySet[Flag]:
    """Open (or acknowledged, or all unresolved) flags, urgent first, newest first."""
    flags = flags_visible_to(user).select_related("patient", "acknowledged_by", "resolved_by")
    if show == "unresolved":
        flags = flags.exclude(status=FlagStatus.RESOLVED)
    elif show == "all":
        pass
    else:
        flags = flags.filter(status=FlagStatus.OPEN)
    return flags.annotate(severity_rank=SEVERITY_RANK).order_by(
        "severity_rank", "-raised_at", "-pk"
    )


def flag_get_for_user(*, user: User, flag_id: int) -> Flag:
    visible = flags_visible_to(user).select_related("patient", "acknowledged_by", "resolved_by")
    return one_or_not_found(visible, "flag", pk=flag_id)


def task_worklist_for_user(*, user: User, discipline: str) -> QuerySet[CareTask]:
    """Open tasks of a discipline ('all': every discipline), urgent and soonest due first."""
    tasks = tasks_visible_to(user).filter(status=TaskStatus.OPEN).select_related("patient")
    if discipline != "all":
        tasks = tasks.filter(discipline=discipline)
    return tasks.order_by("-priority", F("due_at").asc(nulls_last=True), "pk")


def task_get_for_user(*, user: User, task_id: int) -> CareTask:
    return one_or_not_found(tasks_visible_to(user).select_related("patient"), "task", pk=task_id)


def dead_messages_for_user(*, user: User) -> QuerySet[Message]:
    return (
        messages_visible_to(user)
        .filter(status=MessageStatus.DEAD)
        .select_related("patient", "to_staff")
        .order_by("-created_at", "-pk")
    )


def dead_message_get_for_user(*, user: User, message_id: int) -> Message:
    visible = messages_visible_to(user).select_related("patient")
    return one_or_not_found(visible, "message", pk=message_id)
