"""Worklists: care tasks for a discipline and flags that need a person's attention, within the
user's scope (through the patient, like proposals).

`GET /tasks` defaults to the open tasks on the caller's own role's worklist (`discipline=all`
lists every discipline); completing a task that is no longer open answers 409. A pathway task
names the track and state it belongs to; one closed because that state was left is
`cancelled`, with its `closed_reason`. `GET /flags` lists urgent flags first, then the newest;
acknowledging or resolving a flag that already has that status (or is resolved) answers 409.
Acknowledging an urgent flag needs a `note` of what was done; resolving any flag needs its
`outcome` (400, naming the field, otherwise); the flag records who did each, when, and with
what note or outcome. An acknowledged flag is still unresolved.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers
from rest_framework.response import Response

from carehub.accounts.models import STAFF_ROLES, User
from carehub.api.patients import AuditedApi, StatusListApi
from carehub.api.requests import StaffRequest, validated
from carehub.api.schema import example, page_schema, problems
from carehub.audit.models import Action
from carehub.care_access import Operation
from carehub.core.exceptions import InvalidInput
from carehub.pathways.models import Enrolment
from carehub.worklists.models import Flag, FlagStatus, Priority, TaskStatus
from carehub.worklists.selectors import (
    flag_get_for_user,
    flag_list_for_user,
    task_get_for_user,
    task_list_for_user,
)
from carehub.worklists.services import (
    CANCEL_REASON_MAX_LENGTH,
    NOTE_MAX_LENGTH,
    TITLE_MAX_LENGTH,
    care_task_add,
    care_task_assign,
    care_task_cancel,
    care_task_complete,
    flag_set_status,
)

ALL = "all"


class _PatientFields(serializers.Serializer):
    patient_id = serializers.IntegerField()
    patient_mrn = serializers.CharField(source="patient.mrn")
    patient_name = serializers.SerializerMethodField()
    enrolment = serializers.UUIDField(source="enrolment.public_id", allow_null=True)

    def get_patient_name(self, item) -> str:
        return f"{item.patient.given_name} {item.patient.family_name}"


class TaskSerializer(_PatientFields):
    id = serializers.IntegerField()
    discipline = serializers.CharField(help_text="The role whose worklist it is on")
    title = serializers.CharField()
    due_at = serializers.DateTimeField(allow_null=True)
    priority = serializers.CharField()
    status = serializers.CharField()
    completed_at = serializers.DateTimeField(
        allow_null=True, help_text="When it was done, or closed without being done (cancelled)"
    )
    completed_by_id = serializers.IntegerField(allow_null=True)
    assigned_to_id = serializers.IntegerField(
        allow_null=True, help_text="The member of staff it is assigned to, if any"
    )
    closed_reason = serializers.CharField(
        help_text="Why a cancelled task was closed, e.g. its pathway state was left"
    )
    track = serializers.CharField(help_text="The pathway track a pathway task belongs to")
    state = serializers.CharField(
        help_text="The state of that track it belongs to: leaving the state closes the task"
    )
    created_at = serializers.DateTimeField()


class FlagSerializer(_PatientFields):
    id = serializers.IntegerField()
    code = serializers.CharField()
    severity = serializers.CharField()
    message = serializers.CharField()
    status = serializers.CharField(
        help_text="open, acknowledged (someone is on it: still unresolved) or resolved"
    )
    raised_at = serializers.DateTimeField()
    acknowledged_at = serializers.DateTimeField(allow_null=True)
    acknowledged_by_id = serializers.IntegerField(allow_null=True)
    acknowledged_note = serializers.CharField(help_text="What was done when it was acknowledged")
    resolved_at = serializers.DateTimeField(allow_null=True)
    resolved_by_id = serializers.IntegerField(allow_null=True)
    resolved_outcome = serializers.CharField(help_text="How it was resolved")


# --- tasks ------------------------------------------------------------------------------------


class TaskListApi(AuditedApi):
    operation = Operation.TASK_LIST
    audit_action = Action.TASK_LIST

    class FilterSerializer(serializers.Serializer):
        discipline = serializers.CharField(required=False, allow_blank=True, max_length=32)
        status = serializers.ChoiceField(
            choices=[*TaskStatus.values, ALL], required=False, default=TaskStatus.OPEN
        )

    OutputSerializer = TaskSerializer

    @page_schema(
        "tasks_list",
        "worklists",
        TaskSerializer,
        "TaskPage",
        filters=[
            OpenApiParameter(
                "discipline",
                str,
                description="A role's worklist (default: the caller's role), or `all`",
            ),
            OpenApiParameter(
                "status", str, enum=[*TaskStatus.values, ALL], description="Default: open"
            ),
        ],
    )
    def get(self, request: StaffRequest) -> Response:
        filters = validated(self.FilterSerializer, request.query_params)
        discipline = filters.validated_data.get("discipline") or request.user.role
        status = filters.validated_data["status"]
        tasks = task_list_for_user(
            user=request.user,
            discipline=None if discipline == ALL else discipline,
            status=None if status == ALL else status,
        )
        return self.audited_page(
            tasks,
            self.OutputSerializer,
            patient_field="patient_id",
            detail={"discipline": discipline},
        )


class TaskCompleteApi(AuditedApi):
    operation = Operation.TASK_COMPLETE
    audit_action = Action.TASK_COMPLETE

    OutputSerializer = TaskSerializer

    @extend_schema(
        operation_id="tasks_complete",
        tags=["worklists"],
        request=None,
        responses={200: TaskSerializer, **problems(403, 404, 409)},
    )
    def post(self, request: StaffRequest, task_id: int) -> Response:
        task = self.scoped(task_get_for_user(user=request.user, task_id=task_id))
        task = care_task_complete(task=task, user=request.user)
        return self.audited_response(self.OutputSerializer(task).data)


class PatientTaskCreateApi(AuditedApi):
    """Put a task on a discipline's worklist for the patient (optionally about one of the
    patient's enrolments, and assigned to a member of staff of that discipline)."""

    operation = Operation.TASK_CREATE
    audit_action = Action.TASK_CREATE

    class InputSerializer(serializers.Serializer):
        discipline = serializers.ChoiceField(
            choices=sorted(STAFF_ROLES), help_text="The role whose worklist it goes on"
        )
        title = serializers.CharField(max_length=TITLE_MAX_LENGTH)
        due_at = serializers.DateTimeField(required=False, allow_null=True)
        priority = serializers.ChoiceField(choices=Priority.values, required=False)
        enrolment = serializers.UUIDField(
            required=False, allow_null=True, help_text="One of the patient's enrolments"
        )
        assigned_to_id = serializers.IntegerField(
            required=False, allow_null=True, min_value=1, max_value=2**31 - 1
        )

    OutputSerializer = TaskSerializer

    @extend_schema(
        operation_id="patients_tasks_create",
        tags=["worklists"],
        request=InputSerializer,
        examples=[
            example(
                "Call back",
                {
                    "discipline": "coordinator",
                    "title": "Book the intake visit",
                    "due_at": "2026-01-08T17:00:00Z",
                },
            )
        ],
        responses={201: TaskSerializer, **problems(400, 403, 404, 409)},
    )
    def post(self, request: StaffRequest, patient_id: int) -> Response:
        patient = self.scoped_patient(patient_id)
        given = validated(self.InputSerializer, request.data)
        values = given.validated_data
        enrolment = None
        if values.get("enrolment") is not None:
            enrolment = Enrolment.objects.filter(
                public_id=values["enrolment"], patient=patient
            ).first()
            if enrolment is None:
                raise _invalid("enrolment", "No such enrolment of this patient.")
        assignee = None
        if values.get("assigned_to_id") is not None:
            assignee = User.objects.filter(
                pk=values["assigned_to_id"], clinic_id=patient.clinic_id
            ).first()
            if assignee is None:
                raise _invalid("assigned_to_id", "No such member of this clinic's staff.")
        task = care_task_add(
            patient=patient,
            discipline=values["discipline"],
            title=values["title"],
            due_at=values.get("due_at"),
            priority=values.get("priority", Priority.ROUTINE),
            enrolment=enrolment,
            assigned_to=assignee,
        )
        self.audit_obj = task
        data = self.OutputSerializer(task_get_for_user(user=request.user, task_id=task.pk)).data
        self.audit(detail={"discipline": task.discipline})
        return Response(data, status=201)


