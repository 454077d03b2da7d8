"""The patient page and its actions: decide an escalation, record a procedure or its result,
record a score item by item, pause, resume, discharge, send an event.

Every action is a POST with CSRF and a one-time form key (`carehub.web.actions.run_once`):
the same form sent twice acts once, a key reused for another submission is refused; pathway
events also pass the key to the dispatcher. A refused action re-renders the page with
the error next to its form and the current state; nothing is changed. A successful one
redirects back to the page (post/redirect/get) with a message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from carehub.accounts.models import User
from carehub.accounts.requests import StaffHttpRequest
from carehub.audit.models import Action, Outcome
from carehub.audit.services import audit_record
from carehub.care_access import CARE_TEAM_ROLES, Operation, can
from carehub.checkins.instruments import form_for
from carehub.core import clock
from carehub.core.exceptions import Conflict, InvalidInput, NotFound
from carehub.observations.models import Source
from carehub.observations.scores import score_observation_record
from carehub.observations.selectors import facts_for_patient
from carehub.observations.services import procedure_record, procedure_result_record
from carehub.pathways.models import Enrolment, EnrolmentStatus
from carehub.pathways.recording import Told, observation_record_and_tell
from carehub.pathways.registry import definition_get
from carehub.pathways.selectors import enrolment_view
from carehub.pathways.services import (
    DispatchResult,
    discharge_event_for,
    enrolment_discharge,
    enrolment_pause,
    enrolment_resume,
    pathway_event_send,
    proposal_approve,
    proposal_reject,
)
from carehub.patients.models import Patient
from carehub.web.access import staff_page
from carehub.web.actions import ActionResult, Once, earlier_submission, renew_key, run_once
from carehub.web.charts import charts_for
from carehub.web.diagram import pathway_diagrams
from carehub.web.forms import (
    DecideForm,
    DescribedErrorsMixin,
    DischargeForm,
    EventForm,
    PauseForm,
    ProcedureForm,
    ProcedureResultForm,
    ResumeForm,
    ScoreForm,
    SessionLogForm,
    score_instruments,
)
from carehub.web.patient_summary import decisions, failed_treatments, patient_summary, timeline
from carehub.web.presentation import (
    ScoreSeries,
    evidence_against,
    explain_check,
    fact_label,
    instrument_title,
    moved_text,
    score_series,
    show_value,
    state_title,
    step_summary,
    track_title,
)
from carehub.web.selectors.formatting import any_event_title, event_label
from carehub.web.selectors.patient import (
    PatientRecord,
    enrolment_for_patient,
    patient_for_user,
    patient_record,
    pending_proposals_exist,
    procedure_for_patient,
    proposal_for_patient,
)
from carehub.web.therapy import therapy_role
from workflows import Outcome as StepOutcome
from workflows.diagram import mermaid

# Pages an action may return to instead of the patient page (a fixed list: no open redirect).
RETURN_PAGES = ("/my/",)
# Facts shown next to an escalation as evidence, when the patient has them.
EVIDENCE_FACTS = (
    "peg.baseline",
    "peg.latest",
    "peg.improvement_pct",
    "peg.responder",
    "nrs.latest",
    "phq9.latest",
    "gad7.latest",
    "pain.months",
    "failed_treatment_classes",
    "pt.sessions_attended",
    "cbt.sessions_attended",
    "psych_eval.outcome",
    "mme.daily",
)


def events_for_user(user: User, enrolment: Enrolment) -> list[tuple[str, str]]:
    """The events this user may send now: those of the tracks' current states that the
    definition lets the user's role send; the discharge has its own form (with a reason)."""
    if not can(user, Operation.ENROLMENT_EVENT_SEND) or enrolment.status != EnrolmentStatus.ACTIVE:
        return []
    definition = definition_get(enrolment.definition_key, enrolment.definition_version)
    available = enrolment_view(enrolment=enrolment, user=user).available_events
    discharge = discharge_event_for(enrolment)
    events: dict[str, str] = {}
    for track_events in available.values():
        for event in track_events:
            if event != discharge:
                events.setdefault(event, event_label(definition, event))
    return sorted(events.items(), key=lambda item: item[1])


