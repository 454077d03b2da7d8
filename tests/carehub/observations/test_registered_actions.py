"""Observations are the clinical record: acting on what is recorded belongs to the apps above it,
which register their handlers when Django loads them (docs/adr/0032). A red flag raises the
worklist flag, then the care team's alerts; the roles that may log a session come from the
published pathway definitions. With nothing registered, nothing is recorded unchecked."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from carehub.accounts.models import User
from carehub.messaging.models import Message
from carehub.observations import scores, services
from carehub.observations.models import Observation
from carehub.patients.models import Patient
from carehub.worklists.models import Flag
from tests.carehub.observations.conftest import NOW

pytestmark = pytest.mark.django_db

PHQ9_ITEM9 = {f"item{n}": 0 for n in range(1, 9)} | {"item9": 2}


def test_worklists_and_messaging_register_the_red_flag_handlers_in_that_order() -> None:
    assert list(scores.RED_FLAG_HANDLERS) == ["flag", "alert"]


def test_a_red_flag_with_no_handler_registered_is_refused_and_nothing_recorded(
    patient: Patient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scores, "RED_FLAG_HANDLERS", {})
    with pytest.raises(ImproperlyConfigured, match="would alert nobody"):
        scores.score_observation_record(
            patient=patient, instrument="phq9", items=PHQ9_ITEM9, observed_at=NOW,
            source="patient",
        )  # fmt: skip
    assert not Observation.objects.filter(patient=patient).exists()
    assert not Flag.objects.filter(patient=patient).exists()
    assert not Message.objects.filter(patient=patient).exists()


def test_answers_without_red_flags_need_no_handler(
    patient: Patient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scores, "RED_FLAG_HANDLERS", {})
    recorded = scores.score_observation_record(
        patient=patient, instrument="phq9", items=PHQ9_ITEM9 | {"item9": 0}, observed_at=NOW,
        source="patient",
    )  # fmt: skip
    assert recorded.observation is not None
    assert recorded.red_flags == []


def test_a_session_is_refused_when_no_lookup_of_its_roles_is_registered(
    patient: Patient, physio: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert services.session_roles("pt") == {"physical_therapist"}  # registered by pathways
    monkeypatch.setattr(services, "_session_roles", [])
    with pytest.raises(ImproperlyConfigured):
        services.session_record(
            patient=patient, discipline="pt", attended=True, observed_at=NOW, recorded_by=physio
        )
    assert not Observation.objects.filter(patient=patient).exists()
