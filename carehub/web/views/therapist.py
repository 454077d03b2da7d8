"""The therapists' workspace (physical therapists, psychologists, pharmacists): their care-team
patients only, what is due this week, their reminders, and logging a session."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from carehub.accounts.requests import StaffHttpRequest
from carehub.audit.models import Action, Outcome
from carehub.audit.services import audit_record
from carehub.care_access import Operation
from carehub.core.exceptions import InvalidInput
from carehub.web.access import staff_page
from carehub.web.actions import ActionResult, Once, renew_key, run_once
from carehub.web.forms import SessionLogForm, TaskCompleteForm
from carehub.web.selectors.patient import patient_for_user
from carehub.web.selectors.workspace import workspace_for_user
from carehub.web.services import session_log
from carehub.web.therapy import therapy_role
from carehub.web.views.patient import record_and_tell, render_patient, told_message


@require_GET
@staff_page(Operation.THERAPIST_WORKSPACE, Action.PATIENT_LIST)
def workspace_view(request: StaffHttpRequest) -> HttpResponse:
    user = request.user
    role = therapy_role(user.role)
    track = role.track if role else ""
    status = 200
    try:
        workspace = workspace_for_user(
            user=user,
            track=track,
            cursor=request.GET.get("after", ""),
            tasks_cursor=request.GET.get("tasks_after", ""),
        )
    except InvalidInput as exc:  # a page link that was not ours (cursors are signed)
        messages.error(request, exc.message)
        workspace, status = workspace_for_user(user=user, track=track), 400
    audit_record(
        request=request,
        action=Action.PATIENT_LIST,
        patients=[row.patient for row in workspace.rows],
        detail={"page": "workspace", "listed": len(workspace.rows)},
    )
    return render(
        request,
        "web/workspace.html",
        {
            "workspace": workspace,
            "role": role,
            "task_form": TaskCompleteForm(),
            "nav": "workspace",
        },
        status=status,
    )


@require_POST
@staff_page(Operation.SESSION_LOG, Action.OBSERVATION_SESSION)
def session_log_view(request: StaffHttpRequest, patient_id: int) -> HttpResponse:
    user = request.user
    patient = patient_for_user(user=user, patient_id=patient_id)
    role = therapy_role(user.role)
    if role is None or role.session_discipline is None:  # the matrix allows only therapists
        return render_patient(request, patient, status=403)
    form = SessionLogForm(request.POST, prefix="s", measure_label=role.measure_label)
    if not form.is_valid():
        result = ActionResult(ok=False, message="Please correct the form.", status=400)
    else:
        data = form.cleaned_data

        def perform(once: Once) -> str:
            told = record_and_tell(
                once,
                form,
                patient=patient,
                user=user,
                event=role.session_event,
                step="session",
                record=lambda: session_log(
                    patient=patient,
                    discipline=role.session_discipline,  # type: ignore[arg-type]
                    attended=data["attended"],
                    observed_at=data["observed_at"],
                    notes=data["notes"],
                    measure=role.measure,
                    score=data.get("measure_score"),
                    user=user,
                ),
                names={"score": "measure_score"},
            )
            text = "Session logged (attended)." if data["attended"] else "No-show logged."
            if role.measure and data.get("measure_score") is not None:
                text += f" {role.measure.upper()} {data['measure_score']:g} recorded."
            message = told_message(told)
            text += f" {message}" if message else ""
            return text

        result = run_once(
            request, form=form, action=Action.OBSERVATION_SESSION, target=patient, perform=perform
        )
        if result.kind == "reused":
            renew_key(form)
    audit_record(
        request=request,
        action=Action.OBSERVATION_SESSION,
        patient=patient,
        obj=patient,
        outcome=Outcome.OK if result.ok else Outcome.ERROR,
        detail={"status": result.status, "replayed": result.replayed},
    )
    if result.ok:
        # The page opens at its top, where the message is (the timeline shows the session).
        messages.success(request, result.message)
        return redirect(reverse("web:patient", args=[patient.pk]))
    return render_patient(
        request, patient, bound={"session": form, "session-error": result}, status=result.status
    )
