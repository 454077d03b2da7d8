"""Worklists: the flags inbox (urgent first; acknowledge, resolve), the task worklist of a
discipline (complete) and the dead messages with resend. Row actions work as plain forms and,
with htmx, replace just the row."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from carehub.accounts.models import STAFF_ROLES, Role, User
from carehub.accounts.requests import StaffHttpRequest
from carehub.audit.models import Action, Outcome
from carehub.audit.services import audit_record
from carehub.care_access import Operation
from carehub.core.exceptions import Conflict, InvalidInput, NotFound
from carehub.messaging.models import Message
from carehub.messaging.selectors import dead_message_states
from carehub.messaging.services import message_resend
from carehub.patients.services import patient_contact_update
from carehub.web.access import staff_page
from carehub.web.actions import ActionResult, Once, run_once
from carehub.web.forms import ContactFixForm, FlagUpdateForm, ResendForm, TaskCompleteForm
from carehub.web.selectors.worklists import (
    dead_message_get_for_user,
    dead_messages_for_user,
    flag_get_for_user,
    flag_inbox_for_user,
    task_get_for_user,
    task_worklist_for_user,
)
from carehub.worklists.models import FlagStatus
from carehub.worklists.services import care_task_complete, flag_set_status

LIST_LIMIT = 200
FLAG_ACTIONS = {
    "acknowledge": (FlagStatus.ACKNOWLEDGED, Action.FLAG_ACKNOWLEDGE, "Acknowledged"),
    "resolve": (FlagStatus.RESOLVED, Action.FLAG_RESOLVE, "Resolved"),
}


def _respond(
    request: StaffHttpRequest,
    result: ActionResult,
    *,
    redirect_to: str,
    row_template: str,
    row_context: dict[str, Any],
) -> HttpResponse:
    if request.htmx:
        return render(
            request,
            row_template,
            {**row_context, "result": result},
            status=200 if result.ok else result.status,
        )
    messages.add_message(request, messages.SUCCESS if result.ok else messages.ERROR, result.message)
    return redirect(redirect_to)


def _once(
    perform: Callable[[], str] | None, perform_once: Callable[[Once], str] | None
) -> Callable[[Once], str]:
    """The action as `run_once` calls it: `perform_once`, or `perform` ignoring the key."""
    if perform_once is not None:
        return perform_once
    if perform is None:
        raise TypeError("a row action needs perform or perform_once")
    plain = perform
    return lambda once: plain()


def _row_action(
    request: StaffHttpRequest,
    obj: Any,
    form: Any,
    *,
    action: str,
    perform: Callable[[], str] | None = None,
    perform_once: Callable[[Once], str] | None = None,
    patient: Any,
    redirect_to: str,
    row_template: str,
    row_name: str,
    refused_page: Callable[[ActionResult], HttpResponse] | None = None,
) -> HttpResponse:
    """One row's action (acknowledge, complete, resend...): run once per form key (the key of
    another row's form is refused), audit, and answer with the refreshed row (htmx) or a
    redirect with a message. A refusal naming fields re-renders the row with the text sent
    and the error by its field; without htmx, `refused_page` shows it (else a redirect)."""
    if not form.is_valid():
        result = ActionResult(ok=False, message="The form expired: reload the page.", status=400)
    else:
        result = run_once(
            request, form=form, action=action, target=obj, perform=_once(perform, perform_once)
        )
    obj.refresh_from_db()
    audit_record(
        request=request,
        action=action,
        patient=patient,
        obj=obj,
        outcome=Outcome.OK if result.ok else Outcome.ERROR,
        detail={row_name: obj.pk, "status": result.status, "replayed": result.replayed},
    )
    if result.fields and refused_page is not None and not request.htmx:
        return refused_page(result)
    sent = form.data if result.fields else {}
    return _respond(
        request,
        result,
        redirect_to=redirect_to,
        row_template=row_template,
        row_context={row_name: obj, "form": type(form)(), "sent": sent},
    )


# --- flags -----------------------------------------------------------------------------------


def _flags_page(
    request: StaffHttpRequest, show: str, refused: tuple[int, ActionResult, Any] | None = None
) -> HttpResponse:
    """The flags page; `refused`: a row whose action was refused (flag id, result, the form's
    data), shown with the text sent and the error by its field."""
    flags = list(flag_inbox_for_user(user=request.user, show=show)[:LIST_LIMIT])
    if refused is not None:
        for flag in flags:
            if flag.pk == refused[0]:
                flag.refused_result, flag.refused_sent = refused[1], refused[2]  # type: ignore[attr-defined]
    audit_record(
        request=request,
        action=Action.FLAG_LIST,
        patients=[f.patient for f in flags],
        detail={"page": "flags", "listed": len(flags)},
    )
    return render(
        request,
        "web/flags.html",
        {"flags": flags, "show": show, "form": FlagUpdateForm(), "nav": "flags"},
        status=200 if refused is None else refused[1].status,
    )


@require_GET
@staff_page(Operation.FLAG_LIST, Action.FLAG_LIST)
def flags_view(request: StaffHttpRequest) -> HttpResponse:
    return _flags_page(request, request.GET.get("show", "open"))


@require_POST
@staff_page(
    Operation.FLAG_UPDATE,
    lambda request, action="", **kwargs: (
        Action.FLAG_RESOLVE if action == "resolve" else Action.FLAG_ACKNOWLEDGE
    ),
)
def flag_update_view(request: StaffHttpRequest, flag_id: int, action: str) -> HttpResponse:
    """Acknowledge with a note of what was done (required for an urgent flag) or resolve with
    the outcome; the service records who did it and when."""
    if action not in FLAG_ACTIONS:
        raise NotFound("No such action.")
    user = request.user
    flag = flag_get_for_user(user=user, flag_id=flag_id)
    status, audit_action, done = FLAG_ACTIONS[action]
    form = FlagUpdateForm(request.POST)

    def perform() -> str:
        data = form.cleaned_data
        flag_set_status(
            flag=flag, status=status, user=user, note=data["note"], outcome=data["outcome"]
        )
        return f"{done}: {flag.message}"

    # A refused form is shown again on the tab that lists the flag's current status.
    show = "open" if flag.status == FlagStatus.OPEN else "unresolved"
    return _row_action(
        request,
        flag,
        form,
        action=audit_action,
        perform=perform,
        patient=flag.patient,
        redirect_to="web:flags",
        row_template="web/partials/flag_row.html",
        row_name="flag",
        refused_page=lambda result: _flags_page(request, show, (flag.pk, result, request.POST)),
    )


# --- tasks -----------------------------------------------------------------------------------


def _disciplines() -> list[tuple[str, str]]:
    return [(role.value, role.label) for role in Role if role in STAFF_ROLES]


@require_GET
@staff_page(Operation.TASK_LIST, Action.TASK_LIST)
def tasks_view(request: StaffHttpRequest) -> HttpResponse:
    user = request.user
    choices = dict(_disciplines())
    discipline = request.GET.get("discipline") or user.role
    if discipline != "all" and discipline not in choices:
        discipline = user.role
    tasks = list(task_worklist_for_user(user=user, discipline=discipline)[:LIST_LIMIT])
    audit_record(
        request=request,
        action=Action.TASK_LIST,
        patients=[t.patient for t in tasks],
        detail={"page": "tasks", "discipline": discipline, "listed": len(tasks)},
    )
    return render(
        request,
        "web/tasks.html",
        {
            "tasks": tasks,
            "discipline": discipline,
            "disciplines": _disciplines(),
            "form": TaskCompleteForm(),
            "nav": "tasks",
        },
    )


@require_POST
@staff_page(Operation.TASK_COMPLETE, Action.TASK_COMPLETE)
def task_complete_view(request: StaffHttpRequest, task_id: int) -> HttpResponse:
    user = request.user
    task = task_get_for_user(user=user, task_id=task_id)

    def perform() -> str:
        care_task_complete(task=task, user=user)
        return f"Done: {task.title}"

    next_url = request.POST.get("next", "")
    return _row_action(
        request,
        task,
        TaskCompleteForm(request.POST),
        action=Action.TASK_COMPLETE,
        perform=perform,
        patient=task.patient,
        redirect_to=next_url if next_url in ("/tasks/", "/my/") else "web:tasks",
        row_template="web/partials/task_row.html",
        row_name="task",
    )


# --- dead messages ---------------------------------------------------------------------------


def _dead_messages_page(
    request: StaffHttpRequest, refused: tuple[int, ActionResult, Any] | None = None
) -> HttpResponse:
    """The dead messages, each with what can be done about it; `refused`: a row whose action
    was refused (message id, result, the form's data), shown with the error by its field."""
    rows = list(dead_messages_for_user(user=request.user)[:LIST_LIMIT])
    states = dead_message_states(rows)
    for message in rows:
        message.state = states[message.pk]  # type: ignore[attr-defined]
        if refused is not None and message.pk == refused[0]:
            message.refused_result, message.refused_sent = refused[1], refused[2]  # type: ignore[attr-defined]
    audit_record(
        request=request,
        action=Action.MESSAGE_LIST,
        patients=[m.patient_id for m in rows if m.patient_id],
        detail={"page": "dead_messages", "listed": len(rows)},
    )
    return render(
        request,
        "web/dead_messages.html",
        {"rows": rows, "form": ResendForm(), "contact_form": ContactFixForm(), "nav": "dead"},
        status=200 if refused is None else refused[1].status,
    )


@require_GET
@staff_page(Operation.MESSAGE_DEAD_LIST, Action.MESSAGE_DEAD_LIST)
def dead_messages_view(request: StaffHttpRequest) -> HttpResponse:
    return _dead_messages_page(request)


def _dead_message(user: User, message_id: int) -> Message:
    message = dead_message_get_for_user(user=user, message_id=message_id)
    message.state = dead_message_states([message])[message.pk]  # type: ignore[attr-defined]
    return message


def _resend(message: Message) -> str:
    try:
        message_resend(message_id=message.pk)
    except Conflict as exc:  # no longer dead, or no longer needed: nothing changed
        raise InvalidInput(exc.message) from exc
    return "Resent: a fresh set of attempts."


@require_POST
@staff_page(Operation.MESSAGE_RESEND, Action.MESSAGE_RESEND)
def message_resend_view(request: StaffHttpRequest, message_id: int) -> HttpResponse:
    user = request.user
    message = _dead_message(user, message_id)
    return _row_action(
        request,
        message,
        ResendForm(request.POST),
        action=Action.MESSAGE_RESEND,
        perform=lambda: _resend(message),
        patient=message.patient_id,
        redirect_to="web:dead-messages",
        row_template="web/partials/message_row.html",
        row_name="message",
    )


@require_POST
@staff_page(Operation.MESSAGE_RESEND, Action.MESSAGE_RESEND)
def message_fix_contact_view(request: StaffHttpRequest, message_id: int) -> HttpResponse:
    """A message that died because the patient's number or address cannot be reached: correct
    the contact (the patients' service, audited), then resend it (the messaging service)."""
    user = request.user
    message = _dead_message(user, message_id)
    patient = message.patient
    if patient is None or not message.to_patient:
        raise NotFound("No such message.")
    form = ContactFixForm(request.POST)

    def perform(once: Once) -> str:
        data = form.cleaned_data
        changed: list[str] = []

        def update() -> None:
            changed.extend(
                patient_contact_update(patient=patient, phone=data["phone"], email=data["email"])
            )
            audit_record(
                request=request,
                action=Action.PATIENT_CONTACT_UPDATE,
                patient=patient,
                obj=patient,
                detail={"fields": changed, "message": message.pk},
            )

        once.step("contact", update)
        try:
            message_resend(message_id=message.pk)
        except Conflict as exc:  # the contact is saved; the message needs no resend
            return f"Contact details saved. {exc.message}"
        return "Contact details saved and the message resent: a fresh set of attempts."

    return _row_action(
        request,
        message,
        form,
        action=Action.MESSAGE_RESEND,
        perform_once=perform,
        patient=patient,
        redirect_to="web:dead-messages",
        row_template="web/partials/message_row.html",
        row_name="message",
        refused_page=lambda result: _dead_messages_page(
            request, (message.pk, result, request.POST)
        ),
    )
