"""Admin for pathway instances. Every state change goes through the services; the rows that
only the dispatcher writes are read-only here."""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from carehub.accounts.requests import admin_user
from carehub.core.admin import ListActionsAdmin, ReadOnlyAdmin, ReadOnlyInline
from carehub.core.admin_scope import ClinicScopedAdmin
from carehub.core.exceptions import ApplicationError
from carehub.pathways.effects import effect_resend
from carehub.pathways.migration import migration_dry_run, migration_rollback
from carehub.pathways.models import (
    EffectStatus,
    Enrolment,
    EnrolmentMigration,
    MigrationStatus,
    OutboxEffect,
    PathwayStep,
    PathwayTimer,
    ProcessedEvent,
    Proposal,
    ProposalStatus,
    TimerStatus,
)
from carehub.pathways.registry import registry
from carehub.pathways.scheduler import timer_retry
from carehub.pathways.services import (
    enrolment_pause,
    enrolment_resume,
    enrolment_start,
    proposal_approve,
    proposal_reject,
)


class OfAnEnrolment:
    """The rows of one enrolment (its steps, timers, proposals, effects...): a user sees those
    of their clinic's enrolments, listed with the enrolment's patient."""

    clinic_path: ClassVar[str] = "enrolment__clinic"
    list_select_related: ClassVar[bool | list[str] | tuple[str, ...]] = ["enrolment__patient"]


