"""The caseload's queries read the partial indexes meant for them: the "overdue or missed
check-ins" test reads the check-ins that can need attention (a few rows per patient) instead of
every check-in the clinic ever had, and the counts at the top read each set of patients once."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from carehub.accounts.models import User
from carehub.checkins.models import Checkin, CheckinStatus
from carehub.checkins.services import checkin_series_start
from carehub.clinics.models import Clinic
from carehub.pathways.services import enrolment_start
from carehub.web.selectors import _ROW_DETAILS_SQL, caseload_counts, row_details_params
from tests.support.db_roles import analyze
from tests.web.conftest import register

pytestmark = pytest.mark.django_db


def plan_of(sql: str, params: object = None, *, verbose: bool = False) -> str:
    with transaction.atomic(), connection.cursor() as cursor:
        # An empty test table would be read sequentially anyway: ask which index it can use.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {'(VERBOSE) ' if verbose else ''}{sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


def test_the_overdue_check_in_test_uses_the_attention_index(
    clinic: Clinic, staff: dict[str, User]
) -> None:
    """With a history of answered check-ins (as every patient in care has) and fresh table
    statistics, the test reads the few that can need attention: left to an empty table's
    statistics, which the suite's earlier tests change, the planner's choice would be chance."""
    patient = register(clinic, "PL-1", "Plan", "Patient")
    enrolment = enrolment_start(patient=patient, definition_key="intractable-pain")
    now = timezone.now()
    series = checkin_series_start(
        enrolment=enrolment, series="peg", instrument="peg", every=timedelta(weeks=1), at=now
    )
    Checkin.objects.bulk_create(
        Checkin(
            series=series, patient=patient, enrolment=enrolment, instrument="peg",
            sequence=1000 + n, due_at=now - timedelta(days=n + 7),
            closes_at=now - timedelta(days=n + 4), status=CheckinStatus.ANSWERED,
        )
        for n in range(3000)
    )  # fmt: skip
    analyze("checkins_checkin")  # as the owner: the application may not
    plan = plan_of(_ROW_DETAILS_SQL, row_details_params([patient.pk], now))
    assert "checkin_needs_attention" in plan, plan


def test_the_counts_read_each_set_of_patients_once_from_its_index(
    staff: dict[str, User],
) -> None:
    with CaptureQueriesContext(connection) as queries:
        caseload_counts(staff["coordinator"], timezone.now())
    (query,) = queries.captured_queries
    plan = plan_of(query["sql"], verbose=True)
    for index in (
        "checkin_open_due_patient",
        "checkin_missed_patient",
        "enrolment_open_by_patient",
    ):
        assert index in plan, plan
    # Every set is a hashed SubPlan (read once), never a subquery run for each patient.
    subplans = set(re.findall(r"SubPlan (\d+)", plan))
    hashed = set(re.findall(r"hashed SubPlan (\d+)", plan))
    assert len(subplans) == 7, plan
    assert hashed == subplans, plan
