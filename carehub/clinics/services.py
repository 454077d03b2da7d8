import math
from datetime import datetime
from typing import Any

from django.db import transaction

from carehub.accounts.models import User
from carehub.clinics.models import Clinic, ClinicThreshold
from carehub.clinics.selectors import threshold_specs
from carehub.core import clock
from carehub.core.exceptions import InvalidInput, NotFound

SOURCE_MAX_LENGTH = 200
NOTE_MAX_LENGTH = 2000


@transaction.atomic
def clinic_create(
    *,
    name: str,
    slug: str,
    time_zone: str = "UTC",
    phone: str = "",
    sandbox: bool = False,
    test_clock_start: datetime | None = None,
) -> Clinic:
    """A production clinic, or a sandbox (ADR 0024) whose test clock starts at
    `test_clock_start` (now, to the second, by default). Which of the two is fixed here for
    good: nothing turns a production clinic into a sandbox or back (a trigger refuses it)."""
    if test_clock_start is not None and not sandbox:
        raise InvalidInput("Only a sandbox clinic has a test clock.", extra={"field": "sandbox"})
    start = None
    if sandbox:
        start = test_clock_start or clock.now().replace(microsecond=0)
        if start.tzinfo is None:
            raise InvalidInput(
                "The test clock's start needs a time zone.", extra={"field": "test_clock_start"}
            )
    clinic = Clinic(
        name=name,
        slug=slug,
        time_zone=time_zone,
        phone=phone,
        is_sandbox=sandbox,
        test_clock_at=start,
    )
    clinic.full_clean()
    clinic.save()
    return clinic


def _value_like(default: Any, value: Any) -> Any:
    """The value, if it has the default's type (a number, true/false or text)."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise InvalidInput("Give true or false.", extra={"field": "value"})
        return value
    if isinstance(default, int | float):
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise InvalidInput("Give a number.", extra={"field": "value"})
        return value
    if not isinstance(value, str) or not value.strip() or len(value) > SOURCE_MAX_LENGTH:
        raise InvalidInput(
            f"Give a text of 1 to {SOURCE_MAX_LENGTH} characters.", extra={"field": "value"}
        )
    return value.strip()


@transaction.atomic
def threshold_set(
    *,
    clinic: Clinic,
    pathway_key: str,
    name: str,
    value: Any,
    source: str,
    note: str = "",
    user: User | None = None,
) -> ClinicThreshold:
    """Set the clinic's value for a pathway threshold, with where the number comes from (e.g.
    "ASRA 2020"). The value has the type of the definition's default. Decisions from now on read
    it; steps already logged keep the value and source they read."""
    spec = threshold_specs().get((pathway_key, name))
    if spec is None:
        raise NotFound("No such pathway threshold.")
    value = _value_like(spec.default, value)
    source = source.strip() if isinstance(source, str) else ""
    if not source or len(source) > SOURCE_MAX_LENGTH:
        raise InvalidInput(
            f"Name the source of the value (1 to {SOURCE_MAX_LENGTH} characters).",
            extra={"field": "source"},
        )
    if not isinstance(note, str) or len(note) > NOTE_MAX_LENGTH:
        raise InvalidInput(
            f"A note is text of at most {NOTE_MAX_LENGTH} characters.", extra={"field": "note"}
        )
    if user is not None and user.clinic_id != clinic.pk:
        raise InvalidInput("Staff set their own clinic's thresholds.", extra={"field": "user"})
    row, _ = ClinicThreshold.objects.update_or_create(
        clinic=clinic,
        pathway_key=pathway_key,
        name=name,
        defaults={"value": value, "source": source, "note": note.strip(), "updated_by": user},
    )
    return row
