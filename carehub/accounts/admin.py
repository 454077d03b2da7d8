from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from carehub.accounts.models import User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = ["username", "first_name", "last_name", "clinic", "role", "is_active"]
    list_filter = ["clinic", "role", "is_active", "is_staff"]
    fieldsets = (*BaseUserAdmin.fieldsets, ("Clinic", {"fields": ("clinic", "role")}))
    add_fieldsets = (*BaseUserAdmin.add_fieldsets, ("Clinic", {"fields": ("clinic", "role")}))
