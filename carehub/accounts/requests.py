"""Request types of the doors that admit only staff of a clinic.

A staff page (`carehub.web.access.staff_page`) and an API view (`RoleAllows`) let through only
an active account of a clinic whose role the matrix allows (`care_access.can`), so inside them
`request.user` is a `StaffUser`: a `User` whose clinic is set. These types say so to the type
checker (the pattern django-stubs documents as `AuthenticatedHttpRequest`); at run time they
are Django's `HttpRequest` and DRF's `Request`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.http import HttpRequest

from carehub.accounts.models import User

if TYPE_CHECKING:
    from django_htmx.middleware import HtmxDetails

    from carehub.clinics.models import Clinic

    class StaffUser(User):
        clinic: Clinic
        clinic_id: int

        class Meta:
            abstract = True

    class StaffHttpRequest(HttpRequest):
        user: StaffUser  # narrowed: the door checked it
        htmx: HtmxDetails  # set by django-htmx's middleware on every request

else:
    StaffHttpRequest = HttpRequest

__all__ = ["StaffHttpRequest", "StaffUser", "admin_user"]


def admin_user(request: HttpRequest) -> User:
    """The account behind an admin request: the admin site lets no anonymous user in."""
    user = request.user
    assert isinstance(user, User), "the admin site requires a signed-in account"
    return user
