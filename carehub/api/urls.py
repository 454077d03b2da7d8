"""/api/v1/: one URL per resource, one <Entity><Action>Api per operation."""

from django.urls import path

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


urlpatterns = [
    path("auth/token", AuthTokenApi.as_view(), name="auth-token"),
    path("events", EventFeedApi.as_view(), name="event-list"),
    path("webhooks", WebhookListCreateApi.as_view(), name="webhook-list"),
    path("webhooks/<int:webhook_id>", WebhookDetailApi.as_view(), name="webhook-detail"),
    path(
        "webhooks/<int:webhook_id>/deliveries",
        WebhookDeliveryListApi.as_view(),
        name="webhook-deliveries",
    ),
    path(
        "webhook-deliveries/<int:delivery_id>/resend",
        WebhookDeliveryResendApi.as_view(),
        name="webhook-delivery-resend",
    ),
    path("pathways", PathwayListApi.as_view(), name="pathway-list"),
    path("pathways/<slug:key>/<int:version>", PathwayDetailApi.as_view(), name="pathway-detail"),
    path(
        "pathways/<slug:key>/migrations/<int:from_version>/<int:to_version>",
        MigrationDryRunApi.as_view(),
        name="pathway-migration-dry-run",
    ),
    path(
        "pathways/<slug:key>/migrations/<int:from_version>/<int:to_version>/apply",
        MigrationApplyApi.as_view(),
        name="pathway-migration-apply",
    ),
    path(
        "pathways/<slug:key>/<int:version>/diagram",
        PathwayDiagramApi.as_view(),
        name="pathway-diagram",
    ),
    path("staff", StaffListApi.as_view(), name="staff-list"),
    path("clinic/test-clock", SandboxClockApi.as_view(), name="test-clock"),
    path("clinic/test-clock/advance", SandboxClockAdvanceApi.as_view(), name="test-clock-advance"),
    path("patients", PatientsApi.as_view(), name="patient-list"),
    path("patients/<int:patient_id>", PatientDetailUpdateApi.as_view(), name="patient-detail"),
    path(
        "patients/<int:patient_id>/deactivate",
        PatientDeactivateApi.as_view(),
        name="patient-deactivate",
    ),
    path(
        "patients/<int:patient_id>/care-team",
        PatientCareTeamSetApi.as_view(),
        name="patient-care-team",
    ),
    path(
        "patients/<int:patient_id>/pain-onset",
        PatientPainOnsetRecordApi.as_view(),
        name="patient-pain-onset",
    ),
    path(
        "patients/<int:patient_id>/conservative-care-start",
        PatientConservativeCareStartRecordApi.as_view(),
        name="patient-conservative-care-start",
    ),
    path(
        "patients/<int:patient_id>/failed-treatments",
        PatientFailedTreatmentRecordApi.as_view(),
        name="patient-failed-treatments",
    ),
    path(
        "patients/<int:patient_id>/psych-evaluations",
        PatientPsychEvaluationRecordApi.as_view(),
        name="patient-psych-evaluations",
    ),
    path(
        "patients/<int:patient_id>/statuses",
        PatientStatusRecordApi.as_view(),
        name="patient-statuses",
    ),
    path(
        "patients/<int:patient_id>/medications",
        PatientMedicationsApi.as_view(),
        name="patient-medications",
    ),
    path("patients/<int:patient_id>/tasks", PatientTaskCreateApi.as_view(), name="patient-tasks"),
    path(
        "patients/<int:patient_id>/enrolments",
        PatientEnrolmentsApi.as_view(),
        name="patient-enrolments",
    ),
    path(
        "patients/<int:patient_id>/checkins",
        PatientCheckinListApi.as_view(),
        name="patient-checkins",
    ),
    path(
        "patients/<int:patient_id>/observations",
        PatientObservationListApi.as_view(),
        name="patient-observations",
    ),
    path(
        "patients/<int:patient_id>/procedures",
        PatientProcedureRecordApi.as_view(),
        name="patient-procedures",
    ),
    path(
        "patients/<int:patient_id>/sessions",
        PatientSessionRecordApi.as_view(),
        name="patient-sessions",
    ),
    path(
        "patients/<int:patient_id>/scores", PatientScoreRecordApi.as_view(), name="patient-scores"
    ),
    path(
        "patients/<int:patient_id>/messages",
        PatientMessageListApi.as_view(),
        name="patient-messages",
    ),
    path("enrolments/<uuid:public_id>", EnrolmentDetailApi.as_view(), name="enrolment-detail"),
    path(
        "enrolments/<uuid:public_id>/timeline",
        EnrolmentTimelineApi.as_view(),
        name="enrolment-timeline",
    ),
    path("enrolments/<uuid:public_id>/facts", EnrolmentFactsApi.as_view(), name="enrolment-facts"),
    path(
        "enrolments/<uuid:public_id>/timers", EnrolmentTimersApi.as_view(), name="enrolment-timers"
    ),
    path(
        "enrolments/<uuid:public_id>/next-due",
        EnrolmentNextDueApi.as_view(),
        name="enrolment-next-due",
    ),
    path(
        "enrolments/<uuid:public_id>/events",
        EnrolmentEventSendApi.as_view(),
        name="enrolment-events",
    ),
    path("enrolments/<uuid:public_id>/pause", EnrolmentPauseApi.as_view(), name="enrolment-pause"),
    path(
        "enrolments/<uuid:public_id>/resume", EnrolmentResumeApi.as_view(), name="enrolment-resume"
    ),
    path(
        "enrolments/<uuid:public_id>/discharge",
        EnrolmentDischargeApi.as_view(),
        name="enrolment-discharge",
    ),
    path(
        "enrolments/<uuid:public_id>/migration/rollback",
        EnrolmentMigrationRollbackApi.as_view(),
        name="enrolment-migration-rollback",
    ),
    path("checkins/<int:checkin_id>", CheckinDetailApi.as_view(), name="checkin-detail"),
    path(
        "checkins/<int:checkin_id>/answers",
        CheckinAnswerSubmitApi.as_view(),
        name="checkin-answers",
    ),
    path("checkins/<int:checkin_id>/open", CheckinOpenApi.as_view(), name="checkin-open"),
    path(
        "observations/<int:observation_id>/withdraw",
        ObservationWithdrawApi.as_view(),
        name="observation-withdraw",
    ),
    path(
        "observations/<int:observation_id>/result",
        ObservationResultRecordApi.as_view(),
        name="observation-result",
    ),
    path("instruments", InstrumentListApi.as_view(), name="instrument-list"),
    path(
        "instruments/<slug:key>/<int:version>",
        InstrumentDetailApi.as_view(),
        name="instrument-detail",
    ),
    path("messages/dead", MessageDeadListApi.as_view(), name="message-dead-list"),
    path("messages/<int:message_id>/resend", MessageResendApi.as_view(), name="message-resend"),
    path("thresholds", ThresholdListApi.as_view(), name="threshold-list"),
    path(
        "thresholds/<slug:pathway_key>/<slug:name>",
        ThresholdSetApi.as_view(),
        name="threshold-set",
    ),
    path("proposals", ProposalListApi.as_view(), name="proposal-list"),
    path(
        "proposals/<int:proposal_id>/approve", ProposalApproveApi.as_view(), name="proposal-approve"
    ),
    path("proposals/<int:proposal_id>/reject", ProposalRejectApi.as_view(), name="proposal-reject"),
    path("tasks", TaskListApi.as_view(), name="task-list"),
    path("tasks/<int:task_id>/complete", TaskCompleteApi.as_view(), name="task-complete"),
    path("tasks/<int:task_id>/assign", TaskAssignApi.as_view(), name="task-assign"),
    path("tasks/<int:task_id>/cancel", TaskCancelApi.as_view(), name="task-cancel"),
    path("flags", FlagListApi.as_view(), name="flag-list"),
    path("flags/<int:flag_id>/acknowledge", FlagAcknowledgeApi.as_view(), name="flag-acknowledge"),
    path("flags/<int:flag_id>/resolve", FlagResolveApi.as_view(), name="flag-resolve"),
]