def _enrolment_panel(
    request: StaffHttpRequest,
    enrolment: Enrolment,
    bound: dict[str, Any],
    facts: dict[str, Any],
    *,
    record: PatientRecord,
    scores: dict[str, ScoreSeries],
) -> dict[str, Any]:
    user = request.user
    view = enrolment_view(enrolment=enrolment)
    definition = definition_get(enrolment.definition_key, enrolment.definition_version)
    states = {track.track: track.state for track in view.tracks}
    track_order = {name: index for index, name in enumerate(definition.tracks)}
    version = enrolment.version
    proposals = []
    for proposal in view.pending_proposals:
        form = bound.get(f"decide-{proposal.pk}") or DecideForm(
            initial={"expected_version": version}, prefix=f"p{proposal.pk}"
        )
        now = clock.now()
        proposals.append(
            {
                "proposal": proposal,
                "form": form,
                "may_decide": can(user, Operation.PROPOSAL_DECIDE) and user.role in proposal.roles,
                "evidence": proposal.evidence or {},
                "why": explain_check(definition, proposal.evidence, scores=scores, now=now),
                "move": moved_text(
                    definition,
                    {"track": proposal.track, "source": proposal.source, "target": proposal.target},
                ),
                "against": evidence_against(
                    definition,
                    proposal.evidence,
                    scores=scores,
                    facts_now=facts,
                    urgent_flags=[f.message for f in record.urgent_flags],
                    now=now,
                ),
                "error": bound.get(f"decide-{proposal.pk}-error"),
            }
        )
    key = str(enrolment.public_id)
    events = events_for_user(user, enrolment)
    event_form = bound.get(f"event-{key}") or EventForm(
        events=events, initial={"expected_version": version}, prefix=f"e{enrolment.pk}"
    )
    is_open = enrolment.status != EnrolmentStatus.COMPLETED
    return {
        "enrolment": enrolment,
        "view": view,
        "definition": definition,
        "diagrams": pathway_diagrams(definition, states),
        "mermaid": mermaid(definition, states),
        "proposals": proposals,
        "facts": [
            (fact_label(name), show_value(facts[name]), name)
            for name in EVIDENCE_FACTS
            if facts.get(name) is not None
        ],
        "tracks": [
            {
                "title": track_title(definition, track.track),
                "state": state_title(definition, track.track, track.state),
                "final": track.final,
                "entered_at": track.entered_at,
            }
            for track in sorted(view.tracks, key=lambda item: track_order.get(item.track, 99))
        ],
        "events": events,
        "event_form": event_form,
        "event_error": bound.get(f"event-{key}-error"),
        "may_pause": is_open and can(user, Operation.ENROLMENT_PAUSE),
        "pause_form": bound.get(f"pause-{key}") or PauseForm(prefix=f"pa{enrolment.pk}"),
        "resume_form": ResumeForm(prefix=f"re{enrolment.pk}"),
        "pause_error": bound.get(f"pause-{key}-error"),
        "may_discharge": is_open
        and can(user, Operation.ENROLMENT_DISCHARGE)
        and discharge_event_for(enrolment) is not None,
        "discharge_form": bound.get(f"discharge-{key}")
        or DischargeForm(initial={"expected_version": version}, prefix=f"d{enrolment.pk}"),
        "discharge_error": bound.get(f"discharge-{key}-error"),
    }


