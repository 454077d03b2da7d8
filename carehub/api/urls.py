"""/api/v1/: one URL per resource, one <Entity><Action>Api per operation."""

from django.urls import path

from carehub.api.auth import AuthTokenApi
from carehub.api.definitions import PathwayDetailApi, PathwayDiagramApi, PathwayListApi
from carehub.api.pathways import (
    EnrolmentDetailApi,
    EnrolmentEventSendApi,
    EnrolmentTimelineApi,
    ProposalApproveApi,
    ProposalListApi,
    ProposalRejectApi,
)
from carehub.api.patients import PatientDetailApi, PatientEnrolmentListApi, PatientListApi
from carehub.api.worklists import (
    FlagAcknowledgeApi,
    FlagListApi,
    FlagResolveApi,
    TaskCompleteApi,
    TaskListApi,
)

app_name = "api"

urlpatterns = [
    path("auth/token", AuthTokenApi.as_view(), name="auth-token"),
    path("pathways", PathwayListApi.as_view(), name="pathway-list"),
    path("pathways/<slug:key>/<int:version>", PathwayDetailApi.as_view(), name="pathway-detail"),
    path(
        "pathways/<slug:key>/<int:version>/diagram",
        PathwayDiagramApi.as_view(),
        name="pathway-diagram",
    ),
    path("patients", PatientListApi.as_view(), name="patient-list"),
    path("patients/<int:patient_id>", PatientDetailApi.as_view(), name="patient-detail"),
    path(
        "patients/<int:patient_id>/enrolments",
        PatientEnrolmentListApi.as_view(),
        name="patient-enrolments",
    ),
    path("enrolments/<uuid:public_id>", EnrolmentDetailApi.as_view(), name="enrolment-detail"),
    path(
        "enrolments/<uuid:public_id>/timeline",
        EnrolmentTimelineApi.as_view(),
        name="enrolment-timeline",
    ),
    path(
        "enrolments/<uuid:public_id>/events",
        EnrolmentEventSendApi.as_view(),
        name="enrolment-events",
    ),
    path("proposals", ProposalListApi.as_view(), name="proposal-list"),
    path(
        "proposals/<int:proposal_id>/approve", ProposalApproveApi.as_view(), name="proposal-approve"
    ),
    path("proposals/<int:proposal_id>/reject", ProposalRejectApi.as_view(), name="proposal-reject"),
    path("tasks", TaskListApi.as_view(), name="task-list"),
    path("tasks/<int:task_id>/complete", TaskCompleteApi.as_view(), name="task-complete"),
    path("flags", FlagListApi.as_view(), name="flag-list"),
    path("flags/<int:flag_id>/acknowledge", FlagAcknowledgeApi.as_view(), name="flag-acknowledge"),
    path("flags/<int:flag_id>/resolve", FlagResolveApi.as_view(), name="flag-resolve"),
]
