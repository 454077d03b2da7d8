"""The request type of the API's views.

Every API view but sign-in, the FHIR capability statement and the schema requires
`IsAuthenticated`, so inside a handler `request.user` is a carehub account, never
`AnonymousUser`. `StaffRequest` says so to the type checker (the pattern django-stubs documents
as `AuthenticatedHttpRequest`); at run time it is DRF's `Request`.
"""

from typing import TYPE_CHECKING

from rest_framework.request import Request

if TYPE_CHECKING:
    from carehub.accounts.models import User
    from carehub.clinics.models import Clinic

    class StaffUser(User):
        """`RoleAllows` lets only accounts with a clinic through (`care_access.can`)."""

        clinic: Clinic
        clinic_id: int

        class Meta:
            abstract = True

    class StaffRequest(Request):
        @property
        def user(self) -> StaffUser: ...
        @user.setter
        def user(self, value: StaffUser) -> None: ...

else:
    StaffRequest = Request

__all__ = ["StaffRequest"]
