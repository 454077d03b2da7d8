"""The caseload's "overdue or missed check-ins" test reads the partial index of check-ins that
need attention (a few rows per patient) instead of every check-in the clinic ever had."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.db.models import Exists
from django.utils import timezone

from carehub.patients.models import Patient
from carehub.web.selectors import _overdue_checkins

pytestmark = pytest.mark.django_db


def test_the_overdue_check_in_test_uses_the_attention_index() -> None:
    query = Patient.objects.filter(Exists(_overdue_checkins(timezone.now()))).values("pk")
    sql, params = query.query.sql_with_params()
    with transaction.atomic(), connection.cursor() as cursor:
        # An empty test table would be read sequentially anyway: ask which index it can use.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "checkin_needs_attention" in plan, plan
