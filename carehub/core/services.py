from carehub.core import clock
from carehub.core.models import SchedulerHeartbeat

SCHEDULER = "scheduler"


def scheduler_heartbeat_record(*, name: str = SCHEDULER) -> SchedulerHeartbeat:
    beat, _ = SchedulerHeartbeat.objects.update_or_create(
        name=name, defaults={"last_beat_at": clock.now()}
    )
    return beat
