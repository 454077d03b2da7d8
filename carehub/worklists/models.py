"""Work for people: tasks for a discipline and flags that need a human's attention."""

from django.conf import settings
from django.db import models

from carehub.core.models import TimeStampedModel, Urgency

# A task's priority takes the values of a message's urgency (its reminder is sent with it).
Priority = Urgency


class TaskStatus(models.TextChoices):
    OPEN = "open", "Open"
    DONE = "done", "Done"
    CANCELLED = "cancelled", "Cancelled"


class WorkItem(TimeStampedModel):
    """What a task and a flag share: the clinic whose worklists show it, and what makes
    creating it twice find the first one: its dedupe key (a rerun sweep, a re-submitted form,
    a redelivered task) and the outbox effect that created it (executing the effect twice
    cannot create it twice)."""

    clinic = models.ForeignKey("clinics.Clinic", on_delete=models.PROTECT, related_name="+")
    dedupe_key = models.CharField(max_length=200, null=True, blank=True, unique=True)
    source_effect = models.OneToOneField(
        "pathways.OutboxEffect", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        abstract = True


class CareTask(WorkItem):
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="tasks")
    enrolment = models.ForeignKey(
        "pathways.Enrolment", on_delete=models.PROTECT, null=True, blank=True, related_name="tasks"
    )
    discipline = models.CharField(max_length=32, help_text="The role whose worklist it is on")
    title = models.CharField(max_length=200)
    due_at = models.DateTimeField(null=True, blank=True)
    priority = models.CharField(max_length=16, choices=Priority.choices, default=Priority.ROUTINE)
    status = models.CharField(max_length=16, choices=TaskStatus.choices, default=TaskStatus.OPEN)
    completed_at = models.DateTimeField(null=True, blank=True)
    completed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # The member of staff it is assigned to (care_task_assign), if any; it stays on the
    # discipline's worklist (the assignee's role).
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # Where a pathway task came from: the step that decided it, and the track and state it
    # belongs to (`workflows.model.CreateTask.state`); it is closed when the track leaves that
    # state, or when the pathway ends. (Steps are never deleted: no index, no cascade.)
    source_step = models.ForeignKey(
        "pathways.PathwayStep",
        on_delete=models.DO_NOTHING,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    track = models.CharField(max_length=64, blank=True, default="")
    state = models.CharField(max_length=64, blank=True, default="")
    # Why a task was closed without being done (status cancelled), e.g. "No longer needed: ...".
    closed_reason = models.CharField(max_length=300, blank=True, default="")

    class Meta:
        constraints = [
            # A task is not opened again while an equal one is open (`care_task_create`).
            models.UniqueConstraint(
                fields=["enrolment", "discipline", "title"],
                condition=models.Q(status="open"),
                name="task_one_open_per_title",
            ),
        ]
        indexes = [
            models.Index(
                fields=["clinic", "discipline", "due_at"],
                condition=models.Q(status="open"),
                name="task_open_worklist",
            )
        ]

    def __str__(self) -> str:
        return self.title


class Severity(models.TextChoices):
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    URGENT = "urgent", "Urgent"


class FlagStatus(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"


class Flag(WorkItem):
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="flags")
    enrolment = models.ForeignKey(
        "pathways.Enrolment", on_delete=models.PROTECT, null=True, blank=True, related_name="flags"
    )
    code = models.CharField(max_length=64)
    severity = models.CharField(max_length=16, choices=Severity.choices)
    message = models.CharField(max_length=300)
    status = models.CharField(max_length=16, choices=FlagStatus.choices, default=FlagStatus.OPEN)
    raised_at = models.DateTimeField()
    # Who did what (`flag_set_status`): acknowledged (someone is on it) with a note of what was
    # done, resolved with the outcome. Acknowledged is not resolved: the flag stays on the
    # caseload until it is resolved.
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    acknowledged_note = models.TextField(blank=True, default="")
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    resolved_outcome = models.TextField(blank=True, default="")

    class Meta:
        constraints = [
            # One flag per patient and code until it is resolved (`flag_raise`).
            models.UniqueConstraint(
                fields=["patient", "code"],
                condition=~models.Q(status="resolved"),
                name="flag_one_unresolved_per_code",
            ),
        ]
        indexes = [
            models.Index(
                fields=["clinic", "severity", "raised_at"],
                condition=~models.Q(status="resolved"),
                name="flag_unresolved",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_severity_display()}: {self.message}"
