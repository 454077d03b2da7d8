"""Which rows a member of staff sees in the Django admin: their own clinic's, never another's.

Every admin of the site is a `ClinicScopedAdmin` and declares `clinic_path`, the lookup from
its model to the clinic (`"clinic"`, `"patient__clinic"`, `"enrolment__clinic"`, `"pk"` for the
clinic itself), or one of two markers for rows that belong to no clinic:

- `GLOBAL`: configuration shared by every clinic that holds nothing about a patient or a member
  of staff; staff with the view permission see all of it.
- `SUPERUSERS`: rows of no clinic that still name people or credentials; only superusers see
  or change them (the page is absent from a clinic admin's index and answers 403).

The list, the object pages (change, delete, history: Django looks the object up through
`get_queryset`, so another clinic's object is "not found"), the actions (they act on the list's
rows) and the choices of every foreign key and many-to-many field (scoped by the admin of the
model they point to) all go through the scope. Superusers see every clinic. The admins that
third-party apps register (`THIRD_PARTY_SUPERUSERS_ONLY`) are made superuser-only at start-up.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib import admin
from django.contrib.admin.sites import AdminSite
from django.db import models
from django.db.models import QuerySet
from django.forms import ModelChoiceField, ModelMultipleChoiceField
from django.http import HttpRequest

GLOBAL = ":global"
SUPERUSERS = ":superusers"

# Third-party admins registered by default. None of their rows has a clinic, and each names
# people or credentials of every clinic, or grants installation-wide rights:
# - auth: groups carry permissions for the whole installation;
# - knox: API tokens of every clinic's staff;
# - axes: login attempts and lockouts (user names and addresses of every clinic);
# - django_celery_beat (installed by the benchmarks only): the schedule of the whole site.
THIRD_PARTY_SUPERUSERS_ONLY = frozenset({"auth", "knox", "axes", "django_celery_beat"})


class ClinicScopedAdmin(admin.ModelAdmin):
    """A model admin that shows a non-superuser only the rows of their own clinic."""

    clinic_path: ClassVar[str]

    def __init__(self, model: type[models.Model], admin_site: AdminSite) -> None:
        if not getattr(self, "clinic_path", ""):
            raise TypeError(
                f"{type(self).__name__} declares no clinic_path (a lookup, GLOBAL or SUPERUSERS)"
            )
        super().__init__(model, admin_site)

    def _superuser_only(self, request: HttpRequest) -> bool:
        return self.clinic_path == SUPERUSERS and not request.user.is_superuser

    def scope_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        """`queryset` narrowed to the rows `request.user` may see."""
        user = request.user
        if user.is_superuser or self.clinic_path == GLOBAL:
            return queryset
        clinic_id = getattr(user, "clinic_id", None)
        if self.clinic_path == SUPERUSERS or clinic_id is None:
            return queryset.none()
        return queryset.filter(**{self.clinic_path: clinic_id})

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return self.scope_queryset(request, super().get_queryset(request))

    def _scoped_choices(
        self, db_field: models.Field[Any, Any], request: HttpRequest, kwargs: dict[str, Any]
    ) -> None:
        if "queryset" in kwargs:
            return
        related_model = db_field.remote_field.model  # type: ignore[union-attr]
        related_admin = self.admin_site._registry.get(related_model)
        if not isinstance(related_admin, ClinicScopedAdmin):
            return
        using = kwargs.get("using")
        choices = self.get_field_queryset(using, db_field, request)  # type: ignore[arg-type]
        if choices is None:
            choices = related_model._default_manager.using(using).all()
        kwargs["queryset"] = related_admin.scope_queryset(request, choices)

    def formfield_for_foreignkey(
        self, db_field: models.ForeignKey[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> ModelChoiceField[Any] | None:
        self._scoped_choices(db_field, request, kwargs)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(
        self, db_field: models.ManyToManyField[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> ModelMultipleChoiceField[Any] | None:
        self._scoped_choices(db_field, request, kwargs)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return not self._superuser_only(request) and super().has_module_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not self._superuser_only(request) and super().has_view_permission(request, obj)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        # *args: an inline-style signature (obj) in some third-party admins.
        return not self._superuser_only(request) and super().has_add_permission(request, *args)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not self._superuser_only(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not self._superuser_only(request) and super().has_delete_permission(request, obj)


def restrict_third_party_admins(site: AdminSite = admin.site) -> None:
    """Make the admins of `THIRD_PARTY_SUPERUSERS_ONLY` apps superuser-only (once, at start-up);
    an admin of any other app that is not a `ClinicScopedAdmin` is left alone, and the suite's
    check over the whole registry refuses it."""
    for model, model_admin in list(site._registry.items()):
        if isinstance(model_admin, ClinicScopedAdmin):
            continue
        if model._meta.app_label not in THIRD_PARTY_SUPERUSERS_ONLY:
            continue
        original = type(model_admin)
        restricted = type(
            f"SuperusersOnly{original.__name__}",
            (ClinicScopedAdmin, original),
            {"clinic_path": SUPERUSERS, "__module__": __name__},
        )
        site.unregister(model)
        site.register(model, restricted)
