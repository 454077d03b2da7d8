from collections.abc import Callable

from django.http import HttpResponseBase
from django.urls import path

from carehub.web.views import auth, caseload, patient, sandbox, therapist, worklists

app_name = "web"

_PATIENT = "patients/<int:patient_id>"
_ENROLMENT = f"{_PATIENT}/enrolments/<uuid:public_id>"

# (route, view, URL name), in the order they are matched.
ROUTES: list[tuple[str, Callable[..., HttpResponseBase], str]] = [
    ("", auth.home_view, "home"),
    ("login/", auth.LoginView.as_view(), "login"),
    ("logout/", auth.logout_view, "logout"),
    ("caseload/", caseload.caseload_view, "caseload"),
    (f"{_PATIENT}/", patient.patient_view, "patient"),
    (
        f"{_PATIENT}/proposals/<int:proposal_id>/decide",
        patient.proposal_decide_view,
        "proposal-decide",
    ),
    (f"{_PATIENT}/procedure", patient.procedure_view, "procedure"),
    (f"{_PATIENT}/procedure-result", patient.procedure_result_view, "procedure-result"),
    (f"{_ENROLMENT}/pause", patient.pause_view, "enrolment-pause"),
    (f"{_ENROLMENT}/resume", patient.resume_view, "enrolment-resume"),
    (f"{_ENROLMENT}/discharge", patient.discharge_view, "enrolment-discharge"),
    (f"{_ENROLMENT}/event", patient.event_view, "enrolment-event"),
    (f"{_PATIENT}/score/<slug:instrument>", patient.score_view, "score"),
    (f"{_PATIENT}/session", therapist.session_log_view, "session-log"),
    ("flags/", worklists.flags_view, "flags"),
    ("flags/<int:flag_id>/<str:action>", worklists.flag_update_view, "flag-update"),
    ("tasks/", worklists.tasks_view, "tasks"),
    ("tasks/<int:task_id>/complete", worklists.task_complete_view, "task-complete"),
    ("messages/dead/", worklists.dead_messages_view, "dead-messages"),
    ("messages/<int:message_id>/resend", worklists.message_resend_view, "message-resend"),
    (
        "messages/<int:message_id>/fix-contact",
        worklists.message_fix_contact_view,
        "message-fix-contact",
    ),
    ("my/", therapist.workspace_view, "workspace"),
    ("test-clock/", sandbox.test_clock_view, "test-clock"),
    ("test-clock/advance", sandbox.test_clock_advance_view, "test-clock-advance"),
]

urlpatterns = [path(route, view, name=name) for route, view, name in ROUTES]
