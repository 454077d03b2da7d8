"""The request type of the API's views.

Every API view but sign-in, the FHIR capability statement and the schema requires
`IsAuthenticated` and `RoleAllows`, so inside a handler `request.user` is a
`carehub.accounts.requests.StaffUser` (an account of a clinic), never `AnonymousUser`.
`StaffRequest` says so to the type checker; at run time it is DRF's `Request`.
"""

from typing import TYPE_CHECKING

from rest_framework.request import Request

if TYPE_CHECKING:
    from carehub.accounts.requests import StaffUser

    class StaffRequest(Request):
        @property
        def user(self) -> StaffUser: ...
        @user.setter
        def user(self, value: StaffUser) -> None: ...

else:
    StaffRequest = Request

__all__ = ["StaffRequest"]
