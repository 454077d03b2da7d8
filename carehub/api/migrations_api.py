"""Moving the clinic's running enrolments to a new version of a pathway (README, "Changing a
pathway"; the service is `carehub.pathways.migration`).

- `GET /pathways/{key}/migrations/{from}/{to}`: the dry run for the caller's clinic: every
  running enrolment on version `from`, classified (`automatic`, `changes`, `needs_approval`,
  `blocked`) with every change in the patient's local time. Writes nothing but the audit trail
  (one row per patient reported).
- `POST /pathways/{key}/migrations/{from}/{to}/apply` (with an `Idempotency-Key`): migrate the
  clinic's running enrolments, or those listed (`enrolments`: public ids); `approve: true`
  also migrates those that need a clinician's approval (a physician only). Each enrolment in
  its own transaction; a re-run migrates nothing twice.
- `POST /enrolments/{public_id}/migration/rollback` (with an `Idempotency-Key`): back to the
  previous version, states and timers; 409 when the pathway changed since the migration.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from carehub.api.patients import AuditedApi
from carehub.api.requests import StaffRequest, validated
from carehub.api.schema import example, problems
from carehub.audit.models import Action
from carehub.care_access import Operation
from carehub.core.exceptions import InvalidInput
from carehub.pathways.migration import migration_apply, migration_dry_run, migration_rollback
from carehub.pathways.models import Enrolment


class _EnrolmentReportSerializer(serializers.Serializer):
    enrolment = serializers.UUIDField()
    patient_id = serializers.IntegerField()
    patient = serializers.CharField(help_text="Name and MRN")
    time_zone = serializers.CharField(help_text="The patient's: the times in `changes`")
    classification = serializers.ChoiceField(
        choices=["automatic", "changes", "needs_approval", "blocked"]
    )
    reasons = serializers.ListField(
        child=serializers.CharField(), help_text="Why blocked, or what a clinician must confirm"
    )
    changes = serializers.ListField(child=serializers.CharField(), help_text="One per change")


class MigrationReportSerializer(serializers.Serializer):
    definition_key = serializers.CharField()
    from_version = serializers.IntegerField()
    to_version = serializers.IntegerField()
    description = serializers.CharField(allow_blank=True)
    at = serializers.DateTimeField()
    counts = serializers.DictField(child=serializers.IntegerField())
    enrolments = _EnrolmentReportSerializer(many=True)


class MigrationDryRunApi(AuditedApi):
    """What moving the clinic's running enrolments to the new version would do; writes nothing."""

    operation = Operation.PATHWAY_MIGRATION_VIEW
    audit_action = Action.PATHWAY_MIGRATION_DRY_RUN

    OutputSerializer = MigrationReportSerializer

    @extend_schema(
        operation_id="pathways_migrations_dry_run",
        tags=["pathways"],
        responses={200: MigrationReportSerializer, **problems(400, 403)},
    )
    def get(self, request: StaffRequest, key: str, from_version: int, to_version: int) -> Response:
        report = migration_dry_run(
            definition_key=key,
            from_version=from_version,
            to_version=to_version,
            clinic_id=request.user.clinic_id,
        )
        body = self.OutputSerializer(report.as_dict()).data
        self.audit(
            patients=[row.patient_id for row in report.enrolments],
            detail={"pathway": key, "from": from_version, "to": to_version},
        )
        return Response(body)


class MigrationApplyApi(AuditedApi):
    """Migrate the clinic's running enrolments (or those listed) to the new version."""

    operation = Operation.PATHWAY_MIGRATE
    audit_action = Action.ENROLMENT_MIGRATE

    class InputSerializer(serializers.Serializer):
        enrolments = serializers.ListField(
            child=serializers.UUIDField(),
            required=False,
            max_length=10_000,
            help_text="Public ids of the enrolments to migrate (default: all the clinic's)",
        )
        approve = serializers.BooleanField(
            default=False,
            help_text="Also migrate those that need a clinician's approval (physicians only)",
        )

    class OutputSerializer(serializers.Serializer):
        migrated = serializers.IntegerField()
        already = serializers.IntegerField(help_text="Already on the new version: unchanged")
        needs_approval = serializers.IntegerField(help_text="Left for a physician (`approve`)")
        blocked = serializers.IntegerField()
        locked = serializers.IntegerField(help_text="A change was in progress: apply again")
        skipped = serializers.IntegerField()

    @extend_schema(
        operation_id="pathways_migrations_apply",
        tags=["pathways"],
        request=InputSerializer,
        examples=[example("All", {}), example("Approved", {"approve": True})],
        responses={200: OutputSerializer, **problems(400, 403)},
    )
    def post(self, request: StaffRequest, key: str, from_version: int, to_version: int) -> Response:
        data = validated(self.InputSerializer, request.data)
        ids = None
        if "enrolments" in data.validated_data:
            wanted = data.validated_data["enrolments"]
            ids = list(
                Enrolment.objects.filter(
                    clinic_id=request.user.clinic_id, public_id__in=wanted
                ).values_list("pk", flat=True)
            )
            if len(ids) != len(set(wanted)):
                raise InvalidInput(
                    "Some enrolments are not this clinic's.", extra={"field": "enrolments"}
                )
        result = migration_apply(
            definition_key=key,
            from_version=from_version,
            to_version=to_version,
            user=request.user,
            clinic_id=request.user.clinic_id,
            enrolment_ids=ids,
            approve=data.validated_data["approve"],
            request=request,
        )
        counts = result.counts()
        # Each migrated patient is audited by the service; this row is the request's.
        self.audit(detail={"pathway": key, "from": from_version, "to": to_version, **counts})
        return Response(self.OutputSerializer(counts).data)


class EnrolmentMigrationRollbackApi(AuditedApi):
    """Undo the enrolment's last migration: its previous version, states and timers."""

    operation = Operation.PATHWAY_MIGRATE
    audit_action = Action.ENROLMENT_MIGRATE_ROLLBACK

    class OutputSerializer(serializers.Serializer):
        enrolment = serializers.UUIDField()
        definition_version = serializers.IntegerField(help_text="The version it is back on")
        rolled_back_from = serializers.IntegerField()

    @extend_schema(
        operation_id="enrolments_migration_rollback",
        tags=["enrolments"],
        request=None,
        responses={200: OutputSerializer, **problems(403, 404, 409)},
    )
    def post(self, request: StaffRequest, public_id: str) -> Response:
        enrolment = self.scoped_enrolment(public_id)
        done = migration_rollback(enrolment_id=enrolment.pk, user=request.user, request=request)
        self.audited = True  # the service recorded the rollback for this request
        body = {
            "enrolment": enrolment.public_id,
            "definition_version": done.from_version,
            "rolled_back_from": done.to_version,
        }
        return Response(self.OutputSerializer(body).data)
