"""DRF permission: the view's `operation` must be allowed for the user's role by the matrix in
`carehub.care_access` (scoping itself happens in the selectors, through care_access too). A
refusal is 403 `not_permitted` naming the `operation` and the `roles` that may perform it."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.exceptions import NotFound
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.views import APIView

from carehub.accounts.models import STAFF_ROLES, User
from carehub.care_access import OPERATIONS, Operation, can
from carehub.core.exceptions import NotPermitted


class RoleAllows(BasePermission):
    message = "Your role does not allow this."
    code = "not_permitted"

    def has_permission(self, request: Request, view: Any) -> bool:
        operation: Operation | None = getattr(view, "operation", None)
        if operation is None:  # a view must say what it does
            return False
        user = request.user if isinstance(request.user, User) else None
        if not can(user, operation):
            raise NotPermitted(
                self.message,
                extra={"operation": operation.value, "roles": sorted(OPERATIONS[operation])},
            )
        return True


# An API view for a signed-in member of staff whose role allows the view's `operation`. (No
# docstring: drf-spectacular would describe every view without its own by it.)
class StaffApi(APIView):
    permission_classes = [IsAuthenticated, RoleAllows]


class SchemaAccess(BasePermission):
    """The OpenAPI schema and its docs: public while `API_SCHEMA_PUBLIC` is on (development,
    tests); otherwise only for a signed-in member of staff (a staff role, or a Django staff
    account). Anyone else gets 404 `not_found`, as if there were no schema. The setting is read
    at each request."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if settings.API_SCHEMA_PUBLIC:
            return True
        user = request.user
        if (
            user.is_authenticated
            and user.is_active
            and (user.is_staff or getattr(user, "role", "") in STAFF_ROLES)
        ):
            return True
        raise NotFound()