def render_patient(
    request: StaffHttpRequest,
    patient: Patient,
    *,
    bound: dict[str, Any] | None = None,
    status: int = 200,
) -> HttpResponse:
    """The patient page; `bound` holds forms with errors and their ActionResults by form id."""
    bound = bound or {}
    user = request.user
    record = patient_record(user=user, patient=patient)
    has_pending = can(user, Operation.PROPOSAL_LIST) and pending_proposals_exist(
        enrolments=[e for e in record.enrolments if e.status != EnrolmentStatus.COMPLETED]
    )
    facts = facts_for_patient(patient=patient, now=clock.now()) if has_pending else {}
    scores = score_series(record.scores)
    definition = (
        definition_get(record.enrolments[0].definition_key, record.enrolments[0].definition_version)
        if record.enrolments
        else None
    )
    for name, value in bound.items():
        if name.endswith("-error") and getattr(value, "explanation", None):
            # A guard that did not hold, in words (the template shows the sentences).
            value.explanation_text = explain_check(definition, value.explanation, scores=scores)
    panels = [
        _enrolment_panel(request, e, bound, facts, record=record, scores=scores)
        for e in record.enrolments
    ]
    procedure_form = new_procedure_form = None
    if can(user, Operation.PROCEDURE_RESULT_RECORD):
        new_procedure_form = bound.get("procedure-new") or ProcedureForm(prefix="pp")
        if record.procedures:
            procedure_form = bound.get("procedure") or ProcedureResultForm(
                procedures=record.procedures, prefix="pr"
            )
    audit_record(
        request=request,
        action=Action.PATIENT_VIEW,
        patient=patient,
        obj=patient,
        outcome=Outcome.OK,
        detail={"page": "patient"} if status == 200 else {"page": "patient", "status": status},
    )
    score_forms = []
    if can(user, Operation.SCORE_RECORD):
        for key in score_instruments():
            form = bound.get(f"score-{key}") or ScoreForm(
                questions=form_for(key), prefix=f"sc-{key}"
            )
            error = bound.get(f"score-{key}-error")
            score_forms.append({"key": key, "form": form, "error": error, "open": bool(error)})
    role = therapy_role(user.role)
    may_log_session = bool(can(user, Operation.SESSION_LOG) and role and role.session_discipline)
    session_form = None
    if may_log_session and role is not None:
        session_form = bound.get("session") or SessionLogForm(
            prefix="s", measure_label=role.measure_label
        )
    return render(
        request,
        "web/patient.html",
        {
            "patient": patient,
            "record": record,
            "panels": panels,
            "charts": charts_for(
                scores=record.scores,
                procedures=record.procedures,
                zone=timezone.get_current_timezone(),
            ),
            "procedure_form": procedure_form,
            "procedure_error": bound.get("procedure-error"),
            "new_procedure_form": new_procedure_form,
            "new_procedure_error": bound.get("procedure-new-error"),
            "may_log_session": may_log_session,
            "session_form": session_form,
            "session_error": bound.get("session-error"),
            "score_forms": score_forms,
            "pending_count": sum(len(panel["proposals"]) for panel in panels),
            "summary": patient_summary(record, panels, scores),
            "timeline": timeline(record, scores),
            "decisions": decisions(record),
            "failed_treatments": failed_treatments(record),
            "score_trends": [
                (instrument_title(code), series.trend_text())
                for code, series in scores.items()
                if code in ("peg", "psfs") and len(series.points) > 1
            ],
            "now": clock.now(),
            "nav": "workspace" if user.role in CARE_TEAM_ROLES else "caseload",
        },
        status=status,
    )


@require_GET
@staff_page(Operation.PATIENT_VIEW, Action.PATIENT_VIEW)
def patient_view(request: StaffHttpRequest, patient_id: int) -> HttpResponse:
    patient = patient_for_user(user=request.user, patient_id=patient_id)
    return render_patient(request, patient)


