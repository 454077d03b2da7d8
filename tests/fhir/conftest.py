"""The FHIR endpoints reuse the API's fixtures (two clinics, staff of every role, patients)."""

from tests.api.conftest import *  # noqa: F403
