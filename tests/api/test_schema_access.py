"""`API_SCHEMA_PUBLIC`: the schema and docs are public in development and tests, and only for
signed-in staff under production settings (anyone else: 404, as if there were none)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client
from rest_framework.test import APIClient

from carehub.accounts.models import User
from carehub.api.services import api_token_issue
from carehub.patients.models import Patient
from carehub.patients.services import patient_account_create
from tests.api.conftest import assert_problem

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = "/api/schema/?format=json"
DOCS = "/api/docs/"


@pytest.fixture
def private(settings) -> None:  # type: ignore[no-untyped-def]
    settings.API_SCHEMA_PUBLIC = False


def test_public_schema_and_docs_answer_anyone(settings) -> None:  # type: ignore[no-untyped-def]
    settings.API_SCHEMA_PUBLIC = True
    assert APIClient().get(SCHEMA).status_code == 200
    assert APIClient().get(DOCS).status_code == 200


@pytest.mark.usefixtures("private")
def test_private_schema_and_docs_are_not_found_for_anonymous_visitors() -> None:
    for url in (SCHEMA, "/api/schema/", DOCS):  # JSON, YAML and the Swagger UI's page
        assert_problem(APIClient().get(url), 404, "not_found")


@pytest.mark.usefixtures("private")
def test_private_schema_is_not_found_for_a_patient(patient: Patient) -> None:
    account = patient_account_create(patient=patient, username="schema-pat", password=None)
    client = Client()
    client.force_login(account)
    for url in (SCHEMA, DOCS):
        assert_problem(client.get(url), 404, "not_found")


@pytest.mark.usefixtures("private")
def test_private_schema_and_docs_answer_signed_in_staff(staff: dict[str, User]) -> None:
    token, _ = api_token_issue(user=staff["physician"])
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    schema = api.get(SCHEMA)
    assert schema.status_code == 200
    assert "/api/v1/patients" in schema.json()["paths"]
    browser = Client()
    browser.force_login(staff["coordinator"])
    assert browser.get(DOCS).status_code == 200
    assert browser.get(SCHEMA).status_code == 200


def test_production_settings_keep_the_schema_private_unless_asked() -> None:
    code = "import django\ndjango.setup()\nfrom django.conf import settings\n"
    code += "print(settings.API_SCHEMA_PUBLIC)\n"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "carehub.example",
    }
    env.pop("API_SCHEMA_PUBLIC", None)
    outputs = []
    for value in (None, "true"):
        if value is not None:
            env["API_SCHEMA_PUBLIC"] = value
        result = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout.strip())
    assert outputs == ["False", "True"]