def _finish(
    request: StaffHttpRequest,
    patient: Patient,
    result: ActionResult,
    *,
    action: str,
    obj: Any,
    detail: dict[str, Any],
    form_id: str,
    form: Any,
) -> HttpResponse:
    outcome = (
        Outcome.OK if result.ok else (Outcome.DENIED if result.status == 403 else Outcome.ERROR)
    )
    audit_record(
        request=request,
        action=action,
        patient=patient,
        obj=obj,
        outcome=outcome,
        detail={**detail, "status": result.status, "replayed": result.replayed},
    )
    if result.ok:
        level = messages.WARNING if result.kind == "criteria" else messages.SUCCESS
        messages.add_message(request, level, result.message)
        back = request.POST.get("next", "")
        return redirect(back if back in RETURN_PAGES else reverse("web:patient", args=[patient.pk]))
    if result.kind == "reused":
        # The form's key was used for another submission: said at the top (the form may not be
        # on the page any more); the form comes back with a new key.
        messages.error(request, result.message)
        renew_key(form)
        return render_patient(request, patient, bound={form_id: form}, status=result.status)
    return render_patient(
        request, patient, bound={form_id: form, f"{form_id}-error": result}, status=result.status
    )


def _invalid(
    request: StaffHttpRequest, patient: Patient, *, action: str, obj: Any, form_id: str, form: Any
) -> HttpResponse:
    audit_record(
        request=request,
        action=action,
        patient=patient,
        obj=obj,
        outcome=Outcome.ERROR,
        detail={"status": 400, "code": "invalid_input"},
    )
    result = ActionResult(ok=False, message="Please correct the form.", status=400, kind="invalid")
    return render_patient(
        request, patient, bound={form_id: form, f"{form_id}-error": result}, status=400
    )


def _submit(
    request: StaffHttpRequest,
    patient: Patient,
    form: Any,
    *,
    action: str,
    obj: Any,
    form_id: str,
    perform: Callable[[dict[str, Any], Once], str],
    detail: Callable[[dict[str, Any]], dict[str, Any]],
    criteria_warning: bool = False,
) -> HttpResponse:
    """One form's POST: a form sent again answers its first outcome (a key reused for another
    submission is refused), an invalid form changes nothing, otherwise
    `perform(cleaned_data, once)` runs once; audited either way. With `criteria_warning`, "the
    pathway did not move" is shown as a warning."""
    replay = earlier_submission(request, form, action=action, target=obj)
    if replay is not None:
        return _finish(
            request,
            patient,
            replay,
            action=action,
            obj=obj,
            detail={},
            form_id=form_id,
            form=form,
        )
    if not form.is_valid():
        return _invalid(request, patient, action=action, obj=obj, form_id=form_id, form=form)
    data = form.cleaned_data
    result = run_once(
        request, form=form, action=action, target=obj, perform=lambda once: perform(data, once)
    )
    if criteria_warning and result.ok and result.message.startswith("The pathway did not move"):
        result.kind = "criteria"
    return _finish(
        request,
        patient,
        result,
        action=action,
        obj=obj,
        detail=detail(data),
        form_id=form_id,
        form=form,
    )


def step_message(result: DispatchResult, done: str = "Done.") -> str:
    """What a dispatched event did, in words: the tracks that moved, a proposal opened, or why
    nothing moved (the explanation's summary)."""
    if result.outcome == StepOutcome.PROPOSED.value:
        return "An escalation was proposed and waits for approval."
    step = result.step
    enrolment = result.enrolment
    definition = definition_get(enrolment.definition_key, enrolment.definition_version)
    moved = [
        moved_text(definition, t)
        for t in step.transitions
        if not t.get("internal") and t["source"] != t["target"]
    ]
    if result.outcome == StepOutcome.NO_CHANGE.value or not moved:
        why = step_summary(
            definition,
            outcome=result.outcome,
            transitions=step.transitions,
            explanation=step.explanation,
        )
        return (
            f"The pathway did not move: {why or 'no step of the pathway applied'}".rstrip(".") + "."
        )
    return f"{done} Now {', '.join(moved)}."


def decision_action(request: HttpRequest) -> str:
    """The act attempted by a decision form: approve or reject (audited as such, refused or
    not)."""
    decisions = [v for k, v in request.POST.items() if k.endswith("-decision")]
    return Action.PROPOSAL_REJECT if decisions == ["reject"] else Action.PROPOSAL_APPROVE


