"""Celery tasks of the pathways app: thin interfaces, ids in, one service call."""

from celery import shared_task

from carehub.pathways.effects import effect_execute
from carehub.pathways.outbox import outbox_sweep
from carehub.pathways.scheduler import timers_fire_due


@shared_task(name="carehub.pathways.effect_execute", acks_late=True, ignore_result=True)
def effect_execute_task(effect_id: int) -> str:
    return effect_execute(effect_id=effect_id)


@shared_task(name="carehub.pathways.effects_execute", acks_late=True, ignore_result=True)
def effects_execute_task(effect_ids: list[int]) -> list[str]:
    """The effects of one commit, one after the other (each claimed and finished on its own row,
    so a redelivered task skips those already done)."""
    return [effect_execute(effect_id=effect_id) for effect_id in effect_ids]


@shared_task(name="carehub.pathways.timers_fire", ignore_result=True, acks_late=False)
def timers_fire_task() -> int:
    return timers_fire_due()


@shared_task(name="carehub.pathways.outbox_sweep", ignore_result=True, acks_late=False)
def outbox_sweep_task() -> int:
    return outbox_sweep()