class EnrolmentStartForm(forms.ModelForm):
    definition_key = forms.ChoiceField(label="Pathway")

    class Meta:
        model = Enrolment
        fields = ["patient", "definition_key"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        key_field = self.fields["definition_key"]
        assert isinstance(key_field, forms.ChoiceField)
        pathways = sorted({(d.key, d.title) for d in registry()}, key=lambda choice: choice[1])
        key_field.choices = pathways


class PauseForm(forms.Form):
    reason = forms.CharField(max_length=200, help_text="e.g. hospital admission, holiday")


class StepInline(ReadOnlyInline):
    model = PathwayStep
    readonly_fields = ("at", "event", "outcome", "actor", "summary")
    ordering = ["-id"]

    @admin.display(description="Why")
    def summary(self, step: PathwayStep) -> str:
        return str(step.explanation.get("summary", ""))


@admin.register(Enrolment)
class EnrolmentAdmin(ClinicScopedAdmin):
    clinic_path = "clinic"

    list_display = [
        "patient",
        "definition_key",
        "definition_version",
        "status",
        "states",
        "version",
    ]
    list_filter = ["status", "definition_key", "clinic"]
    search_fields = ["patient__mrn", "patient__family_name"]
    list_select_related = ["patient"]
    readonly_fields = [
        "public_id",
        "clinic",
        "definition_version",
        "status",
        "configuration",
        "version",
        "started_at",
        "paused_at",
        "pause_reason",
        "completed_at",
        "started_by",
    ]
    inlines = [StepInline]
    actions = ["pause_selected", "resume_selected"]

    @admin.display(description="States")
    def states(self, enrolment: Enrolment) -> str:
        return ", ".join(f"{t}: {v['state']}" for t, v in enrolment.configuration.items())

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> type[forms.ModelForm[Any]]:
        if obj is None:
            kwargs["form"] = EnrolmentStartForm
        return super().get_form(request, obj, change, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return []
        return [*self.readonly_fields, "patient", "definition_key"]

    def save_model(self, request: HttpRequest, obj: Enrolment, form: Any, change: bool) -> None:
        if change:
            return  # nothing on an enrolment is edited by hand
        created = enrolment_start(
            patient=form.cleaned_data["patient"],
            definition_key=form.cleaned_data["definition_key"],
            started_by=admin_user(request),
        )
        obj.pk = created.pk
        obj.refresh_from_db()

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        return None

    @admin.action(description="Pause the selected pathways")
    def pause_selected(self, request: HttpRequest, queryset: QuerySet[Enrolment]) -> Any:
        if "apply" in request.POST:
            form = PauseForm(request.POST)
            if form.is_valid():
                for enrolment in queryset:
                    try:
                        enrolment_pause(
                            enrolment_id=enrolment.pk,
                            reason=form.cleaned_data["reason"],
                            user=admin_user(request),
                        )
                    except ApplicationError as exc:
                        self.message_user(request, f"{enrolment}: {exc.message}", messages.ERROR)
                return None
        else:
            form = PauseForm()
        return TemplateResponse(
            request,
            "admin/pathways/pause.html",
            {
                **self.admin_site.each_context(request),
                "form": form,
                "enrolments": queryset,
                "action": "pause_selected",
                "title": "Pause pathways",
            },
        )

    @admin.action(description="Resume the selected pathways")
    def resume_selected(self, request: HttpRequest, queryset: QuerySet[Enrolment]) -> None:
        for enrolment in queryset:
            try:
                enrolment_resume(enrolment_id=enrolment.pk, user=admin_user(request))
            except ApplicationError as exc:
                self.message_user(request, f"{enrolment}: {exc.message}", messages.ERROR)


class RejectForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea, help_text="Recorded with the decision")


@admin.register(Proposal)
class ProposalAdmin(OfAnEnrolment, ListActionsAdmin):
    list_display = ["enrolment", "summary", "source", "target", "status", "proposed_at"]
    list_filter = ["status"]
    actions = ["approve_selected", "reject_selected"]

    def _decide(
        self, request: HttpRequest, queryset: QuerySet[Proposal], reason: str | None
    ) -> None:
        for proposal in queryset.filter(status=ProposalStatus.PENDING):
            key = f"admin:{uuid.uuid4()}"
            try:
                if reason is None:
                    proposal_approve(
                        proposal=proposal, user=admin_user(request), idempotency_key=key
                    )
                else:
                    proposal_reject(
                        proposal=proposal,
                        user=admin_user(request),
                        idempotency_key=key,
                        reason=reason,
                    )
            except ApplicationError as exc:
                self.message_user(request, f"{proposal}: {exc.message}", messages.ERROR)

    @admin.action(description="Approve the selected escalations")
    def approve_selected(self, request: HttpRequest, queryset: QuerySet[Proposal]) -> None:
        self._decide(request, queryset, None)

    @admin.action(description="Reject the selected escalations (with a reason)")
    def reject_selected(
        self, request: HttpRequest, queryset: QuerySet[Proposal]
    ) -> HttpResponse | None:
        if "apply" in request.POST:
            form = RejectForm(request.POST)
            if form.is_valid():
                self._decide(request, queryset, form.cleaned_data["reason"])
                return None
        else:
            form = RejectForm()
        return TemplateResponse(
            request,
            "admin/pathways/pause.html",
            {
                **self.admin_site.each_context(request),
                "form": form,
                "enrolments": queryset,
                "action": "reject_selected",
                "title": "Reject escalations",
            },
        )


@admin.register(PathwayStep)
class PathwayStepAdmin(OfAnEnrolment, ReadOnlyAdmin):
    list_display = ["enrolment", "sequence", "event", "outcome", "actor", "at"]
    list_filter = ["outcome", "event"]
    list_select_related = ["enrolment__patient", "actor"]


@admin.register(ProcessedEvent)
class ProcessedEventAdmin(OfAnEnrolment, ReadOnlyAdmin):
    list_display = ["idempotency_key", "event", "outcome", "enrolment", "processed_at"]
    list_filter = ["outcome"]
    search_fields = ["idempotency_key"]


@admin.register(PathwayTimer)
class PathwayTimerAdmin(OfAnEnrolment, ListActionsAdmin):
    list_display = ["enrolment", "key", "event", "due_at", "status", "attempts", "next_attempt_at"]
    list_filter = ["status"]
    actions = ["retry_dead"]

    @admin.action(description="Retry the selected dead timers")
    def retry_dead(self, request: HttpRequest, queryset: QuerySet[PathwayTimer]) -> None:
        retried = 0
        for timer in queryset.filter(status=TimerStatus.DEAD):
            try:
                timer_retry(timer_id=timer.pk)
                retried += 1
            except ApplicationError as exc:
                self.message_user(request, f"{timer}: {exc.message}", messages.ERROR)
        self.message_user(request, f"{retried} dead timer(s) will fire again.")


@admin.register(OutboxEffect)
class OutboxEffectAdmin(OfAnEnrolment, ListActionsAdmin):
    list_display = ["pk", "kind", "enrolment", "status", "attempts", "available_at", "created_at"]
    list_filter = ["status", "kind"]
    actions = ["resend_dead"]

    @admin.action(description="Resend the selected dead effects")
    def resend_dead(self, request: HttpRequest, queryset: QuerySet[OutboxEffect]) -> None:
        for effect in queryset.filter(status=EffectStatus.DEAD):
            effect_resend(effect_id=effect.pk)
        self.message_user(request, "Dead effects were queued again.")


def _migration_choices() -> list[tuple[str, str]]:
    """Every migration the published definitions declare, as "key:from:to"."""
    return [
        (f"{d.key}:{m.source}:{d.version}", f"{d.title}: version {m.source} → {d.version}")
        for d in registry()
        for m in d.migrations
    ]


class MigrationDryRunForm(forms.Form):
    migration = forms.ChoiceField(label="Migration")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["migration"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = _migration_choices()


@admin.register(EnrolmentMigration)
class EnrolmentMigrationAdmin(OfAnEnrolment, ListActionsAdmin):
    """Migrations applied (with what a rollback restores), and the dry-run page: what a
    migration would do to each of the clinic's running enrolments, for a clinician to read
    before it is applied (`manage.py pathway migrate` or the API apply it)."""

    change_list_template = "admin/pathways/enrolmentmigration/change_list.html"

    list_display = [
        "enrolment",
        "definition_key",
        "from_version",
        "to_version",
        "classification",
        "status",
        "applied_at",
        "applied_by",
    ]
    list_filter = ["status", "classification", "definition_key"]
    list_select_related = ["enrolment__patient", "applied_by"]
    actions = ["roll_back"]

    def get_urls(self) -> list[Any]:
        from django.urls import path

        own = [
            path(
                "dry-run/",
                self.admin_site.admin_view(self.dry_run_view),
                name="pathways_enrolmentmigration_dry_run",
            )
        ]
        return own + super().get_urls()

    def dry_run_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied
        form = MigrationDryRunForm(request.GET or None)
        report = None
        if form.is_valid():
            key, old, new = form.cleaned_data["migration"].rsplit(":", 2)
            user = admin_user(request)
            clinic_id = None if user.is_superuser else user.clinic_id
            try:
                report = migration_dry_run(
                    definition_key=key,
                    from_version=int(old),
                    to_version=int(new),
                    clinic_id=clinic_id,
                )
            except ApplicationError as exc:
                form.add_error("migration", exc.message)
        context = {
            **self.admin_site.each_context(request),
            "title": "Pathway migration: dry run",
            "opts": self.model._meta,
            "form": form,
            "report": report,
            "counts": report.counts() if report else None,
        }
        return TemplateResponse(request, "admin/pathways/migration_dry_run.html", context)

    @admin.action(description="Roll back the selected migrations")
    def roll_back(self, request: HttpRequest, queryset: QuerySet[EnrolmentMigration]) -> None:
        done = 0
        for row in queryset.filter(status=MigrationStatus.APPLIED):
            try:
                migration_rollback(
                    enrolment_id=row.enrolment_id, user=admin_user(request), request=request
                )
                done += 1
            except ApplicationError as exc:
                self.message_user(request, f"{row}: {exc.message}", messages.ERROR)
        self.message_user(request, f"{done} migration(s) rolled back.")
