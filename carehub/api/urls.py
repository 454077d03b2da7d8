"""/api/v1/: one URL per resource, one <Entity><Action>Api per operation."""

from django.urls import path
from rest_framework.views import APIView

from carehub.api.auth import AuthTokenApi
from carehub.api.checkins import (
    CheckinAnswerSubmitApi,
    CheckinDetailApi,
    CheckinOpenApi,
    PatientCheckinListApi,
)
from carehub.api.definitions import PathwayDetailApi, PathwayDiagramApi, PathwayListApi
from carehub.api.enrolment_reads import EnrolmentFactsApi, EnrolmentNextDueApi, EnrolmentTimersApi
from carehub.api.instruments import InstrumentDetailApi, InstrumentListApi
from carehub.api.intake import (
    ObservationWithdrawApi,
    PatientConservativeCareStartRecordApi,
    PatientFailedTreatmentRecordApi,
    PatientMedicationsApi,
    PatientPainOnsetRecordApi,
    PatientPsychEvaluationRecordApi,
    PatientStatusRecordApi,
)
from carehub.api.integrations import (
    EventFeedApi,
    WebhookDeliveryListApi,
    WebhookDeliveryResendApi,
    WebhookDetailApi,
    WebhookListCreateApi,
)
from carehub.api.lifecycle import (
    EnrolmentDischargeApi,
    EnrolmentPauseApi,
    EnrolmentResumeApi,
    PatientEnrolmentsApi,
)
from carehub.api.messages import MessageDeadListApi, MessageResendApi, PatientMessageListApi
from carehub.api.migrations_api import (
    EnrolmentMigrationRollbackApi,
    MigrationApplyApi,
    MigrationDryRunApi,
)
from carehub.api.observations import (
    ObservationResultRecordApi,
    PatientObservationListApi,
    PatientProcedureRecordApi,
    PatientScoreRecordApi,
    PatientSessionRecordApi,
)
from carehub.api.pathways import (
    EnrolmentDetailApi,
    EnrolmentEventSendApi,
    EnrolmentTimelineApi,
    ProposalApproveApi,
    ProposalListApi,
    ProposalRejectApi,
)
from carehub.api.registration import (
    PatientCareTeamSetApi,
    PatientDeactivateApi,
    PatientDetailUpdateApi,
    PatientsApi,
    StaffListApi,
)
from carehub.api.sandbox import SandboxClockAdvanceApi, SandboxClockApi
from carehub.api.thresholds import ThresholdListApi, ThresholdSetApi
from carehub.api.worklists import (
    FlagAcknowledgeApi,
    FlagListApi,
    FlagResolveApi,
    PatientTaskCreateApi,
    TaskAssignApi,
    TaskCancelApi,
    TaskCompleteApi,
    TaskListApi,
)

app_name = "api"

_MIGRATION = "pathways/<slug:key>/migrations/<int:from_version>/<int:to_version>"
_DELIVERY = "webhook-deliveries/<int:delivery_id>"
_PATIENT = "patients/<int:patient_id>"
_ENROLMENT = "enrolments/<uuid:public_id>"

Route = tuple[str, type[APIView], str]


def _below(prefix: str, name: str, *routes: tuple[str, type[APIView]]) -> list[Route]:
    """Routes below `prefix`, each named `<name>-<its path below it, / as ->`."""
    return [(f"{prefix}/{sub}", view, f"{name}-{sub.replace('/', '-')}") for sub, view in routes]


