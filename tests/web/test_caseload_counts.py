"""The counts at the top of the caseload: exact on a small clinic, the same patients the
filters find, scoped like the rows, and read in one query."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.test.utils import CaptureQueriesContext

from carehub.accounts.models import User
from carehub.care_access import patients_visible_to
from carehub.checkins.models import Checkin, CheckinSeries, CheckinStatus
from carehub.checkins.services import checkin_series_start
from carehub.clinics.models import Clinic
from carehub.core import clock
from carehub.pathways.models import Enrolment, PathwayStep, Proposal, ProposalStatus
from carehub.pathways.services import enrolment_pause, enrolment_start
from carehub.patients.models import Patient
from carehub.web.selectors.caseload import (
    CaseloadCounts,
    CaseloadQuery,
    FlagFilter,
    caseload_counts,
    caseload_page,
    stalled_after,
)
from carehub.web.selectors.shared import MISSED_WINDOW, OPEN_ENROLMENT, OVERDUE_AFTER
from carehub.worklists.models import Flag, FlagStatus, Severity
from carehub.worklists.services import flag_raise
from tests.web.conftest import on_team, register

pytestmark = pytest.mark.django_db
PATHWAY = "intractable-pain"


def enrol(clinic: Clinic, mrn: str, *, weeks_ago: int = 0) -> Patient:
    patient = register(clinic, mrn, mrn, mrn)
    enrolment_start(
        patient=patient, definition_key=PATHWAY, at=clock.now() - timedelta(weeks=weeks_ago)
    )
    return patient


def flag(patient: Patient, severity: str) -> None:
    flag_raise(
        enrolment=patient.enrolments.get(), code=f"test_{severity}", severity=severity,
        message=f"A {severity} flag", raised_at=clock.now(),
    )  # fmt: skip


def checkin(patient: Patient, status: str, due_at: datetime) -> None:
    """A check-in in `status`, open for a week from `due_at` (test data, written directly)."""
    enrolment = patient.enrolments.get()
    series = CheckinSeries.objects.filter(enrolment=enrolment).first() or checkin_series_start(
        enrolment=enrolment, series="test", instrument="peg", every=timedelta(weeks=4),
        at=clock.now(),
    )  # fmt: skip
    Checkin.objects.create(
        series=series, patient=patient, enrolment=enrolment, instrument="peg",
        sequence=1000 + Checkin.objects.filter(series=series).count(),
        due_at=due_at, closes_at=due_at + timedelta(days=7), status=status,
    )  # fmt: skip


@pytest.fixture
def clinic_of_cases(
    clinic: Clinic, staff: dict[str, User], proposed: Proposal, foreign_patient: Patient
) -> dict[str, Patient]:
    """One patient per case; `proposed` (Bea Brown) waits for an escalation's approval."""
    now = clock.now()
    cases = {
        "calm": enrol(clinic, "calm"),
        "urgent": enrol(clinic, "urgent"),
        "warning": enrol(clinic, "warning"),
        "open_late": enrol(clinic, "open-late"),
        "open_on_time": enrol(clinic, "open-on-time"),
        "missed_recently": enrol(clinic, "missed-recently"),
        "missed_long_ago": enrol(clinic, "missed-long-ago"),
        "stalled": enrol(clinic, "stalled", weeks_ago=10),
        "paused": enrol(clinic, "paused", weeks_ago=10),
    }
    flag(cases["urgent"], "urgent")
    flag(cases["urgent"], "warning")
    flag(cases["warning"], "warning")
    checkin(cases["open_late"], CheckinStatus.OPEN, now - timedelta(days=2))
    checkin(cases["open_on_time"], CheckinStatus.OPEN, now - timedelta(hours=2))
    checkin(cases["missed_recently"], CheckinStatus.MISSED, now - timedelta(days=10))
    checkin(cases["missed_recently"], CheckinStatus.MISSED, now - timedelta(days=12))
    checkin(cases["missed_long_ago"], CheckinStatus.MISSED, now - timedelta(days=60))
    enrolment_pause(enrolment_id=cases["paused"].enrolments.get().pk, reason="Hospital stay")
    # Outside the caseload: never enrolled, and another clinic's patient with an urgent flag.
    register(clinic, "not-enrolled")
    flag(foreign_patient, "urgent")
    on_team(cases["urgent"], staff, ("physical_therapist",))
    return cases


def test_the_counts_are_exact(clinic_of_cases: dict[str, Patient], staff: dict[str, User]) -> None:
    counts = caseload_counts(staff["coordinator"], clock.now())
    # 9 cases and Bea Brown; the "stalled" case alone has gone 6+ weeks without progress (the
    # paused one is not on an active pathway, Bea's history moved within the last weeks).
    assert counts == CaseloadCounts(total=10, urgent=1, flagged=2, approval=1, overdue=2, stalled=1)