def _invalid(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field}: {message}", extra={"fields": {field: [message]}})


class TaskAssignApi(AuditedApi):
    """Assign an open task to a member of staff of its discipline (`staff_id` null: unassign)."""

    operation = Operation.TASK_ASSIGN
    audit_action = Action.TASK_ASSIGN

    class InputSerializer(serializers.Serializer):
        staff_id = serializers.IntegerField(allow_null=True, min_value=1, max_value=2**31 - 1)

    OutputSerializer = TaskSerializer

    @extend_schema(
        operation_id="tasks_assign",
        tags=["worklists"],
        request=InputSerializer,
        examples=[example("Assign", {"staff_id": 3})],
        responses={200: TaskSerializer, **problems(400, 403, 404, 409)},
    )
    def post(self, request: StaffRequest, task_id: int) -> Response:
        task = self.scoped(task_get_for_user(user=request.user, task_id=task_id))
        given = validated(self.InputSerializer, request.data)
        staff_id = given.validated_data["staff_id"]
        assignee = None
        if staff_id is not None:
            assignee = User.objects.filter(pk=staff_id, clinic_id=task.clinic_id).first()
            if assignee is None:
                raise _invalid("staff_id", "No such member of this clinic's staff.")
        care_task_assign(task=task, assignee=assignee)
        data = self.OutputSerializer(task_get_for_user(user=request.user, task_id=task.pk)).data
        self.audit(detail={"assigned_to": staff_id})
        return Response(data)


