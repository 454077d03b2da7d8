"""What worklists do for pathway effects: `create_task` opens a care task, `raise_flag` raises a
flag. Registered by kind with the outbox (carehub.pathways.effects) from WorklistsConfig.ready().

And for red flags in recorded answers (carehub.observations.scores): a flag on the clinic's
board for each, registered as the `flag` red-flag handler."""

from __future__ import annotations

from datetime import datetime
from functools import partial

from django.db import connection, transaction

from carehub.core import clock
from carehub.observations.scores import RedFlagsRaised, register_red_flag_handler
from carehub.pathways.effects import register_effect_handler, task_state_left
from carehub.pathways.models import Enrolment, EnrolmentStatus, OutboxEffect
from carehub.worklists.models import TaskStatus
from carehub.worklists.services import care_task_close, care_task_create, flag_raise


def _create_task(effect: OutboxEffect, now: datetime) -> None:
    """The task belongs to the state named in the effect (`CreateTask.state`): the dispatch
    leaving that state closes it (`dispatch_sql`); one decided before the state was left and
    executed after is created closed; and after commit the state is checked again, for a
    dispatch that ran while this one did (it could not see the task, nor this the step)."""
    p = effect.payload
    due_at = datetime.fromisoformat(p["due_at"]) if p.get("due_at") else None
    track, state = p.get("track", ""), p.get("state", "")  # no state: decided before states
    reason = None
    if state:
        reason = task_state_left(
            enrolment=effect.enrolment, track=track, state=state, step_id=effect.step_id
        )
    task = care_task_create(
        enrolment=effect.enrolment,
        discipline=p["discipline"],
        title=p["title"],
        due_at=due_at,
        priority=p.get("priority", "routine"),
        source_effect=effect,
        track=track,
        state=state,
        source_step_id=effect.step_id,
        closed_reason=reason or "",
        closed_at=now,
    )
    if state and task.status == TaskStatus.OPEN and task.source_effect_id == effect.pk:
        transaction.on_commit(
            partial(
                _close_if_state_left,
                task_id=task.pk,
                enrolment_id=effect.enrolment_id,
                track=track,
                state=state,
                step_id=effect.step_id,
            ),
            robust=True,
        )


def _close_if_state_left(
    *, task_id: int, enrolment_id: int, track: str, state: str, step_id: int | None
) -> None:
    """After the task's commit: wait for a change of the pathway in progress (a share lock on
    the enrolment row, taken and released by one statement in autocommit: a dispatch holds the
    row until it commits), then close the task if its state was left meanwhile."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {Enrolment._meta.db_table} WHERE id = %s FOR SHARE",  # noqa: S608
            [enrolment_id],
        )
    enrolment = Enrolment.objects.get(pk=enrolment_id)
    reason = task_state_left(enrolment=enrolment, track=track, state=state, step_id=step_id)
    if reason is not None:
        care_task_close(task_id=task_id, reason=reason, at=clock.now())


def _raise_flag(effect: OutboxEffect, now: datetime) -> None:
    p = effect.payload
    flag_raise(
        enrolment=effect.enrolment,
        code=p["code"],
        severity=p["severity"],
        message=p["message"],
        raised_at=effect.decided_at,
        source_effect=effect,
    )


# Red-flag urgency → flag severity.
RED_FLAG_SEVERITY = {"immediate": "urgent", "same_day": "urgent", "next_business_day": "warning"}


def _open_enrolment(raised: RedFlagsRaised) -> Enrolment | None:
    """The pathway the flags belong to: the subject's (a check-in's enrolment), else the
    patient's open one, if any."""
    if raised.subject.enrolment is not None:
        assert isinstance(raised.subject.enrolment, Enrolment)
        return raised.subject.enrolment
    return (
        Enrolment.objects.filter(
            patient=raised.patient, status__in=[EnrolmentStatus.ACTIVE, EnrolmentStatus.PAUSED]
        )
        .order_by("pk")
        .first()
    )


def _flag_red_flags(raised: RedFlagsRaised) -> None:
    """A flag on the clinic's board for each red flag, once per subject and flag."""
    enrolment = _open_enrolment(raised)
    for flag in raised.red_flags:
        flag_raise(
            enrolment=enrolment,
            patient=raised.patient,
            code=flag.code,
            severity=RED_FLAG_SEVERITY[flag.urgency],
            message=flag.staff_message,
            raised_at=raised.at,
            dedupe_key=raised.key(flag),
        )


def register() -> None:
    register_effect_handler("create_task", _create_task)
    register_effect_handler("raise_flag", _raise_flag)
    register_red_flag_handler("flag", _flag_red_flags)