def reference_caseload(user: User) -> QuerySet[Patient]:
    """The caseload read from the tables the facts come from (not the caseload entries)."""
    open_enrolments = Enrolment.objects.filter(patient=OuterRef("pk"), status__in=OPEN_ENROLMENT)
    return patients_visible_to(user).filter(Exists(open_enrolments))


def reference_needs(now: datetime) -> dict[str, Q]:
    """What each "needs" filter means, as EXISTS over the source tables."""

    def marked_by(rows: QuerySet[Any], patient: str = "patient") -> Q:
        return Q(Exists(rows.filter(**{patient: OuterRef("pk")})))

    unresolved = Flag.objects.exclude(status=FlagStatus.RESOLVED)
    progress = PathwayStep.objects.filter(
        enrolment__status="active", outcome__in=("started", "transitioned")
    )
    return {
        FlagFilter.URGENT: marked_by(unresolved.filter(severity=Severity.URGENT)),
        FlagFilter.ANY: marked_by(unresolved),
        FlagFilter.APPROVAL: marked_by(
            Proposal.objects.filter(status=ProposalStatus.PENDING), "enrolment__patient"
        ),
        FlagFilter.OVERDUE: marked_by(
            Checkin.objects.filter(
                Q(status=CheckinStatus.OPEN, due_at__lt=now - OVERDUE_AFTER)
                | Q(status=CheckinStatus.MISSED, closes_at__gte=now - MISSED_WINDOW)
            )
        ),
        FlagFilter.STALLED: marked_by(Enrolment.objects.filter(status="active"))
        & ~marked_by(progress.filter(at__gte=now - stalled_after()), "enrolment__patient"),
    }


def test_the_counts_and_the_filters_find_the_patients_the_source_tables_name(
    clinic_of_cases: dict[str, Patient], staff: dict[str, User], settings, client_for
) -> None:  # type: ignore[no-untyped-def]
    """The counts and the page's "needs" filters read the caseload entries; both name the
    patients the source tables name, for every scope and stalled threshold."""
    for weeks in (1, 6, 52):
        settings.WEB_STALLED_AFTER_WEEKS = weeks
        for user in (staff["coordinator"], staff["physical_therapist"], staff["psychologist"]):
            now = clock.now()
            counts = caseload_counts(user, now)
            listed = reference_caseload(user)
            needs = reference_needs(now)
            assert counts.total == listed.count()
            for name, flag in (
                ("urgent", FlagFilter.URGENT),
                ("flagged", FlagFilter.ANY),
                ("approval", FlagFilter.APPROVAL),
                ("overdue", FlagFilter.OVERDUE),
                ("stalled", FlagFilter.STALLED),
            ):
                expected = set(listed.filter(needs[flag]).values_list("pk", flat=True))
                assert getattr(counts, name) == len(expected), (user.username, weeks, name)
                page = caseload_page(
                    user=user, query=CaseloadQuery(flag=flag, page_size=100), now=now
                )
                assert {row.patient.pk for row in page.rows} == expected, (
                    user.username, weeks, name,
                )  # fmt: skip


def test_the_counts_are_scoped_like_the_rows(
    clinic_of_cases: dict[str, Patient], staff: dict[str, User]
) -> None:
    # The physical therapist is on the care teams of the urgent case and of Bea Brown only.
    counts = caseload_counts(staff["physical_therapist"], clock.now())
    assert counts == CaseloadCounts(total=2, urgent=1, flagged=1, approval=1, overdue=0, stalled=0)
    assert caseload_counts(staff["psychologist"], clock.now()).total == 0


def test_a_completed_enrolment_leaves_the_counts(
    clinic_of_cases: dict[str, Patient], staff: dict[str, User]
) -> None:
    Enrolment.objects.filter(patient=clinic_of_cases["urgent"]).update(
        status="completed", completed_at=clock.now()
    )
    counts = caseload_counts(staff["coordinator"], clock.now())
    assert (counts.total, counts.urgent, counts.flagged) == (9, 0, 1)


def test_the_counts_are_one_query(
    clinic_of_cases: dict[str, Patient], staff: dict[str, User]
) -> None:
    with CaptureQueriesContext(connection) as queries:
        caseload_counts(staff["coordinator"], clock.now())
    assert len(queries) == 1


def test_every_page_shows_the_counts_of_the_whole_caseload(
    clinic_of_cases: dict[str, Patient], staff: dict[str, User]
) -> None:
    """Whatever the order, filter or page, the numbers at the top are the whole caseload's."""
    now = clock.now()
    for role in ("coordinator", "physical_therapist", "psychologist"):
        user = staff[role]
        expected = caseload_counts(user, now)
        page = caseload_page(user=user, query=CaseloadQuery(), now=now)
        assert page.counts == expected, role
        by_name = caseload_page(user=user, query=CaseloadQuery(sort="name", page_size=2), now=now)
        assert by_name.counts == expected, role
        urgent = caseload_page(user=user, query=CaseloadQuery(flag="urgent"), now=now)
        assert urgent.counts == expected, role
