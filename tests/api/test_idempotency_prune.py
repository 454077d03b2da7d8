"""Retry keys of recording requests are forgotten after API_IDEMPOTENCY_KEY_HOURS (hourly
task); what they recorded stays."""

from __future__ import annotations

from datetime import timedelta

import pytest

from carehub.accounts.models import User
from carehub.api.models import IdempotentRequest
from carehub.api.services import idempotent_create
from carehub.api.tasks import idempotent_requests_prune_task
from carehub.clinics.models import Clinic
from carehub.core import clock
from carehub.patients.models import Patient
from tests.api.conftest import register

pytestmark = pytest.mark.django_db


def test_old_keys_are_forgotten_and_the_rows_stay(
    clinic: Clinic, staff: dict[str, User], settings
) -> None:  # type: ignore[no-untyped-def]
    settings.API_IDEMPOTENCY_KEY_HOURS = 24
    user = staff["coordinator"]
    old, _ = idempotent_create(
        user=user, key="k-old", operation="test", model=Patient,
        create=lambda: register(clinic, "K-1"),
    )  # fmt: skip
    idempotent_create(
        user=user, key="k-new", operation="test", model=Patient,
        create=lambda: register(clinic, "K-2"),
    )  # fmt: skip
    IdempotentRequest.objects.filter(key="k-old").update(
        created_at=clock.now() - timedelta(hours=25)
    )

    assert idempotent_requests_prune_task() == 1
    assert list(IdempotentRequest.objects.values_list("key", flat=True)) == ["k-new"]
    assert Patient.objects.filter(pk=old.pk).exists()
    # The forgotten key is a new request now; the kept one still replays.
    again, replayed = idempotent_create(
        user=user, key="k-new", operation="test", model=Patient,
        create=lambda: register(clinic, "K-3"),
    )  # fmt: skip
    assert replayed
    assert again.mrn == "K-2"
