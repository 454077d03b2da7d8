"""The caseload's queries read the partial indexes meant for them: the "overdue or missed
check-ins" test reads the check-ins that can need attention (a few rows per patient) instead of
every check-in the clinic ever had, and the counts at the top read each set of patients once."""

from __future__ import annotations

import re

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from carehub.accounts.models import User
from carehub.web.selectors import _ROW_DETAILS_SQL, caseload_counts, row_details_params

pytestmark = pytest.mark.django_db


def plan_of(sql: str, params: object = None, *, verbose: bool = False) -> str:
    with transaction.atomic(), connection.cursor() as cursor:
        # An empty test table would be read sequentially anyway: ask which index it can use.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {'(VERBOSE) ' if verbose else ''}{sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


def test_the_overdue_check_in_test_uses_the_attention_index() -> None:
    plan = plan_of(_ROW_DETAILS_SQL, row_details_params([1, 2, 3], timezone.now()))
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
