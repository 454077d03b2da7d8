"""The caseload dashboard: scope, counts, filters, sorting, search, keyset pages, queries."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from carehub.accounts.models import User
from carehub.audit.models import AuditEvent
from carehub.clinics.models import Clinic
from carehub.core import clock
from carehub.pathways.models import Proposal
from carehub.pathways.services import enrolment_pause, enrolment_start
from carehub.patients.models import Patient
from carehub.worklists.services import care_task_create, flag_raise
from tests.web.conftest import register

pytestmark = pytest.mark.django_db
PATHWAY = "intractable-pain"


def names(html: str) -> list[str]:
    """The patients listed, in order (the row headers link to the patient pages)."""
    return re.findall(r'<a href="/patients/\d+/">([^<]+)</a>', html)


def enrol(clinic: Clinic, mrn: str, given: str, family: str) -> Patient:
    patient = register(clinic, mrn, given, family)
    enrolment_start(patient=patient, definition_key=PATHWAY)
    return patient


def urgent_flag(patient: Patient, message: str = "PHQ-9 item 9 answered 2") -> None:
    flag_raise(
        enrolment=patient.enrolments.get(), code="phq9_item9", severity="urgent",
        message=message, raised_at=clock.now(),
    )  # fmt: skip


def test_lists_the_clinics_active_patients_only(
    clinic: Clinic, staff: dict[str, User], foreign_patient: Patient, client_for
) -> None:  # type: ignore[no-untyped-def]
    enrol(clinic, "A-1", "Ann", "Able")
    register(clinic, "A-2", "Never", "Enrolled")
    html = client_for(staff["coordinator"]).get("/caseload/").content.decode()
    assert names(html) == ["Able, Ann"]
    assert "Oscar" not in html


def test_a_therapist_sees_only_their_care_team_patients(
    patient: Patient, clinic: Clinic, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    enrol(clinic, "A-1", "Ann", "Able")  # nobody's care team
    assert names(client_for(staff["physical_therapist"]).get("/caseload/").content.decode()) == [
        "Adams, Alice"
    ]
    assert names(client_for(staff["psychologist"]).get("/caseload/").content.decode()) == []


def test_a_patient_account_is_refused(patient_user: User, client_for) -> None:  # type: ignore[no-untyped-def]
    response = client_for(patient_user).get("/caseload/")
    assert response.status_code == 403
    assert b"Go to your own page" in response.content


def test_counts_urgent_flags_first_and_escalations(
    clinic: Clinic, staff: dict[str, User], proposed: Proposal, client_for
) -> None:  # type: ignore[no-untyped-def]
    enrol(clinic, "A-1", "Ann", "Able")
    flagged = enrol(clinic, "Z-1", "Zed", "Zulu")
    urgent_flag(flagged)
    client = client_for(staff["coordinator"])
    html = client.get("/caseload/").content.decode()
    counts = {
        label.strip(): int(n)
        for n, label in re.findall(r'<span class="count">(\d+)</span>([^<]+)</a>', html)
    }
    assert counts["active patients"] == 3
    assert counts["with urgent flags"] == 1
    assert counts["escalations to approve"] == 1
    assert "First diagnostic medial branch block" in html
    attention = client.get("/caseload/?sort=attention").content.decode()
    assert names(attention) == ["Zulu, Zed", "Brown, Bea", "Able, Ann"]
    assert names(client.get("/caseload/?flag=urgent").content.decode()) == ["Zulu, Zed"]
    assert names(client.get("/caseload/?flag=approval").content.decode()) == ["Brown, Bea"]
    # Needs attention first is the default order; by name on request.
    assert names(html) == ["Zulu, Zed", "Brown, Bea", "Able, Ann"]
    by_name = client.get("/caseload/?sort=name").content.decode()
    assert names(by_name) == ["Able, Ann", "Brown, Bea", "Zulu, Zed"]


def test_search_by_name_or_mrn(clinic: Clinic, staff: dict[str, User], client_for) -> None:  # type: ignore[no-untyped-def]
    enrol(clinic, "A-100", "Ann", "Able")
    enrol(clinic, "B-200", "Bob", "Baker")
    client = client_for(staff["coordinator"])
    assert names(client.get("/caseload/?q=B-200").content.decode()) == ["Baker, Bob"]
    assert names(client.get("/caseload/?q=ann").content.decode()) == ["Able, Ann"]


def test_track_stage_and_discipline_filters(
    clinic: Clinic, staff: dict[str, User], patient: Patient, client_for
) -> None:  # type: ignore[no-untyped-def]
    new = enrol(clinic, "A-1", "Ann", "Able")  # intake: assessment stage
    care_task_create(
        enrolment=new.enrolments.get(), discipline="pharmacist", title="Review", due_at=None
    )
    client = client_for(staff["coordinator"])
    assert names(client.get("/caseload/?track=ladder&stage=conventional").content.decode()) == [
        "Adams, Alice"
    ]
    assert names(client.get("/caseload/?track=ladder&stage=assessment").content.decode()) == [
        "Able, Ann"
    ]
    assert names(client.get("/caseload/?stage=conventional").content.decode()) == ["Adams, Alice"]
    assert names(client.get("/caseload/?discipline=pharmacist").content.decode()) == ["Able, Ann"]


def test_stalled_patients_after_the_configured_weeks(
    clinic: Clinic, staff: dict[str, User], settings, client_for
) -> None:  # type: ignore[no-untyped-def]
    old = register(clinic, "A-1", "Ann", "Able")
    enrolment_start(patient=old, definition_key=PATHWAY, at=clock.now() - timedelta(weeks=10))
    enrol(clinic, "B-1", "Bob", "Baker")
    paused = register(clinic, "C-1", "Cy", "Cole")
    enrolment = enrolment_start(
        patient=paused, definition_key=PATHWAY, at=clock.now() - timedelta(weeks=10)
    )
    enrolment_pause(enrolment_id=enrolment.pk, reason="Hospital stay")
    client = client_for(staff["coordinator"])
    settings.WEB_STALLED_AFTER_WEEKS = 6
    assert names(client.get("/caseload/?flag=stalled").content.decode()) == ["Able, Ann"]
    settings.WEB_STALLED_AFTER_WEEKS = 12
    assert names(client.get("/caseload/?flag=stalled").content.decode()) == []


@pytest.mark.parametrize("sort", ["name", "attention", "progress"])
def test_keyset_pages_walk_every_patient_once(
    clinic: Clinic, staff: dict[str, User], client_for, sort: str
) -> None:  # type: ignore[no-untyped-def]
    for n in range(23):
        patient = enrol(clinic, f"K-{n:02}", f"Given{n:02}", "Same" if n % 2 else f"Family{n:02}")
        if n % 5 == 0:
            urgent_flag(patient)
    client = client_for(staff["coordinator"])
    seen: list[str] = []
    url = f"/caseload/?size=10&sort={sort}"
    pages = 0
    while url:
        html = client.get(url).content.decode()
        seen += names(html)
        pages += 1
        match = re.search(r'href="\?([^"]*cursor=[^"]+)" rel="next"', html)
        url = "/caseload/?" + match.group(1).replace("&amp;", "&") if match else ""
    assert pages == 3
    assert len(seen) == 23
    assert len(set(seen)) == 23
    if sort == "name":
        assert seen == sorted(seen, key=lambda n: (n.split(", ")[0], n.split(", ")[1]))
    if sort == "attention":  # the five with an urgent flag come first
        assert {int(name[-2:]) % 5 for name in seen[:5]} == {0}


def test_a_tampered_cursor_is_a_form_error_not_a_crash(
    clinic: Clinic, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    enrol(clinic, "A-1", "Ann", "Able")
    response = client_for(staff["coordinator"]).get("/caseload/?cursor=forged")
    assert response.status_code == 400
    assert b"no longer valid" in response.content


def test_every_listed_patient_is_audited(
    clinic: Clinic, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    patients = [enrol(clinic, f"A-{n}", f"P{n}", "Able") for n in range(3)]
    client_for(staff["coordinator"]).get("/caseload/")
    rows = AuditEvent.objects.filter(action="patient.list", actor=staff["coordinator"])
    assert sorted(rows.values_list("patient_id", flat=True)) == sorted(p.pk for p in patients)


def test_the_number_of_queries_does_not_grow_with_the_page_size(
    clinic: Clinic, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    for n in range(105):
        patient = enrol(clinic, f"Q-{n:03}", f"Given{n:03}", f"Family{n:03}")
        if n % 3 == 0:
            urgent_flag(patient)
        if n % 4 == 0:
            care_task_create(
                enrolment=patient.enrolments.get(), discipline="coordinator", title="Call",
                due_at=clock.now() + timedelta(days=n),
            )  # fmt: skip
    client = client_for(staff["coordinator"])
    client.get("/caseload/?size=10")  # warm the session and caches
    counts = {}
    for size in (10, 50, 100):
        with CaptureQueriesContext(connection) as queries:
            response = client.get(f"/caseload/?size={size}&sort=attention")
        assert response.status_code == 200
        assert len(names(response.content.decode())) == size
        counts[size] = len(queries)
    assert counts[10] == counts[50] == counts[100], counts
    assert counts[10] <= 17, counts


def test_htmx_filtering_answers_only_the_results(
    clinic: Clinic, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    enrol(clinic, "A-1", "Ann", "Able")
    response = client_for(staff["coordinator"]).get("/caseload/?q=ann", HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="caseload-results"')
    assert names(html) == ["Able, Ann"]
    assert "<html" not in html


def test_the_form_shows_the_page_size_in_use(
    clinic: Clinic, staff: dict[str, User], settings, client_for
) -> None:  # type: ignore[no-untyped-def]
    settings.WEB_CASELOAD_PAGE_SIZE = 30
    html = client_for(staff["coordinator"]).get("/caseload/?sort=attention").content.decode()
    assert '<option value="30" selected>' in html
    assert '<option value="attention" selected>' in html
