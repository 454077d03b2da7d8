"""Who may see which patients and do what: the one place care access is decided.

Scope (which rows a member of staff may see):

- coordinators, physicians and clinic admins see every patient of their own clinic;
- physical therapists, psychologists and pharmacists see only the patients whose active care
  team (a membership without an end) includes them;
- a patient (an account with the `patient` role) sees only their own record (`Patient.user`);
- anyone else (operators without a clinic or role, inactive accounts) sees nothing.

Everything that hangs off a patient (enrolments, steps, proposals, tasks, flags, check-ins,
observations, messages) is scoped through the patient: `carehub.patients.access` holds the
patient scope, and each app's `access` module scopes its own rows through it (so the domain apps
need nothing from this module, which sits above them). A patient sees their own check-ins and
their own scores, never the clinical record behind them (other observations, messages, tasks,
flags, thresholds). Interfaces fetch objects through these querysets, so a row outside the
scope answers "not found", never "forbidden": its existence is not disclosed.

`OPERATIONS` is the role-by-operation matrix: which roles may perform an operation on a patient
already in their scope. Approval gates in pathway definitions still apply on top of it (a
coordinator may reach the approve operation, the definition's gate decides whether they may
approve that escalation).
"""

from __future__ import annotations

from enum import StrEnum

from carehub.accounts.models import STAFF_ROLES, Role, User
from carehub.checkins.access import checkins_visible_to
from carehub.messaging.access import messages_visible_to
from carehub.observations.access import observations_visible_to
from carehub.pathways.access import enrolments_visible_to, proposals_visible_to
from carehub.patients.access import (
    CARE_TEAM_ROLES,
    CLINIC_WIDE_ROLES,
    has_scope,
    patients_visible_to,
    visible_patient_condition,
)
from carehub.worklists.access import flags_visible_to, tasks_visible_to
from workflows import PathwayDefinition

# The scopes live with the rows they scope (each app's `access` module); interfaces take them
# from here, with the operations.
__all__ = [
    "CARE_TEAM_ROLES",
    "CLINIC_WIDE_ROLES",
    "OPERATIONS",
    "Operation",
    "can",
    "checkins_visible_to",
    "enrolments_visible_to",
    "event_permission_markdown",
    "flags_visible_to",
    "messages_visible_to",
    "observations_visible_to",
    "patients_visible_to",
    "permission_matrix_markdown",
    "proposals_visible_to",
    "tasks_visible_to",
    "visible_patient_condition",
]


class Operation(StrEnum):
    PATIENT_LIST = "patient.list"
    PATIENT_VIEW = "patient.view"
    ENROLMENT_VIEW = "enrolment.view"
    ENROLMENT_START = "enrolment.start"
    ENROLMENT_EVENT_SEND = "enrolment.event_send"
    ENROLMENT_PAUSE = "enrolment.pause"
    ENROLMENT_DISCHARGE = "enrolment.discharge"
    PROPOSAL_LIST = "proposal.list"
    PROPOSAL_DECIDE = "proposal.decide"
    PATHWAY_VIEW = "pathway.view"
    CHECKIN_VIEW = "checkin.view"
    CHECKIN_SUBMIT = "checkin.submit"
    INSTRUMENT_VIEW = "instrument.view"
    OBSERVATION_VIEW = "observation.view"
    OBSERVATION_RECORD = "observation.record"
    TASK_LIST = "task.list"
    TASK_COMPLETE = "task.complete"
    FLAG_LIST = "flag.list"
    FLAG_UPDATE = "flag.update"
    MESSAGE_LIST = "message.list"
    MESSAGE_DEAD_LIST = "message.dead_list"
    MESSAGE_RESEND = "message.resend"
    THRESHOLD_VIEW = "threshold.view"
    THRESHOLD_SET = "threshold.set"
    # The staff web UI (carehub.web).
    CASELOAD_VIEW = "caseload.view"
    PROCEDURE_RESULT_RECORD = "procedure.result_record"
    SCORE_RECORD = "score.record"
    SESSION_LOG = "session.log"
    THERAPIST_WORKSPACE = "therapist.workspace"
    EVENT_LIST = "event.list"
    WEBHOOK_MANAGE = "webhook.manage"
    # Connecting a clinic's systems (registration, intake, medications, worklists).
    PATIENT_CREATE = "patient.create"
    PATIENT_UPDATE = "patient.update"
    PATIENT_DEACTIVATE = "patient.deactivate"
    CARE_TEAM_SET = "care_team.set"
    PSYCH_EVALUATION_RECORD = "psych_evaluation.record"
    MEDICATION_VIEW = "medication.view"
    MEDICATION_RECORD = "medication.record"
    ENROLMENT_FACTS_VIEW = "enrolment.facts_view"
    ENROLMENT_SCHEDULE_VIEW = "enrolment.schedule_view"
    TASK_CREATE = "task.create"
    TASK_ASSIGN = "task.assign"
    TASK_CANCEL = "task.cancel"
    CHECKIN_OPEN = "checkin.open"
    STAFF_LIST = "staff.list"
    # The FHIR R4 doors (carehub.fhir): a transaction Bundle in, a clinic's bulk export out.
    FHIR_IMPORT = "fhir.import"
    FHIR_EXPORT = "fhir.export"
    # A sandbox clinic's test clock (ADR 0024).
    TEST_CLOCK_VIEW = "test_clock.view"
    TEST_CLOCK_ADVANCE = "test_clock.advance"
    # Moving running enrolments to a new version of their pathway (carehub.pathways.migration).
    PATHWAY_MIGRATION_VIEW = "pathway.migration_view"
    PATHWAY_MIGRATE = "pathway.migrate"