class TaskCancelApi(AuditedApi):
    """Cancel an open task that is no longer needed, saying why."""

    operation = Operation.TASK_CANCEL
    audit_action = Action.TASK_CANCEL

    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(max_length=CANCEL_REASON_MAX_LENGTH)

    OutputSerializer = TaskSerializer

    @extend_schema(
        operation_id="tasks_cancel",
        tags=["worklists"],
        request=InputSerializer,
        examples=[example("Done elsewhere", {"reason": "Booked by the referring practice"})],
        responses={200: TaskSerializer, **problems(400, 403, 404, 409)},
    )
    def post(self, request: StaffRequest, task_id: int) -> Response:
        task = self.scoped(task_get_for_user(user=request.user, task_id=task_id))
        given = validated(self.InputSerializer, request.data)
        care_task_cancel(task=task, reason=given.validated_data["reason"], user=request.user)
        return self.audited_response(
            self.OutputSerializer(task_get_for_user(user=request.user, task_id=task.pk)).data
        )


# --- flags ------------------------------------------------------------------------------------


class FlagListApi(StatusListApi):
    operation = Operation.FLAG_LIST
    audit_action = Action.FLAG_LIST
    operation_id = "flags_list"
    tag = "worklists"
    page_name = "FlagPage"
    statuses = FlagStatus
    ordering = "-worklist_rank"
    OutputSerializer = FlagSerializer

    def rows(self, status: str | None) -> QuerySet[Flag]:
        return flag_list_for_user(user=self.request.user, status=status)


class FlagAcknowledgeInput(serializers.Serializer):
    note = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=NOTE_MAX_LENGTH,
        help_text='What was done, e.g. "called the patient, safety plan reviewed": required '
        "for an urgent flag, optional for others",
    )


class FlagResolveInput(serializers.Serializer):
    outcome = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=NOTE_MAX_LENGTH,
        help_text="How the flag was resolved: required (400 naming `outcome` when missing)",
    )


class _FlagStatusApi(AuditedApi):
    operation = Operation.FLAG_UPDATE
    target_status: FlagStatus
    action = ""  # names the operation: flags_<action>
    InputSerializer: type[serializers.Serializer]

    OutputSerializer = FlagSerializer

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Each change's POST documented by its action and InputSerializer."""
        super().__init_subclass__(**kwargs)
        schema = extend_schema(
            operation_id=f"flags_{cls.action}",
            tags=["worklists"],
            request=cls.InputSerializer,
            responses={200: FlagSerializer, **problems(400, 403, 404, 409)},
        )
        extend_schema_view(post=schema)(cls)

    def post(self, request: StaffRequest, flag_id: int) -> Response:
        flag: Flag = self.scoped(flag_get_for_user(user=request.user, flag_id=flag_id))
        given = validated(self.InputSerializer, request.data)
        flag = flag_set_status(
            flag=flag,
            status=self.target_status,
            user=request.user,
            note=given.validated_data.get("note", ""),
            outcome=given.validated_data.get("outcome", ""),
        )
        return self.audited_response(self.OutputSerializer(flag).data)


class FlagAcknowledgeApi(_FlagStatusApi):
    """Someone is on it."""

    audit_action = Action.FLAG_ACKNOWLEDGE
    action = "acknowledge"
    target_status = FlagStatus.ACKNOWLEDGED
    InputSerializer = FlagAcknowledgeInput


class FlagResolveApi(_FlagStatusApi):
    audit_action = Action.FLAG_RESOLVE
    action = "resolve"
    target_status = FlagStatus.RESOLVED
    InputSerializer = FlagResolveInput
