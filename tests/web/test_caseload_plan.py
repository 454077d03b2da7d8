"""The caseload's queries read the indexes meant for them: the rows' "overdue or missed
check-ins" test reads the check-ins that can need attention (a few rows per patient) instead of
every check-in the clinic ever had; the counts at the top are one pass over the caseload
entries; the default page (needs attention first) walks the entries' index and never sorts the
caseload; and a page costs the same number of queries whatever the size of the clinic."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from carehub.accounts.models import User
from carehub.checkins.models import Checkin, CheckinStatus
from carehub.checkins.services import checkin_series_start
from carehub.clinics.models import Clinic
from carehub.pathways.services import enrolment_start
from carehub.web.selectors.caseload import CaseloadQuery, caseload_counts, caseload_page
from carehub.web.selectors.row_details import _ROW_DETAILS_SQL, row_details_params
from carehub.worklists.services import flag_raise
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


def test_the_counts_are_one_pass_over_the_caseload_entries(staff: dict[str, User]) -> None:
    with CaptureQueriesContext(connection) as queries:
        caseload_counts(staff["coordinator"], timezone.now())
    (query,) = queries.captured_queries
    plan = plan_of(query["sql"], verbose=True)
    assert "web_caseloadentry" in plan, plan
    # No table the facts come from: those are folded into the entries as they change.
    for table in ("checkins_checkin", "worklists_flag", "pathways_proposal", "pathways_step"):
        assert table not in plan, plan
    assert "SubPlan" not in plan, plan


def walk(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from walk(child)


def enrol_many(clinic: Clinic, count: int, start: int = 0) -> None:
    for n in range(start, start + count):
        patient = register(clinic, f"E-{n:03}", f"Given{n:03}", f"Family{n % 17:02}")
        enrolment = enrolment_start(patient=patient, definition_key="intractable-pain")
        if n % 7 == 0:
            flag_raise(
                enrolment=enrolment, code="phq9_item9", severity="urgent",
                message="PHQ-9 item 9 answered 2", raised_at=timezone.now(),
            )  # fmt: skip


def test_the_attention_page_walks_the_entries_index_and_sorts_only_its_parts(
    clinic: Clinic, staff: dict[str, User]
) -> None:
    """One statement for the page's patients: each part of its UNION ALL reads
    `caseload_entry_order` in order and stops at the page's size; only the few patients with
    urgent flags or escalations and the parts' page-sized results are ever sorted."""
    enrol_many(clinic, 120)
    analyze("web_caseloadentry", "patients_patient")
    size = 10
    query = CaseloadQuery(page_size=size)
    with CaptureQueriesContext(connection) as queries:
        page = caseload_page(user=staff["coordinator"], query=query)
    (main,) = [
        q["sql"]
        for q in queries.captured_queries
        if "UNION ALL" in q["sql"] and "web_caseloadentry" in q["sql"]
    ]  # (the definitions' probes are a UNION ALL too, one part a published version)
    with transaction.atomic(), connection.cursor() as cursor:
        # A test clinic is small enough to read whole: ask how a large one is read.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {main}")
        (plan,) = cursor.fetchone()[0]
    nodes = list(walk(plan["Plan"]))
    scans = [n for n in nodes if n.get("Relation Name") == "web_caseloadentry"]
    assert scans, nodes
    for scan in scans:  # never a sequential scan of the entries
        if scan["Node Type"] == "Bitmap Heap Scan":  # a part the planner expects to be tiny
            (scan,) = scan["Plans"]
        # (A part the statistics say is empty, here the overdue one, may be probed by key.)
        assert scan["Index Name"] in ("caseload_entry_order", "web_caseloadentry_pkey"), scan
    # The calm part (most of this clinic) is walked in the order of `caseload_entry_order`.
    assert any(
        n["Node Type"] == "Index Scan" and n["Index Name"] == "caseload_entry_order" for n in scans
    ), scans
    urgent = sum(1 for n in range(120) if n % 7 == 0)
    for node in nodes:
        if node["Node Type"] == "Sort":
            (child,) = node["Plans"]
            # The union's parts (at most size + 1 each), or the urgent patients' own part.
            assert child["Actual Rows"] <= max(3 * (size + 1), urgent), node
    assert len(page.rows) == size
    # The second page continues the walk from the cursor, again without sorting the caseload.
    second = caseload_page(user=staff["coordinator"], query=replace(query, cursor=page.next_cursor))
    assert not {r.patient.pk for r in second.rows} & {r.patient.pk for r in page.rows}


def test_the_default_page_costs_the_same_queries_whatever_the_clinics_size(
    clinic: Clinic, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["coordinator"])
    counts = []
    for added in (12, 60):
        enrol_many(clinic, added, start=sum((12, 60)[: len(counts)]))
        client.get("/caseload/")  # warm the session and caches
        with CaptureQueriesContext(connection) as queries:
            response = client.get("/caseload/?size=10")
        assert response.status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1], counts
