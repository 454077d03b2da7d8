import logging
from typing import Any

from celery import current_app
from django.core.management.base import BaseCommand

from carehub.demo.services import DEMO_PASSWORD, demo_seed


class Command(BaseCommand):
    help = "Seed the demo clinic (idempotent): staff of every discipline and demo patients."

    def handle(self, *args: Any, **options: Any) -> None:
        # Replaying months of care logs what the workers would log (messages queued, one
        # patient's number refused by the demo's SMS gateway, ...): keep the output to the point.
        logger = logging.getLogger("carehub")
        level = logger.level
        logger.setLevel(logging.CRITICAL)
        # The replay does the workers' job at the replayed times: tasks published after a commit
        # (effects, messages due at once) run right here instead of waiting in the broker for
        # the demo's worker, which would find them done.
        eager = current_app.conf.task_always_eager
        current_app.conf.task_always_eager = True
        try:
            result = demo_seed()
        finally:
            logger.setLevel(level)
            current_app.conf.task_always_eager = eager
        if result.created:
            self.stdout.write(f"Seeded {len(result.created)} records in {result.clinic}.")
        else:
            self.stdout.write(f"Demo clinic {result.clinic} already seeded; nothing to do.")
        self.stdout.write(f"Demo logins (password for all: {DEMO_PASSWORD}):")
        for username, role in result.logins:
            self.stdout.write(f"  {username:<12} {role}")
        self.stdout.write(
            "Patient pages: log in as james for his portal (/me/: his open check-in, My progress,"
            ' What comes next); staff see every SMS and e-mail the demo "sent" about their'
            " patients at /dev/sent-messages/ (links stored redacted; Open the check-in makes a"
            " fresh one)."
        )
