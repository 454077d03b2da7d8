from django.urls import path

from carehub.web.views import auth, caseload, patient, sandbox, therapist, worklists

app_name = "web"

urlpatterns = [
    path("", auth.home_view, name="home"),
    path("login/", auth.LoginView.as_view(), name="login"),
    path("logout/", auth.logout_view, name="logout"),
    path("caseload/", caseload.caseload_view, name="caseload"),
    path("patients/<int:patient_id>/", patient.patient_view, name="patient"),
    path(
        "patients/<int:patient_id>/proposals/<int:proposal_id>/decide",
        patient.proposal_decide_view,
        name="proposal-decide",
    ),
    path("patients/<int:patient_id>/procedure", patient.procedure_view, name="procedure"),
    path(
        "patients/<int:patient_id>/procedure-result",
        patient.procedure_result_view,
        name="procedure-result",
    ),
    path(
        "patients/<int:patient_id>/enrolments/<uuid:public_id>/pause",
        patient.pause_view,
        name="enrolment-pause",
    ),
    path(
        "patients/<int:patient_id>/enrolments/<uuid:public_id>/resume",
        patient.resume_view,
        name="enrolment-resume",
    ),
    path(
        "patients/<int:patient_id>/enrolments/<uuid:public_id>/discharge",
        patient.discharge_view,
        name="enrolment-discharge",
    ),
    path(
        "patients/<int:patient_id>/enrolments/<uuid:public_id>/event",
        patient.event_view,
        name="enrolment-event",
    ),
    path("patients/<int:patient_id>/score/<slug:instrument>", patient.score_view, name="score"),
    path("patients/<int:patient_id>/session", therapist.session_log_view, name="session-log"),
    path("flags/", worklists.flags_view, name="flags"),
    path("flags/<int:flag_id>/<str:action>", worklists.flag_update_view, name="flag-update"),
    path("tasks/", worklists.tasks_view, name="tasks"),
    path("tasks/<int:task_id>/complete", worklists.task_complete_view, name="task-complete"),
    path("messages/dead/", worklists.dead_messages_view, name="dead-messages"),
    path("messages/<int:message_id>/resend", worklists.message_resend_view, name="message-resend"),
    path(
        "messages/<int:message_id>/fix-contact",
        worklists.message_fix_contact_view,
        name="message-fix-contact",
    ),
    path("my/", therapist.workspace_view, name="workspace"),
    path("test-clock/", sandbox.test_clock_view, name="test-clock"),
    path("test-clock/advance", sandbox.test_clock_advance_view, name="test-clock-advance"),
]