_EVERY_ROLE = frozenset(Role)
_STAFF = frozenset(STAFF_ROLES)
_CLINICIANS = _STAFF - {Role.CLINIC_ADMIN}
_LEAD_CLINICIANS = frozenset({Role.COORDINATOR, Role.PHYSICIAN})
_DELIVERY_STAFF = frozenset({Role.COORDINATOR, Role.CLINIC_ADMIN})

# Operation → roles allowed to perform it (within their scope).
OPERATIONS: dict[Operation, frozenset[str]] = {
    # A patient lists and views only themselves (scope), and sees their own enrolments.
    Operation.PATIENT_LIST: _EVERY_ROLE,
    Operation.PATIENT_VIEW: _EVERY_ROLE,
    Operation.ENROLMENT_VIEW: _EVERY_ROLE,
    # Sending events and deciding on escalations are clinical acts: not for the clinic admin.
    Operation.ENROLMENT_EVENT_SEND: _CLINICIANS,
    Operation.PROPOSAL_LIST: _STAFF,
    Operation.PROPOSAL_DECIDE: _CLINICIANS,
    # Published definitions hold no patient data.
    Operation.PATHWAY_VIEW: _EVERY_ROLE,
    # Worklists are clinical work.
    Operation.TASK_LIST: _CLINICIANS,
    Operation.TASK_COMPLETE: _CLINICIANS,
    Operation.FLAG_LIST: _CLINICIANS,
    Operation.FLAG_UPDATE: _CLINICIANS,
    # Enrolling, pausing (and resuming) and discharging: the coordinator's and physician's jobs.
    Operation.ENROLMENT_START: _LEAD_CLINICIANS,
    Operation.ENROLMENT_PAUSE: _LEAD_CLINICIANS,
    Operation.ENROLMENT_DISCHARGE: _LEAD_CLINICIANS,
    # Check-ins: the patient answers their own; clinicians see them and may enter answers on
    # the patient's behalf (a phone call, a paper form at a visit). Not the clinic admin.
    Operation.CHECKIN_VIEW: _CLINICIANS | {Role.PATIENT},
    Operation.CHECKIN_SUBMIT: _CLINICIANS | {Role.PATIENT},
    # The instrument library holds no patient data.
    Operation.INSTRUMENT_VIEW: _EVERY_ROLE,
    # Observations: clinicians read and record; a patient reads their own scores only (scope).
    Operation.OBSERVATION_VIEW: _CLINICIANS | {Role.PATIENT},
    Operation.OBSERVATION_RECORD: _CLINICIANS,
    # Messages and their delivery records are staff-only; dead messages are an operational
    # job for the coordinator and the clinic admin.
    Operation.MESSAGE_LIST: _STAFF,
    Operation.MESSAGE_DEAD_LIST: _DELIVERY_STAFF,
    Operation.MESSAGE_RESEND: _DELIVERY_STAFF,
    # Clinic thresholds: every member of staff sees the values and sources the clinic uses;
    # the clinic admin sets them (each with its source).
    Operation.THRESHOLD_VIEW: _STAFF,
    Operation.THRESHOLD_SET: frozenset({Role.CLINIC_ADMIN}),
    # Staff web UI. The caseload is every staff role's overview (scope still applies).
    Operation.CASELOAD_VIEW: _STAFF,
    # Procedures and their outcomes (block relief %, trial relief %).
    Operation.PROCEDURE_RESULT_RECORD: _LEAD_CLINICIANS,
    # Scores entered item by item on the patient page (read out, or from a paper form).
    Operation.SCORE_RECORD: _LEAD_CLINICIANS,
    # Therapy sessions are logged by the therapists who run them.
    Operation.SESSION_LOG: frozenset({Role.PHYSICAL_THERAPIST, Role.PSYCHOLOGIST}),
    Operation.THERAPIST_WORKSPACE: CARE_TEAM_ROLES,
    # The clinic's change feed (ids and codes of every patient's changes) is for the clinic's
    # integrations: the clinic admin's and the coordinator's accounts. Webhook receivers (and
    # their secrets) are configured by the clinic admin only.
    Operation.EVENT_LIST: _DELIVERY_STAFF,
    Operation.WEBHOOK_MANAGE: frozenset({Role.CLINIC_ADMIN}),
    # Registering a patient, changing their details and contact preferences, deactivating
    # them: the front office's job (the coordinator, the clinic admin), as is the care team,
    # which the physician also sets.
    Operation.PATIENT_CREATE: _DELIVERY_STAFF,
    Operation.PATIENT_UPDATE: _DELIVERY_STAFF,
    Operation.PATIENT_DEACTIVATE: _DELIVERY_STAFF,
    Operation.CARE_TEAM_SET: _DELIVERY_STAFF | {Role.PHYSICIAN},
    # A psychological evaluation's outcome: the psychologist who ran it, or the physician
    # (as the pathway's `psych_evaluation_recorded` event).
    Operation.PSYCH_EVALUATION_RECORD: frozenset({Role.PHYSICIAN, Role.PSYCHOLOGIST}),
    # The medication list and its MME: clinicians read it; the physician and the pharmacist
    # record it (as the pathway's `medication_recorded` event).
    Operation.MEDICATION_VIEW: _CLINICIANS,
    Operation.MEDICATION_RECORD: frozenset({Role.PHYSICIAN, Role.PHARMACIST}),
    # Migrating running enrolments to a new pathway version is a clinical decision for the
    # patients concerned: the coordinator and the physician read the dry run and apply it (what
    # needs a clinician's approval, a physician only: the service checks it).
    Operation.PATHWAY_MIGRATION_VIEW: _LEAD_CLINICIANS,
    Operation.PATHWAY_MIGRATE: _LEAD_CLINICIANS,
    # What a pathway reads (derived facts) and waits for (timers, next-due items): clinical.
    Operation.ENROLMENT_FACTS_VIEW: _CLINICIANS,
    Operation.ENROLMENT_SCHEDULE_VIEW: _CLINICIANS,
    # Tasks people create, assign and cancel; a check-in opened early. Clinical work.
    Operation.TASK_CREATE: _CLINICIANS,
    Operation.TASK_ASSIGN: _CLINICIANS,
    Operation.TASK_CANCEL: _CLINICIANS,
    Operation.CHECKIN_OPEN: _CLINICIANS,
    # The clinic's staff (names, roles, ids for care teams and assignees): every member of staff.
    Operation.STAFF_LIST: _STAFF,
    # Importing registers patients and records scores (red flags included); a bulk export
    # carries the whole clinic's clinical record: the clinic-wide clinicians' jobs.
    Operation.FHIR_IMPORT: _LEAD_CLINICIANS,
    Operation.FHIR_EXPORT: _LEAD_CLINICIANS,
    # A sandbox clinic's test clock: every member of staff sees where it stands (their pages
    # show it too); only the clinic admin moves it.
    Operation.TEST_CLOCK_VIEW: _STAFF,
    Operation.TEST_CLOCK_ADVANCE: frozenset({Role.CLINIC_ADMIN}),
}


