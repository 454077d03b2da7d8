"""Holding an enrolment's row lock in another database session, as a concurrent change does."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connections, transaction

from carehub.pathways.models import Enrolment


@contextmanager
def locked_elsewhere(enrolment: Enrolment) -> Iterator[None]:
    """While inside, another thread's transaction holds the enrolment row FOR UPDATE."""
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                Enrolment.objects.select_for_update().get(pk=enrolment.pk)
                locked.set()
                release.wait(10)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(10), "the other session did not take the lock"
        yield
    finally:
        release.set()
        holder.join()
