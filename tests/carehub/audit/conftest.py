"""The API fixtures (two clinics, staff of every role, an enrolled patient, a proposal)."""

from tests.api.conftest import (  # noqa: F401  (fixtures)
    client_for,
    clinic,
    enrolment,
    foreign_enrolment,
    other_clinic,
    outsider,
    patient,
    proposal,
    published_examples,
    staff,
)