# (route, view, URL name), in the order they are matched.
ROUTES: list[Route] = [
    ("auth/token", AuthTokenApi, "auth-token"),
    ("events", EventFeedApi, "event-list"),
    ("webhooks", WebhookListCreateApi, "webhook-list"),
    ("webhooks/<int:webhook_id>", WebhookDetailApi, "webhook-detail"),
    ("webhooks/<int:webhook_id>/deliveries", WebhookDeliveryListApi, "webhook-deliveries"),
    (f"{_DELIVERY}/resend", WebhookDeliveryResendApi, "webhook-delivery-resend"),
    ("pathways", PathwayListApi, "pathway-list"),
    ("pathways/<slug:key>/<int:version>", PathwayDetailApi, "pathway-detail"),
    (_MIGRATION, MigrationDryRunApi, "pathway-migration-dry-run"),
    (f"{_MIGRATION}/apply", MigrationApplyApi, "pathway-migration-apply"),
    ("pathways/<slug:key>/<int:version>/diagram", PathwayDiagramApi, "pathway-diagram"),
    ("staff", StaffListApi, "staff-list"),
    ("clinic/test-clock", SandboxClockApi, "test-clock"),
    ("clinic/test-clock/advance", SandboxClockAdvanceApi, "test-clock-advance"),
    ("patients", PatientsApi, "patient-list"),
    (_PATIENT, PatientDetailUpdateApi, "patient-detail"),
    *_below(
        _PATIENT,
        "patient",
        ("deactivate", PatientDeactivateApi),
        ("care-team", PatientCareTeamSetApi),
        ("pain-onset", PatientPainOnsetRecordApi),
        ("conservative-care-start", PatientConservativeCareStartRecordApi),
        ("failed-treatments", PatientFailedTreatmentRecordApi),
        ("psych-evaluations", PatientPsychEvaluationRecordApi),
        ("statuses", PatientStatusRecordApi),
        ("medications", PatientMedicationsApi),
        ("tasks", PatientTaskCreateApi),
        ("enrolments", PatientEnrolmentsApi),
        ("checkins", PatientCheckinListApi),
        ("observations", PatientObservationListApi),
        ("procedures", PatientProcedureRecordApi),
        ("sessions", PatientSessionRecordApi),
        ("scores", PatientScoreRecordApi),
        ("messages", PatientMessageListApi),
    ),
    (_ENROLMENT, EnrolmentDetailApi, "enrolment-detail"),
    *_below(
        _ENROLMENT,
        "enrolment",
        ("timeline", EnrolmentTimelineApi),
        ("facts", EnrolmentFactsApi),
        ("timers", EnrolmentTimersApi),
        ("next-due", EnrolmentNextDueApi),
        ("events", EnrolmentEventSendApi),
        ("pause", EnrolmentPauseApi),
        ("resume", EnrolmentResumeApi),
        ("discharge", EnrolmentDischargeApi),
        ("migration/rollback", EnrolmentMigrationRollbackApi),
    ),
    ("checkins/<int:checkin_id>", CheckinDetailApi, "checkin-detail"),
    ("checkins/<int:checkin_id>/answers", CheckinAnswerSubmitApi, "checkin-answers"),
    ("checkins/<int:checkin_id>/open", CheckinOpenApi, "checkin-open"),
    ("observations/<int:observation_id>/withdraw", ObservationWithdrawApi, "observation-withdraw"),
    ("observations/<int:observation_id>/result", ObservationResultRecordApi, "observation-result"),
    ("instruments", InstrumentListApi, "instrument-list"),
    ("instruments/<slug:key>/<int:version>", InstrumentDetailApi, "instrument-detail"),
    ("messages/dead", MessageDeadListApi, "message-dead-list"),
    ("messages/<int:message_id>/resend", MessageResendApi, "message-resend"),
    ("thresholds", ThresholdListApi, "threshold-list"),
    ("thresholds/<slug:pathway_key>/<slug:name>", ThresholdSetApi, "threshold-set"),
    ("proposals", ProposalListApi, "proposal-list"),
    ("proposals/<int:proposal_id>/approve", ProposalApproveApi, "proposal-approve"),
    ("proposals/<int:proposal_id>/reject", ProposalRejectApi, "proposal-reject"),
    ("tasks", TaskListApi, "task-list"),
    ("tasks/<int:task_id>/complete", TaskCompleteApi, "task-complete"),
    ("tasks/<int:task_id>/assign", TaskAssignApi, "task-assign"),
    ("tasks/<int:task_id>/cancel", TaskCancelApi, "task-cancel"),
    ("flags", FlagListApi, "flag-list"),
    ("flags/<int:flag_id>/acknowledge", FlagAcknowledgeApi, "flag-acknowledge"),
    ("flags/<int:flag_id>/resolve", FlagResolveApi, "flag-resolve"),
]

urlpatterns = [path(route, view.as_view(), name=name) for route, view, name in ROUTES]
