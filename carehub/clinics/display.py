"""The display time zone: staff see every time in their clinic's time zone, named, on every page
that shows one (the staff pages, the sent-messages page, the admin), whichever door served it.

`ClinicTimeZoneMiddleware` activates the zone for a member of staff's request; the staff pages'
header names it (`{% get_current_timezone %}`) and so does the admin's (`admin_site_header`).
The API answers in ISO 8601 with offsets (no display zone); patients' pages use the patient's
own zone (the portal sets it).
"""

from __future__ import annotations

from collections.abc import Callable
from zoneinfo import ZoneInfo

from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.functional import lazy

from carehub.clinics.models import Clinic

# Paths whose answers carry no display times (the API's are ISO 8601 with offsets).
UNZONED_PREFIXES = ("/api/", "/static/", "/healthz", "/livez", "/readyz", "/c/", "/me/")


def clinic_display_zone(clinic: Clinic | None) -> ZoneInfo:
    """The zone a clinic's staff see times in: the clinic's `time_zone` (UTC without one)."""
    return ZoneInfo(clinic.time_zone if clinic is not None else "UTC")


class ClinicTimeZoneMiddleware:
    """After authentication: a member of staff's request runs in their clinic's zone."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith(UNZONED_PREFIXES):
            return self.get_response(request)
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or getattr(user, "role", "") == "patient":
            return self.get_response(request)
        with timezone.override(clinic_display_zone(user.clinic)):
            return self.get_response(request)


def _admin_site_header() -> str:
    return f"carehub administration · times in {timezone.get_current_timezone_name()}"


# Evaluated when a page renders, inside the request's zone.
admin_site_header = lazy(_admin_site_header, str)()
