"""DRF permission: the view's `operation` must be allowed for the user's role by the matrix in
`carehub.care_access` (scoping itself happens in the selectors, through care_access too). A
refusal is 403 `not_permitted` naming the `operation` and the `roles` that may perform it."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from carehub.care_access import OPERATIONS, Operation, can
from carehub.core.exceptions import NotPermitted


class RoleAllows(BasePermission):
    message = "Your role does not allow this."
    code = "not_permitted"

    def has_permission(self, request: Request, view: Any) -> bool:
        operation: Operation | None = getattr(view, "operation", None)
        if operation is None:  # a view must say what it does
            return False
        if not can(request.user, operation):
            raise NotPermitted(
                self.message,
                extra={"operation": operation.value, "roles": sorted(OPERATIONS[operation])},
            )
        return True
