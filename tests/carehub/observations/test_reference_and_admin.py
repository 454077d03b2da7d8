"""Reference data carries its sources and agrees with the engine's vocabulary; the admin."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from carehub.accounts.models import Role, User
from carehub.accounts.services import staff_create
from carehub.instruments.catalogue import score_entries
from carehub.observations import reference, services
from carehub.observations.models import Observation
from carehub.patients.models import Patient
from tests.carehub.observations.conftest import NOW
from workflows.facts import INSTRUMENTS, PROCEDURES


def test_instruments_and_procedures_match_the_fact_vocabulary() -> None:
    assert set(score_entries()) == set(INSTRUMENTS)
    assert set(reference.PROCEDURES) == set(PROCEDURES)


def test_every_reference_value_names_its_source() -> None:
    values: list[object] = [
        *reference.PROCEDURES.values(),
        *reference.MME_FACTORS.values(),
        *reference.FAILED_TREATMENT_REASONS.values(),
        *reference.TREATMENT_CLASSES.values(),
        *reference.PSYCH_EVALUATION_OUTCOMES.values(),
        *reference.SESSION_DISCIPLINES.values(),
        *reference.STATUSES.values(),
    ]
    for value in values:
        assert value.source.strip(), value  # type: ignore[attr-defined]
    assert all(i.mcid_source.strip() for i in score_entries().values())
    assert all(reason.strip() for reason in reference.OPIOIDS_WITHOUT_MME_FACTOR.values())
    assert reference.BENZODIAZEPINES_SOURCE


def test_cdc_mme_factors() -> None:
    factors = {drug: f.factor for drug, f in reference.MME_FACTORS.items()}
    assert factors == {
        "codeine": 0.15,
        "fentanyl_transdermal": 2.4,
        "hydrocodone": 1,
        "hydromorphone": 5,
        "methadone": 4.7,
        "morphine": 1,
        "oxycodone": 1.5,
        "oxymorphone": 3,
        "tapentadol": 0.4,
        "tramadol": 0.2,
    }
    assert reference.MME_FACTORS["fentanyl_transdermal"].unit == "mcg/h"
    assert {f.source for f in reference.MME_FACTORS.values()} == {
        "CDC 2022 Clinical Practice Guideline"
    }


def test_instrument_directions_ranges_and_mcids() -> None:
    rows = {
        code: (
            i.minimum,
            i.maximum,
            i.definition.direction,
            i.mcid.points if i.mcid else None,
            i.mcid.percent if i.mcid else None,
        )
        for code, i in score_entries().items()
    }
    assert rows == {
        "peg": (0, 10, "lower_is_better", None, 30),
        "nrs": (0, 10, "lower_is_better", 2, 30),
        "phq9": (0, 27, "lower_is_better", 5, None),
        "gad7": (0, 21, "lower_is_better", 4, None),
        "pgic": (1, 7, "categorical", None, None),
        "psfs": (0, 10, "higher_is_better", 2, None),
        "odi": (0, 100, "lower_is_better", 10, None),
    }
    pgic = score_entries()["pgic"]
    assert pgic.mcid is not None
    assert pgic.mcid.at_most == 2
    assert score_entries()["odi"].staff_entry_only
    assert score_entries()["odi"].item_keys == ()


@pytest.mark.django_db
def test_admin_lists_searches_and_never_edits(patient: Patient, other_patient: Patient) -> None:
    admin = User.objects.create_superuser(username="root", password="pw-for-tests")
    mine = services.score_record(patient=patient, instrument="nrs", score=6, observed_at=NOW)
    services.score_record(patient=other_patient, instrument="nrs", score=3, observed_at=NOW)
    client = Client()
    client.force_login(admin)

    listing = client.get("/admin/observations/observation/", {"q": "RV-0001", "kind": "score"})
    assert listing.status_code == 200
    assert listing.context["cl"].result_count == 1

    page = client.get(f"/admin/observations/observation/{mine.pk}/change/")
    assert page.status_code == 200  # view only
    client.post(f"/admin/observations/observation/{mine.pk}/change/", {"value_number": 1})
    assert client.get(f"/admin/observations/observation/{mine.pk}/delete/").status_code == 403
    mine.refresh_from_db()
    assert mine.value_number == 6


@pytest.mark.django_db
def test_admin_adds_through_the_services_and_records_who(patient: Patient) -> None:
    admin = staff_create(
        clinic=patient.clinic, username="root", role=Role.CLINIC_ADMIN, password="pw-for-tests",
        is_staff=True,
    )  # fmt: skip
    admin.is_superuser = True
    admin.save(update_fields=["is_superuser"])
    client = Client()
    client.force_login(admin)
    form = {
        "patient": patient.pk,
        "kind": "score",
        "code": "phq9",
        "value_number": "30",
        "value_text": "",
        "value_bool": "unknown",
        "data": "{}",
        "observed_at_0": "2026-03-01",
        "observed_at_1": "10:00:00",
        "source": "staff",
    }
    refused = client.post("/admin/observations/observation/add/", form)
    assert refused.status_code == 200
    # Scored like every door: a PHQ-9 total alone cannot be checked for red flags.
    assert "phq9 item9 is checked for red flags" in refused.content.decode()
    items = {f"item{n}": 1 for n in range(1, 10)}
    refused = client.post(
        "/admin/observations/observation/add/", {**form, "data": json.dumps({"items": items})}
    )
    assert "the item answers give 9, not 30" in refused.content.decode()
    assert not Observation.objects.exists()

    client.post(
        "/admin/observations/observation/add/",
        {**form, "value_number": "9", "data": json.dumps({"items": items})},
    )
    added = Observation.objects.get()
    assert (added.value_number, added.recorded_by, added.data["band"]) == (9, admin, "mild")
