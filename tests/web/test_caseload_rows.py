"""What a caseload row prints is prepared by the selector: the next due item, top flag and
oldest escalation (one statement for the page), the dates as the `date` filter shows them, and
the patient links as `reverse` makes them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db.models import Case, IntegerField, Max, Q, Value, When
from django.template import Context, Template
from django.urls import reverse
from django.utils import timezone

from carehub.accounts.models import User
from carehub.checkins.models import Checkin, CheckinStatus
from carehub.clinics.models import Clinic
from carehub.core import clock
from carehub.messaging.models import Message, MessageStatus
from carehub.observations.selectors import observation_history
from carehub.pathways.models import (
    Enrolment,
    EnrolmentStatus,
    PathwayStep,
    PathwayTimer,
    Proposal,
    ProposalStatus,
    TimerStatus,
)
from carehub.pathways.services import enrolment_pause
from carehub.patients.models import Patient
from carehub.web.selectors.caseload import CaseloadQuery, caseload_page
from carehub.web.selectors.formatting import _patient_url_maker, _shown_date
from carehub.web.selectors.row_details import RowDetails, row_details
from carehub.worklists.models import CareTask, Flag, FlagStatus, Severity, TaskStatus
from carehub.worklists.services import care_task_create, flag_raise, flag_set_status
from tests.web.test_caseload import enrol
from tests.web.test_caseload_counts import clinic_of_cases  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db


def expected_details(patient: Patient, now: datetime) -> RowDetails:
    """The same values read one ORM query at a time."""
    task = (
        CareTask.objects.filter(patient=patient, status=TaskStatus.OPEN, due_at__isnull=False)
        .order_by("due_at", "pk")
        .first()
    )
    timer = (
        PathwayTimer.objects.filter(enrolment__patient=patient, status=TimerStatus.PENDING)
        .order_by("due_at", "pk")
        .first()
    )
    checkin = (
        Checkin.objects.filter(
            patient=patient,
            status__in=(CheckinStatus.SCHEDULED, CheckinStatus.OPEN),
            due_at__gte=now,
        )
        .order_by("due_at", "pk")
        .first()
    )
    flag = (
        Flag.objects.filter(patient=patient)
        .exclude(status=FlagStatus.RESOLVED)
        .annotate(
            rank=Case(
                When(severity=Severity.URGENT, then=Value(0)),
                When(severity=Severity.WARNING, then=Value(1)),
                default=Value(2),
                output_field=IntegerField(),
            )
        )
        .order_by("rank", "-raised_at")
        .first()
    )
    proposal = (
        Proposal.objects.filter(enrolment__patient=patient, status=ProposalStatus.PENDING)
        .order_by("proposed_at")
        .first()
    )
    open_flags = Flag.objects.filter(patient=patient).exclude(status=FlagStatus.RESOLVED)
    overdue = Checkin.objects.filter(patient=patient).filter(
        Q(status=CheckinStatus.OPEN, due_at__lt=now - timedelta(hours=24))
        | Q(status=CheckinStatus.MISSED, closes_at__gte=now - timedelta(days=28))
    )
    progress_steps = PathwayStep.objects.filter(
        enrolment__patient=patient,
        enrolment__status=EnrolmentStatus.ACTIVE,
        outcome__in=("started", "transitioned"),
    )
    progress = progress_steps.aggregate(last=Max("at"))["last"]
    last_step = progress_steps.order_by("-at").first()
    pegs = observation_history(patient=patient, kind="score", code="peg").order_by("observed_at")
    last_peg = pegs.last()
    marked = pegs.filter(is_baseline=True).last()
    baseline = marked or pegs.first()
    dead = (
        Message.objects.filter(patient=patient, status=MessageStatus.DEAD, to_staff__isnull=True)
        .order_by("-created_at")
        .first()
    )
    return RowDetails(
        open_flags=open_flags.count(),
        urgent_flags=open_flags.filter(severity=Severity.URGENT).count(),
        pending_proposals=Proposal.objects.filter(
            enrolment__patient=patient, status=ProposalStatus.PENDING
        ).count(),
        overdue_checkins=overdue.count(),
        last_progress_at=progress,
        has_active=Enrolment.objects.filter(
            patient=patient, status=EnrolmentStatus.ACTIVE
        ).exists(),
        next_task_due=task.due_at if task else None,
        next_task_title=task.title if task else None,
        next_timer_due=timer.due_at if timer else None,
        next_timer_event=timer.event if timer else None,
        next_checkin_due=checkin.due_at if checkin else None,
        next_checkin_instrument=checkin.instrument if checkin else None,
        top_flag_message=flag.message if flag else None,
        pending_summary=proposal.summary if proposal else None,
        last_progress_transitions=last_step.transitions if last_step else None,
        last_peg=last_peg.value_number if last_peg else None,
        last_peg_at=last_peg.observed_at if last_peg else None,
        baseline_peg=baseline.value_number if baseline else None,
        contact_problem=dead.last_error if dead else None,
    )


def test_row_details_match_one_query_per_value(clinic: Clinic, staff: dict[str, User]) -> None:
    now = clock.now()
    busy = enrol(clinic, "R-1", "Busy", "Baker")
    quiet = enrol(clinic, "R-2", "Quiet", "Quinn")
    enrolment = busy.enrolments.get()
    for days, title in ((5, "Later call"), (2, "Soon call"), (2, "Same day call")):
        care_task_create(
            enrolment=enrolment, discipline="coordinator", title=title,
            due_at=now + timedelta(days=days),
        )  # fmt: skip
    care_task_create(enrolment=enrolment, discipline="coordinator", title="Whenever", due_at=None)
    for severity, message, hours in (
        ("warning", "Pain rising", 1),
        ("urgent", "Older urgent", 3),
        ("urgent", "Newer urgent", 2),
        ("info", "Note", 0),
    ):
        flag_raise(
            enrolment=enrolment, code=f"c-{message}", severity=severity, message=message,
            raised_at=now - timedelta(hours=hours),
        )  # fmt: skip
    # Acknowledged is still unresolved (counted, and the top flag); resolved is not.
    newer = Flag.objects.get(message="Newer urgent")
    flag_set_status(
        flag=newer, status=FlagStatus.ACKNOWLEDGED, user=staff["physician"], note="Called"
    )
    gone = flag_raise(
        enrolment=enrolment, code="c-gone", severity="urgent", message="Resolved urgent",
        raised_at=now,
    )  # fmt: skip
    flag_set_status(flag=gone, status=FlagStatus.RESOLVED, user=staff["physician"], outcome="Safe")
    Checkin.objects.filter(patient=busy).update(
        status=CheckinStatus.OPEN, due_at=now - timedelta(days=2)
    )  # overdue
    enrolment_pause(enrolment_id=quiet.enrolments.get().pk, reason="Holiday")
    details = row_details([busy.pk, quiet.pk, 0], now)
    assert details[busy.pk] == expected_details(busy, now)
    assert details[quiet.pk] == expected_details(quiet, now)
    assert details[busy.pk].next_task_title == "Soon call"
    assert details[busy.pk].top_flag_message == "Newer urgent"
    assert (details[busy.pk].open_flags, details[busy.pk].urgent_flags) == (4, 2)
    assert details[busy.pk].has_active
    assert not details[quiet.pk].has_active
    assert details[0] == RowDetails()
    assert row_details([], now) == {}


def test_row_details_of_every_case(clinic_of_cases: dict[str, Patient]) -> None:  # noqa: F811
    now = clock.now()
    patients = list(Patient.objects.all())
    details = row_details([p.pk for p in patients], now)
    for patient in patients:
        assert details[patient.pk] == expected_details(patient, now), patient
    by_case = {case: details[p.pk] for case, p in clinic_of_cases.items()}
    assert by_case["open_late"].overdue_checkins == 1
    assert by_case["open_on_time"].overdue_checkins == 0
    assert by_case["missed_recently"].overdue_checkins == 2
    assert by_case["missed_long_ago"].overdue_checkins == 0
    assert sum(d.pending_proposals for d in details.values()) == 1
    assert any(d.pending_summary for d in details.values())


@pytest.mark.parametrize("zone", ["UTC", "Australia/Sydney", "America/Los_Angeles"])
def test_shown_dates_are_what_the_date_filter_shows(zone: str) -> None:
    template = Template("{{ at|date:'c' }}|{{ at|date:'j M Y' }}")
    with timezone.override(zone):
        for at in (
            datetime(2026, 1, 31, 23, 30, tzinfo=UTC),
            datetime(2026, 3, 1, 0, 5, 7, 123456, tzinfo=UTC),
            datetime(2025, 12, 9, 12, 0, tzinfo=UTC),
        ):
            assert "|".join(_shown_date(at)) == template.render(Context({"at": at}))


def test_patient_links_are_the_reversed_urls() -> None:
    url_of = _patient_url_maker()
    for pk in (1, 42, 987654321):
        assert url_of(pk) == reverse("web:patient", args=[pk])


def test_a_row_carries_what_the_page_prints(clinic: Clinic, staff: dict[str, User]) -> None:
    now = clock.now()
    patient = enrol(clinic, "R-3", "Rita", "Row")
    care_task_create(
        enrolment=patient.enrolments.get(), discipline="coordinator", title="Call back",
        due_at=now - timedelta(days=1),
    )  # fmt: skip
    page = caseload_page(user=staff["coordinator"], query=CaseloadQuery(), now=now)
    (row,) = [r for r in page.rows if r.patient.pk == patient.pk]
    assert row.url == reverse("web:patient", args=[patient.pk])
    assert row.name == "Row, Rita"
    assert row.next_due_label == "Task: Call back"
    assert row.overdue
    assert (row.next_due_iso, row.next_due_date) == _shown_date(now - timedelta(days=1))
    # enrolling is progress: the date shown is the start's
    assert row.last_progress_at is not None
    assert (row.progress_iso, row.progress_date) == _shown_date(row.last_progress_at)
    assert not row.stalled
