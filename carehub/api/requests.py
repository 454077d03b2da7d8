"""The request type of the API's views.

Every API view but sign-in, the FHIR capability statement and the schema requires
`IsAuthenticated` and `RoleAllows`, so inside a handler `request.user` is a
`carehub.accounts.requests.StaffUser` (an account of a clinic), never `AnonymousUser`.
`StaffRequest` says so to the type checker; at run time it is DRF's `Request`.
"""

from typing import TYPE_CHECKING, Any, TypeVar

from rest_framework.request import Request
from rest_framework.serializers import BaseSerializer

if TYPE_CHECKING:
    from rest_framework.views import APIView

    from carehub.accounts.requests import StaffUser

    # The base of a mixin that hooks into APIView (`initial`, `handle_exception`,
    # `finalize_response`) and is listed before it in a view's bases: APIView for the type
    # checker, nothing at run time.
    ApiViewMixinBase = APIView

    class StaffRequest(Request):
        @property
        def user(self) -> StaffUser: ...
        @user.setter
        def user(self, value: StaffUser) -> None: ...

else:
    StaffRequest = Request
    ApiViewMixinBase = object

__all__ = ["ApiViewMixinBase", "StaffRequest", "validated"]


SerializerT = TypeVar("SerializerT", bound=BaseSerializer)


def validated(serializer_class: type[SerializerT], data: Any) -> SerializerT:
    """`serializer_class(data=data)`, validated: a 400 problem names what is wrong."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer
