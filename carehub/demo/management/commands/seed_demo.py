from typing import Any

from django.core.management.base import BaseCommand

from carehub.demo.services import DEMO_PASSWORD, demo_seed


class Command(BaseCommand):
    help = "Seed the demo clinic (idempotent): staff of every discipline and demo patients."

    def handle(self, *args: Any, **options: Any) -> None:
        result = demo_seed()
        if result.created:
            self.stdout.write(f"Seeded {len(result.created)} records in {result.clinic}.")
        else:
            self.stdout.write(f"Demo clinic {result.clinic} already seeded; nothing to do.")
        self.stdout.write(f"Demo logins (password for all: {DEMO_PASSWORD}):")
        for username, role in result.logins:
            self.stdout.write(f"  {username:<12} {role}")