@require_POST
@staff_page(Operation.PROPOSAL_DECIDE, lambda request, **kwargs: decision_action(request))
def proposal_decide_view(
    request: StaffHttpRequest, patient_id: int, proposal_id: int
) -> HttpResponse:
    user = request.user
    patient = patient_for_user(user=user, patient_id=patient_id)
    proposal = proposal_for_patient(user=user, patient=patient, proposal_id=proposal_id)
    form = DecideForm(request.POST, prefix=f"p{proposal.pk}")
    form_id = f"decide-{proposal.pk}"
    action = decision_action(request)

    def perform(data: dict[str, Any], once: Once) -> str:
        key = once.key
        enrolment = proposal.enrolment
        enrolment.refresh_from_db(fields=["version", "status", "configuration"])
        if enrolment.version != data["expected_version"]:
            raise Conflict(
                "The pathway changed since the page was loaded.",
                extra={"current": {"version": enrolment.version}},
            )
        if data["decision"] == "reject":
            proposal_reject(
                proposal=proposal, user=user, idempotency_key=key, reason=data["reason"]
            )
            return f"Escalation rejected: {proposal.summary}."
        result = proposal_approve(
            proposal=proposal, user=user, idempotency_key=key, note=data["reason"]
        )
        return step_message(result, f"Escalation approved: {proposal.summary}.")

    return _submit(
        request,
        patient,
        form,
        action=action,
        obj=proposal,
        form_id=form_id,
        perform=perform,
        detail=lambda data: {"proposal": proposal.pk, "decision": data["decision"]},
    )


@require_POST
@staff_page(Operation.PROCEDURE_RESULT_RECORD, Action.OBSERVATION_PROCEDURE_RESULT)
def procedure_result_view(request: StaffHttpRequest, patient_id: int) -> HttpResponse:
    user = request.user
    patient = patient_for_user(user=user, patient_id=patient_id)
    record = patient_record(user=user, patient=patient)
    form = ProcedureResultForm(request.POST, procedures=record.procedures, prefix="pr")

    def perform(data: dict[str, Any], once: Once) -> str:
        procedure = procedure_for_patient(patient=patient, observation_id=data["procedure"])
        told = record_and_tell(
            once,
            form,
            patient=patient,
            user=user,
            event=f"{procedure.code}_result_recorded",
            step="result",
            record=lambda: procedure_result_record(
                procedure=procedure,
                relief_pct=data["relief_pct"],
                relief_weeks=data["relief_weeks"],
                assessed_at=data["assessed_at"],
                recorded_by=user,
            ),
        )
        done = f"Result recorded: {data['relief_pct']:g}% relief."
        return done + " " + told_message(told)

    return _submit(
        request,
        patient,
        form,
        action=Action.OBSERVATION_PROCEDURE_RESULT,
        obj=patient,
        form_id="procedure",
        perform=perform,
        detail=lambda data: {"procedure": data["procedure"]},
    )


@require_POST
@staff_page(Operation.PROCEDURE_RESULT_RECORD, Action.OBSERVATION_PROCEDURE)
def procedure_view(request: StaffHttpRequest, patient_id: int) -> HttpResponse:
    """A procedure performed; with its relief, the pathway hears `<procedure>_result_recorded`
    (a result assessed later is recorded with the procedure-result form)."""
    user = request.user
    patient = patient_for_user(user=user, patient_id=patient_id)
    form = ProcedureForm(request.POST, prefix="pp")

    def perform(data: dict[str, Any], once: Once) -> str:
        with_relief = data["relief_pct"] is not None
        told = record_and_tell(
            once,
            form,
            patient=patient,
            user=user,
            event=f"{data['procedure']}_result_recorded" if with_relief else None,
            step="procedure",
            record=lambda: procedure_record(
                patient=patient,
                procedure=data["procedure"],
                performed_at=data["performed_at"],
                relief_pct=data["relief_pct"],
                relief_weeks=data["relief_weeks"],
                region=data["region"],
                recorded_by=user,
            ),
        )
        if not with_relief:
            return "Procedure recorded; record the relief when it is assessed."
        done = f"Procedure recorded with {data['relief_pct']:g}% relief."
        return done + " " + told_message(told)

    return _submit(
        request,
        patient,
        form,
        action=Action.OBSERVATION_PROCEDURE,
        obj=patient,
        form_id="procedure-new",
        perform=perform,
        detail=lambda data: {"procedure": data["procedure"]},
    )