def can(user: User | None, operation: Operation) -> bool:
    """Whether the user's role may perform the operation (on objects in their scope)."""
    return has_scope(user) and user.role in OPERATIONS[operation]  # type: ignore[union-attr]


_ROLE_COLUMNS = {
    Role.CLINIC_ADMIN: "Clinic admin", Role.COORDINATOR: "Coordinator",
    Role.PHYSICIAN: "Physician", Role.PHYSICAL_THERAPIST: "Physical therapist",
    Role.PSYCHOLOGIST: "Psychologist", Role.PHARMACIST: "Pharmacist", Role.PATIENT: "Patient",
}  # fmt: skip


def permission_matrix_markdown() -> str:
    """The role-by-operation matrix as the Markdown table in README.md ("Who may do what");
    tests/api/test_readme_matrix.py checks that the README shows exactly this."""
    columns = _ROLE_COLUMNS
    roles = list(columns)
    lines = [
        "| Operation | " + " | ".join(columns.values()) + " |",
        "|---|" + "---|" * len(roles),
    ]
    for operation in Operation:
        cells = ["✓" if role in OPERATIONS[operation] else "" for role in roles]
        lines.append(f"| `{operation.value}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def event_permission_markdown(definition: PathwayDefinition) -> str:
    """Who may send each event of a pathway definition, as the Markdown table in README.md
    (tests/api/test_readme_matrix.py checks it). The definition's `roles` decide; the events
    the pathway raises itself (timers, `send`) are listed below the table: nobody sends them."""
    roles = [role for role in _ROLE_COLUMNS if role != Role.PATIENT]
    lines = [
        f"| Event ({definition.key} v{definition.version}) | "
        + " | ".join(_ROLE_COLUMNS[role] for role in roles)
        + " |",
        "|---|" + "---|" * len(roles),
    ]
    own = []
    for name, spec in definition.events.items():
        if name in definition.internal_events:
            own.append(f"`{name}`")
            continue
        cells = ["✓" if definition.may_send(role, name) else "" for role in roles]
        notes = [f"logs `{spec.session}` sessions"] if spec.session else []
        notes += ["needs a reason"] if spec.requires_reason else []
        label = f"`{name}`" + (f" ({'; '.join(notes)})" if notes else "")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Raised by the pathway itself, sent by nobody: " + ", ".join(own) + ".")
    return "\n".join(lines)
