"""The caseload's read model: one row per patient with the facts the caseload counts and sorts
by, kept true by the database itself (ADR 0027).

Nothing in Python writes `CaseloadEntry`: triggers on the tables the facts come from (patients,
enrolments, pathway steps, proposals, flags, check-ins) recompute the rows of the patients a
statement touched, in the same transaction, from the view `web_caseload_source` (the one
definition of each fact). Every door (services, the engine's hand-written dispatch, set-based
sweeps, the admin, bulk loads) is covered because none can write those tables without firing
them. What depends on the time (a check-in overdue a day after it was due, missed within the
last four weeks, no progress for N weeks) is stored as the instants it is decided by and
compared with the clock when the page is read (`carehub.web.selectors`).
"""

from __future__ import annotations

from django.db import models


class Attention(models.IntegerChoices):
    """The part of the caseload order that does not depend on the time (lower first)."""

    URGENT_AND_APPROVAL = 0
    URGENT = 1
    APPROVAL = 2
    NONE = 3


class CaseloadEntry(models.Model):
    patient = models.OneToOneField(
        "patients.Patient",
        primary_key=True,
        on_delete=models.DO_NOTHING,  # the trigger on patients removes the row
        db_constraint=False,
        related_name="caseload_entry",
    )
    clinic_id = models.BigIntegerField()
    family_name = models.CharField(max_length=100)
    given_name = models.CharField(max_length=100)
    in_caseload = models.BooleanField(help_text="An active or paused enrolment")
    on_active_pathway = models.BooleanField()
    attention = models.SmallIntegerField(choices=Attention.choices)
    unresolved_flags = models.IntegerField()
    urgent_flags = models.IntegerField()
    pending_proposals = models.IntegerField()
    oldest_open_checkin_due = models.DateTimeField(null=True)
    latest_missed_checkin_closes = models.DateTimeField(null=True)
    last_progress_at = models.DateTimeField(null=True)

    class Meta:
        indexes = [
            # The caseload in its order: attention, then the name (keyset pages).
            models.Index(
                fields=["clinic_id", "attention", "family_name", "given_name", "patient"],
                name="caseload_entry_order",
                condition=models.Q(in_caseload=True),
            ),
        ]

    def __str__(self) -> str:
        return f"caseload entry of patient {self.patient_id}"