def record_and_tell(
    once: Once,
    form: DescribedErrorsMixin,
    *,
    patient: Patient,
    user: User,
    event: str | None,
    step: str,
    record: Callable[[], object],
    names: dict[str, str] | None = None,
) -> Told[None]:
    """A form's recording as the `step` of its action (sent again after the pathway failed, it
    does not record twice), then `event` told to the patient's pathways that accept it (none
    may: the recording stands). A refusal of the recording is shown next to the form's fields
    (`names` maps the service's field names to the form's)."""
    try:
        return observation_record_and_tell(
            patient=patient,
            event=event,
            idempotency_key=once.key,
            user=user,
            require_listener=False,
            record=lambda: once.step(step, record),
        )
    except InvalidInput as exc:
        form.add_service_errors(exc, names)
        raise


def told_message(told: Told[Any]) -> str:
    """What telling the pathway did after recording, in words. The observation stays recorded
    if the pathway could not take the event (the message says why; the event can be sent again
    from the patient page)."""
    if told.event is None:
        return ""
    event = any_event_title(told.event)  # the event's title in the definition
    if told.not_told is not None:
        return (
            f"The pathway was not told ({told.not_told.message}); send “{event}” from the "
            "patient page."
        )
    if not told.results:
        if told.paused:
            return f"The pathway was not told (it is paused); send “{event}” after resuming it."
        return ""
    return " ".join(step_message(result, "The pathway moved.") for result in told.results)


@require_POST
@staff_page(Operation.SCORE_RECORD, Action.OBSERVATION_SCORE)
def score_view(request: StaffHttpRequest, patient_id: int, instrument: str) -> HttpResponse:
    """A score entered item by item (read out, or from a paper form): scored and recorded like
    a check-in's answers, red flags included (`score_observation_record`)."""
    user = request.user
    patient = patient_for_user(user=user, patient_id=patient_id)
    if instrument not in score_instruments():
        raise NotFound("No such instrument to record here.")
    form = ScoreForm(request.POST, questions=form_for(instrument), prefix=f"sc-{instrument}")

    def perform(data: dict[str, Any], once: Once) -> str:
        try:
            recorded = score_observation_record(
                patient=patient,
                instrument=instrument,
                items=form.answers(),
                observed_at=data["observed_at"],
                source=Source.STAFF,
                recorded_by=user,
            )
        except InvalidInput as exc:
            form.add_service_errors(exc)
            raise
        result = recorded.result
        text = f"{form.title}: {result.total:g}" if result.total is not None else form.title
        text += f" ({result.band})" if result.band else ""
        text += " recorded."
        if recorded.red_flags:
            codes = ", ".join(flag["code"] for flag in recorded.red_flags)
            text += f" Red flag raised ({codes}): the care team has been alerted."
        return text

    return _submit(
        request,
        patient,
        form,
        action=Action.OBSERVATION_SCORE,
        obj=patient,
        form_id=f"score-{instrument}",
        perform=perform,
        detail=lambda data: {"instrument": instrument},
    )


