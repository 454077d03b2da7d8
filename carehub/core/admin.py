from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.db.models import Model
from django.http import HttpRequest

from carehub.core.admin_scope import GLOBAL, SUPERUSERS, ClinicScopedAdmin
from carehub.core.exceptions import ApplicationError
from carehub.core.models import IdempotencyRecord, SchedulerHeartbeat


@admin.register(SchedulerHeartbeat)
class SchedulerHeartbeatAdmin(ClinicScopedAdmin):
    # The scheduler's liveness: of the whole installation, and about no one.
    clinic_path = GLOBAL
    list_display = ["name", "last_beat_at"]


class ReadOnlyAdmin(ClinicScopedAdmin):
    """For rows only the services write (logs, outboxes, scheduled work): view, never edit."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ListActionsAdmin(ReadOnlyAdmin):
    """Read-only rows whose list offers actions that go through the services (resend, retry,
    approve, complete...): the model's change permission lets a user run them; a row itself is
    only viewed, never edited."""

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        opts = self.opts
        codename = get_permission_codename("change", opts)
        return obj is None and request.user.has_perm(f"{opts.app_label}.{codename}")


class ReadOnlyInline(admin.TabularInline):
    """Rows shown under their parent as they are (a log, a history): only `readonly_fields`,
    none added or deleted here."""

    extra = 0
    can_delete = False

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return tuple(self.readonly_fields)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def resend_each(
    model_admin: admin.ModelAdmin[Any],
    request: HttpRequest,
    rows: Iterable[Model],
    resend: Callable[[int], object],
    noun: str,
) -> None:
    """An admin action's resend of each dead row through its service: a refusal is shown as an
    error, then how many went ("3 dead <noun> queued again.")."""
    resent = 0
    for row in rows:
        try:
            resend(row.pk)
            resent += 1
        except ApplicationError as exc:
            model_admin.message_user(request, exc.message, level=messages.ERROR)
    model_admin.message_user(request, f"{resent} dead {noun} queued again.")


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(ReadOnlyAdmin):
    """Who sent which key for what, and how it ended. The first answer itself is not shown: it
    may hold patient data, which the audited pages and API show."""

    # No clinic of its own: keys of every clinic's staff and clients, whose targets name
    # their objects; an operator's tool.
    clinic_path = SUPERUSERS

    list_display = [
        "key",
        "actor",
        "operation",
        "target",
        "status",
        "response_status",
        "created_at",
    ]
    list_filter = ["status", "operation"]
    search_fields = ["key", "target"]
    list_select_related = ["actor"]
    exclude = ["response_body", "message"]
