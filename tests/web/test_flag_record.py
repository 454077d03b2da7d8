"""Urgent flags stay until resolved, with a record of who did what: an acknowledged flag is
still counted, shown and matched on the caseload; acknowledging an urgent flag needs a note of
what was done and resolving any flag its outcome; the patient page shows each flag's history
and, while an urgent flag is unresolved, a banner at the top; the workspace lists those
patients first."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from carehub.accounts.models import User
from carehub.clinics.models import Clinic
from carehub.core import clock
from carehub.pathways.services import enrolment_start
from carehub.patients.models import Patient
from carehub.worklists.models import Flag
from carehub.worklists.services import flag_raise
from tests.web.conftest import on_team, register, with_history
from tests.web.histories import early_conventional

pytestmark = pytest.mark.django_db
ITEM9 = "PHQ-9 item 9 answered 2"


def names(html: str) -> list[str]:
    return re.findall(r'<a href="/patients/\d+/">([^<]+)</a>', html)


def counts(html: str) -> dict[str, int]:
    return {
        label.strip(): int(n)
        for n, label in re.findall(r'<span class="count">(\d+)</span>([^<]+)</a>', html)
    }


def raise_flag(patient: Patient, severity: str = "urgent", message: str = ITEM9) -> Flag:
    return flag_raise(
        enrolment=patient.enrolments.get(), code=f"test_{severity}", severity=severity,
        message=message, raised_at=clock.now(),
    )  # fmt: skip


def key_for(html: str, url: str) -> str:
    start = html.index(f'action="{url}"')
    return re.search(r'name="form_key" value="([^"]+)"', html[start:]).group(1)  # type: ignore[union-attr]


def act(client: Client, flag: Flag, action: str, htmx: bool = True, **text: str):  # type: ignore[no-untyped-def]
    html = client.get("/flags/?show=unresolved").content.decode()
    url = f"/flags/{flag.pk}/{action}"
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    return client.post(url, {"form_key": key_for(html, url), **text}, **headers)


def test_an_acknowledged_urgent_flag_stays_on_the_caseload_until_resolved(
    clinic: Clinic, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    for mrn, given, family in (("A-1", "Ann", "Able"), ("Z-1", "Zed", "Zulu")):
        enrolment_start(
            patient=register(clinic, mrn, given, family), definition_key="intractable-pain"
        )
    zed = Patient.objects.get(mrn="Z-1")
    flag = raise_flag(zed)
    client = client_for(staff["coordinator"])
    assert (
        act(client, flag, "acknowledge", note="Called her, safety plan reviewed").status_code == 200
    )
    flag.refresh_from_db()
    assert flag.status == "acknowledged"

    html = client.get("/caseload/").content.decode()
    assert counts(html)["with urgent flags"] == 1
    assert counts(html)["with unresolved flags"] == 1
    row = html[html.index("Zulu, Zed") :]
    assert '<span class="badge badge-urgent">1 urgent</span>' in row
    assert f"1 flag: {ITEM9}" in row
    assert names(client.get("/caseload/?sort=attention").content.decode())[0] == "Zulu, Zed"
    assert names(client.get("/caseload/?flag=urgent").content.decode()) == ["Zulu, Zed"]
    assert names(client.get("/caseload/?flag=any").content.decode()) == ["Zulu, Zed"]

    assert act(client, flag, "resolve", outcome="Seen in clinic, safe").status_code == 200
    html = client.get("/caseload/").content.decode()
    assert (counts(html)["with urgent flags"], counts(html)["with unresolved flags"]) == (0, 0)
    assert ITEM9 not in html
    assert names(client.get("/caseload/?flag=urgent").content.decode()) == []
    assert names(client.get("/caseload/?flag=any").content.decode()) == []


def test_acknowledging_an_urgent_flag_needs_a_note_of_what_was_done(
    patient: Patient, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    flag = raise_flag(patient)
    client = client_for(staff["coordinator"])
    response = act(client, flag, "acknowledge", note="  ")
    assert response.status_code == 400
    row = response.content.decode()
    note_field = re.search(rf'<input[^>]*id="flag-{flag.pk}-note"[^>]*>', row).group(0)  # type: ignore[union-attr]
    assert 'aria-invalid="true"' in note_field
    assert f'aria-describedby="flag-{flag.pk}-note-error"' in note_field
    assert f'id="flag-{flag.pk}-note-error">Say what was done' in row
    assert f'<label for="flag-{flag.pk}-note">What was done (required)' in row
    flag.refresh_from_db()
    assert (flag.status, flag.acknowledged_at, flag.acknowledged_by) == ("open", None, None)

    # Without htmx, the flags page comes back with the error by the field and the text kept.
    response = act(client, flag, "acknowledge", htmx=False, note="")
    assert response.status_code == 400
    assert f'id="flag-{flag.pk}-note-error"' in response.content.decode()
    flag.refresh_from_db()
    assert flag.status == "open"

    before = clock.now()
    response = act(client, flag, "acknowledge", note="Called the patient, safety plan reviewed")
    assert response.status_code == 200
    flag.refresh_from_db()
    assert flag.status == "acknowledged"
    assert flag.acknowledged_by == staff["coordinator"]
    assert flag.acknowledged_at is not None
    assert flag.acknowledged_at >= before
    assert flag.acknowledged_note == "Called the patient, safety plan reviewed"
    assert "Called the patient, safety plan reviewed" in response.content.decode()


def test_a_warning_is_acknowledged_without_a_note(
    patient: Patient, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    flag = raise_flag(patient, "warning", "Pain up by 3 points")
    response = act(client_for(staff["coordinator"]), flag, "acknowledge", note="")
    assert response.status_code == 200
    flag.refresh_from_db()
    assert (flag.status, flag.acknowledged_by, flag.acknowledged_note) == (
        "acknowledged", staff["coordinator"], ""
    )  # fmt: skip


def test_resolving_a_flag_needs_its_outcome(
    patient: Patient, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    flag = raise_flag(patient, "warning", "Pain up by 3 points")
    client = client_for(staff["physician"])
    response = act(client, flag, "resolve")
    assert response.status_code == 400
    assert f'id="flag-{flag.pk}-outcome-error">Say how the flag was resolved' in (
        response.content.decode()
    )
    flag.refresh_from_db()
    assert (flag.status, flag.resolved_at, flag.resolved_by) == ("open", None, None)
    response = act(client, flag, "resolve", outcome="Medication reviewed, pain settled")
    assert response.status_code == 200
    flag.refresh_from_db()
    assert (flag.status, flag.resolved_by, flag.resolved_outcome) == (
        "resolved", staff["physician"], "Medication reviewed, pain settled"
    )  # fmt: skip
    assert flag.resolved_at is not None
    assert "Medication reviewed, pain settled" in response.content.decode()


def test_the_patient_page_shows_each_flags_history(
    patient: Patient, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    flag = raise_flag(patient)
    staff["coordinator"].first_name, staff["coordinator"].last_name = "Cora", "Coordinator"
    staff["coordinator"].save()
    client = client_for(staff["coordinator"])
    act(client, flag, "acknowledge", note="Called her, safety plan reviewed")
    act(client_for(staff["physician"]), flag, "resolve", outcome="Seen in clinic, safe")
    flag.refresh_from_db()
    html = client.get(f"/patients/{patient.pk}/").content.decode()
    history = html[html.index(f'id="patient-flag-{flag.pk}"') :]
    history = history[: history.index("</li>")]
    assert "Resolved" in history
    assert "<dt>Raised</dt>" in history
    assert f"{flag.raised_at:%-d %b %Y %H:%M}</time>: {ITEM9}" in history
    assert re.search(
        r"<dt>Acknowledged</dt><dd>by Cora Coordinator, .*Called her, safety plan", history
    )
    resolver = staff["physician"].get_full_name() or staff["physician"].username
    assert re.search(rf"<dt>Resolved</dt><dd>by {resolver}, .*Seen in clinic, safe", history)


def banner(html: str) -> str | None:
    main = html[html.index("<main") :]
    main = main[main.index(">") + 1 :].lstrip()
    return (
        main[: main.index("</section>")]
        if main.startswith('<section class="urgent-banner"')
        else None
    )


def test_a_banner_tops_the_patient_page_until_the_urgent_flag_is_resolved(
    patient: Patient, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["physician"])
    url = f"/patients/{patient.pk}/"
    raise_flag(patient, "warning", "Pain up by 3 points")
    assert banner(client.get(url).content.decode()) is None  # a warning: no banner
    flag = raise_flag(patient)
    top = banner(client.get(url).content.decode())
    assert top is not None
    assert '<h2 id="urgent-banner-heading">Urgent: Alice Adams has an unresolved urgent flag' in top
    assert ITEM9 in top
    assert "Nobody has acknowledged it yet." in top
    assert f'href="/flags/?show=unresolved#flag-{flag.pk}"' in top
    act(client, flag, "acknowledge", note="Called her")
    top = banner(client.get(url).content.decode())
    assert top is not None
    assert "Called her. Not resolved yet." in top
    act(client, flag, "resolve", outcome="Seen in clinic, safe")
    assert banner(client.get(url).content.decode()) is None


def test_the_workspace_lists_patients_with_an_unresolved_urgent_flag_first(
    clinic: Clinic, patient: Patient, staff: dict[str, User], client_for
) -> None:  # type: ignore[no-untyped-def]
    zed = on_team(register(clinic, "T-9", "Zed", "Zulu"), staff)
    with_history(zed, staff, early_conventional, 45)
    client = client_for(staff["physical_therapist"])

    def my_patients() -> str:
        html = client.get("/my/").content.decode()
        return html[html.index('id="patients-heading"') :]

    assert names(my_patients())[:2] == ["Adams, Alice", "Zulu, Zed"]
    flag = raise_flag(zed)
    act(client_for(staff["coordinator"]), flag, "acknowledge", note="Called him")
    rows = my_patients()
    assert names(rows)[:2] == ["Zulu, Zed", "Adams, Alice"]
    assert ITEM9 in rows[: rows.index("Adams, Alice")]
    act(client_for(staff["coordinator"]), flag, "resolve", outcome="Seen, safe")
    assert names(my_patients())[:2] == ["Adams, Alice", "Zulu, Zed"]