def _enrolment_action(
    request: StaffHttpRequest,
    patient_id: int,
    public_id: str,
    *,
    form_class: type,
    prefix: str,
    form_id: str,
    action: str,
    perform_with: Callable[[Enrolment, dict[str, Any], str, User], str],
    form_kwargs: Callable[[Enrolment], dict[str, Any]] | None = None,
) -> HttpResponse:
    user = request.user
    patient = patient_for_user(user=user, patient_id=patient_id)
    enrolment = enrolment_for_patient(user=user, patient=patient, public_id=public_id)
    kwargs = form_kwargs(enrolment) if form_kwargs is not None else {}
    form = form_class(request.POST, prefix=f"{prefix}{enrolment.pk}", **kwargs)
    return _submit(
        request,
        patient,
        form,
        action=action,
        obj=enrolment,
        form_id=f"{form_id}-{enrolment.public_id}",
        perform=lambda data, once: perform_with(enrolment, data, once.key, user),
        detail=lambda data: {k: v for k, v in data.items() if k in ("event",)},
        criteria_warning=True,
    )


def _pause(enrolment: Enrolment, data: dict[str, Any], key: str, user: User) -> str:
    enrolment_pause(enrolment_id=enrolment.pk, reason=data["reason"], user=user)
    return f"Pathway paused: {data['reason']}."


def _resume(enrolment: Enrolment, data: dict[str, Any], key: str, user: User) -> str:
    enrolment_resume(enrolment_id=enrolment.pk, user=user)
    return "Pathway resumed; its timers and check-ins moved by the paused time."


def _discharge(enrolment: Enrolment, data: dict[str, Any], key: str, user: User) -> str:
    result = enrolment_discharge(
        enrolment=enrolment,
        reason=data["reason"],
        idempotency_key=key,
        user=user,
        expected_version=data["expected_version"],
    )
    return step_message(result, "Discharge recorded.")


def _event(enrolment: Enrolment, data: dict[str, Any], key: str, user: User) -> str:
    result = pathway_event_send(
        enrolment=enrolment,
        event=data["event"],
        idempotency_key=key,
        user=user,
        expected_version=data["expected_version"],
    )
    return step_message(result)


def _enrolment_action_view(
    operation: Operation,
    action: str,
    name: str,
    *,
    form_class: type,
    prefix: str,
    form_id: str,
    perform_with: Callable[[Enrolment, dict[str, Any], str, User], str],
) -> Callable[[StaffHttpRequest, int, str], HttpResponse]:
    """A POST-only staff page (`operation`, audited as `action`) that acts on one enrolment of
    the patient through `_enrolment_action`."""

    @require_POST
    @staff_page(operation, action)
    def view(request: StaffHttpRequest, patient_id: int, public_id: str) -> HttpResponse:
        return _enrolment_action(
            request,
            patient_id,
            public_id,
            form_class=form_class,
            prefix=prefix,
            form_id=form_id,
            action=action,
            perform_with=perform_with,
        )

    view.__name__ = view.__qualname__ = name
    return view


pause_view = _enrolment_action_view(
    Operation.ENROLMENT_PAUSE,
    Action.ENROLMENT_PAUSE,
    "pause_view",
    form_class=PauseForm,
    prefix="pa",
    form_id="pause",
    perform_with=_pause,
)
resume_view = _enrolment_action_view(
    Operation.ENROLMENT_PAUSE,
    Action.ENROLMENT_RESUME,
    "resume_view",
    form_class=ResumeForm,
    prefix="re",
    form_id="pause",
    perform_with=_resume,
)
discharge_view = _enrolment_action_view(
    Operation.ENROLMENT_DISCHARGE,
    Action.ENROLMENT_DISCHARGE,
    "discharge_view",
    form_class=DischargeForm,
    prefix="d",
    form_id="discharge",
    perform_with=_discharge,
)


@require_POST
@staff_page(Operation.ENROLMENT_EVENT_SEND, Action.ENROLMENT_EVENT_SEND)
def event_view(request: StaffHttpRequest, patient_id: int, public_id: str) -> HttpResponse:
    user = request.user

    def kwargs(enrolment: Enrolment) -> dict[str, Any]:
        return {"events": events_for_user(user, enrolment)}

    return _enrolment_action(
        request,
        patient_id,
        public_id,
        form_class=EventForm,
        prefix="e",
        form_id="event",
        action=Action.ENROLMENT_EVENT_SEND,
        perform_with=_event,
        form_kwargs=kwargs,
    )
