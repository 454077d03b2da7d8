from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.http import HttpRequest

from carehub.accounts.models import User
from carehub.core.admin_scope import ClinicScopedAdmin


@admin.register(User)
class UserAdmin(ClinicScopedAdmin, BaseUserAdmin):
    clinic_path = "clinic"

    list_display = ["username", "first_name", "last_name", "clinic", "role", "is_active"]
    list_filter = ["clinic", "role", "is_active", "is_staff"]
    fieldsets = (*(BaseUserAdmin.fieldsets or ()), ("Clinic", {"fields": ("clinic", "role")}))
    add_fieldsets = (*BaseUserAdmin.add_fieldsets, ("Clinic", {"fields": ("clinic", "role")}))

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = list(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            # Rights beyond the clinic are a superuser's to grant, not a clinic admin's.
            fields += ["is_superuser", "groups", "user_permissions"]
        return fields
