"""The audit trail: one row per patient touched by a request (read or write).

Append-only: a database trigger refuses UPDATE and DELETE, `save()` refuses to update an
existing row and the admin is read-only. `detail` carries identifiers and codes only, never
patient data (no names, no search terms, no clinical values).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models

from carehub.core.clock import wall_now
from carehub.core.exceptions import Conflict


class Action(models.TextChoices):
    """The one vocabulary of audited actions, whatever the door (API, pages, portal, link,
    admin): the same act has the same name everywhere, and a refused act is recorded under the
    act attempted. `audit_record` refuses any other name."""

    PATIENT_LIST = "patient.list"
    PATIENT_VIEW = "patient.view"
    ENROLMENT_LIST = "enrolment.list"
    ENROLMENT_VIEW = "enrolment.view"
    ENROLMENT_TIMELINE = "enrolment.timeline"
    ENROLMENT_START = "enrolment.start"
    ENROLMENT_EVENT_SEND = "enrolment.event_send"
    ENROLMENT_DISCHARGE = "enrolment.discharge"
    PROPOSAL_LIST = "proposal.list"
    PROPOSAL_APPROVE = "proposal.approve"
    PROPOSAL_REJECT = "proposal.reject"
    TASK_LIST = "task.list"
    TASK_COMPLETE = "task.complete"
    FLAG_LIST = "flag.list"
    FLAG_ACKNOWLEDGE = "flag.acknowledge"
    FLAG_RESOLVE = "flag.resolve"
    ENROLMENT_PAUSE = "enrolment.pause"
    ENROLMENT_RESUME = "enrolment.resume"
    ENROLMENT_MIGRATE = "enrolment.migrate"
    ENROLMENT_MIGRATE_ROLLBACK = "enrolment.migrate_rollback"
    PATHWAY_MIGRATION_DRY_RUN = "pathway.migration_dry_run"
    CHECKIN_LIST = "checkin.list"
    CHECKIN_VIEW = "checkin.view"
    OBSERVATION_LIST = "observation.list"
    OBSERVATION_PROCEDURE = "observation.procedure"
    OBSERVATION_PROCEDURE_RESULT = "observation.procedure_result"
    OBSERVATION_SESSION = "observation.session"
    OBSERVATION_SCORE = "observation.score"
    THRESHOLD_LIST = "threshold.list"
    THRESHOLD_SET = "threshold.set"
    MESSAGE_LIST = "message.list"
    MESSAGE_DEAD_LIST = "message.dead_list"
    MESSAGE_RESEND = "message.resend"
    PATIENT_CONTACT_UPDATE = "patient.contact_update"
    ADMIN_VIEW = "admin.view"
    ADMIN_CHANGE = "admin.change"
    # The patient's own pages (the portal); answers to a check-in (API, portal or link).
    PORTAL_VIEW = "portal.view"
    CHECKIN_SUBMIT = "checkin.submit"
    # The change feed and webhook receivers (carehub.integrations).
    EVENT_LIST = "event.list"
    WEBHOOK_LIST = "webhook.list"
    WEBHOOK_VIEW = "webhook.view"
    WEBHOOK_CREATE = "webhook.create"
    WEBHOOK_UPDATE = "webhook.update"
    WEBHOOK_DELIVERY_LIST = "webhook.delivery_list"
    WEBHOOK_DELIVERY_RESEND = "webhook.delivery_resend"
    # The development backends' record of sent messages (bodies name patients).
    SENT_MESSAGES_VIEW = "sent_messages.view"
    # Connecting a clinic's systems: registering and changing patients, care teams, intake
    # facts and medications, what a pathway reads and waits for, tasks, opening a check-in.
    PATIENT_CREATE = "patient.create"
    PATIENT_UPDATE = "patient.update"
    PATIENT_DEACTIVATE = "patient.deactivate"
    CARE_TEAM_SET = "care_team.set"
    OBSERVATION_PAIN_ONSET = "observation.pain_onset"
    OBSERVATION_CONSERVATIVE_CARE = "observation.conservative_care"
    OBSERVATION_FAILED_TREATMENT = "observation.failed_treatment"
    OBSERVATION_PSYCH_EVALUATION = "observation.psych_evaluation"
    OBSERVATION_STATUS = "observation.status"
    OBSERVATION_MEDICATION = "observation.medication"
    OBSERVATION_WITHDRAW = "observation.withdraw"
    MEDICATION_LIST = "medication.list"
    ENROLMENT_FACTS = "enrolment.facts"
    ENROLMENT_TIMERS = "enrolment.timers"
    ENROLMENT_NEXT_DUE = "enrolment.next_due"
    TASK_CREATE = "task.create"
    TASK_ASSIGN = "task.assign"
    TASK_CANCEL = "task.cancel"
    CHECKIN_OPEN = "checkin.open"
    STAFF_LIST = "staff.list"
    # The FHIR R4 endpoints (carehub.fhir).
    FHIR_READ = "fhir.read"
    FHIR_SEARCH = "fhir.search"
    FHIR_IMPORT = "fhir.import"
    FHIR_EXPORT = "fhir.export"
    # A sandbox clinic's test clock (ADR 0024).
    TEST_CLOCK_VIEW = "test_clock.view"
    TEST_CLOCK_ADVANCE = "test_clock.advance"


class Outcome(models.TextChoices):
    OK = "ok"
    DENIED = "denied"
    ERROR = "error"


class AuditEvent(models.Model):
    at = models.DateTimeField(default=wall_now)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    actor_role = models.CharField(max_length=32, blank=True)
    clinic = models.ForeignKey(
        "clinics.Clinic", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    action = models.CharField(max_length=32, choices=Action.choices)
    object_type = models.CharField(max_length=32, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=256, blank=True)
    outcome = models.CharField(max_length=8, choices=Outcome.choices, default=Outcome.OK)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["clinic", "at"]),
            models.Index(fields=["patient", "at"]),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.outcome} by {self.actor_id} at {self.at:%Y-%m-%d %H:%M:%S}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise Conflict("Audit events are append-only: an existing row cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise Conflict("Audit events are append-only: a row cannot be deleted.")
