"""Whose time: a production clinic lives on the wall clock, a sandbox clinic on its test clock
(ADR 0024).

Domain code reads the time from `carehub.core.clock.now()` only. For work done for one clinic
(a request of its staff or patients, a check-in link, an effect or a message a worker runs, an
advance of its test clock) the door enters `clinic_time(clinic)`: for a sandbox clinic `now()`
is then its test clock, for a production clinic nothing changes. A replay already under way
(an advance stepping through due moments, the demo seed) is kept: it is the finer clock.

The wall-clock sweeps of the real scheduler leave sandbox clinics out (`sandbox_clinic_ids`):
nothing happens in a sandbox but at the moments its test clock passes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

from django.db.models import Q
from django.http import HttpRequest, HttpResponse

from carehub.clinics.models import Clinic
from carehub.core import clock


def sandbox_clinic_ids() -> list[int]:
    """The sandbox clinics, which the wall-clock sweeps leave out (usually none: one small
    index-free query on a table of a few rows)."""
    return list(Clinic.objects.filter(is_sandbox=True).values_list("pk", flat=True))


def exclude_sandboxes(field: str) -> Q:
    """A filter leaving out rows of sandbox clinics (`field`: the path to the clinic id, e.g.
    `clinic_id`, `enrolment__clinic_id`); matches everything when there is no sandbox, so a
    production deployment's claims are what they always were."""
    ids = sandbox_clinic_ids()
    return ~Q(**{f"{field}__in": ids}) if ids else Q()


def sandbox_now_of(clinic_id: int | None) -> datetime | None:
    """The clinic's test clock when it is a sandbox; None for a production clinic."""
    if clinic_id is None:
        return None
    return (
        Clinic.objects.filter(pk=clinic_id, is_sandbox=True)
        .values_list("test_clock_at", flat=True)
        .first()
    )


@contextmanager
def clinic_time(clinic: Clinic | int | None) -> Iterator[None]:
    """Inside the block `clock.now()` is the clinic's now: its test clock for a sandbox (unless a
    replay is already under way), the wall clock otherwise."""
    if clinic is None or clock.replaying():
        yield
        return
    if isinstance(clinic, Clinic):
        # A production clinic costs nothing; a sandbox's clock is read afresh (the instance
        # may have been loaded before an advance moved it).
        at = sandbox_now_of(clinic.pk) if clinic.is_sandbox else None
    else:
        at = sandbox_now_of(clinic)
    if at is None:
        yield
        return
    with clock.replay(at):
        yield


class ClinicClockMiddleware:
    """After authentication (and the session timeout, which keeps real time): a request of a
    sandbox clinic's staff or patient runs at the clinic's test clock. API requests
    authenticated by token enter it in the view, once the user is known
    (`carehub.api.patients.AuditedApi`)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or getattr(user, "clinic_id", None) is None:
            return self.get_response(request)
        with clinic_time(user.clinic):
            return self.get_response(request)
