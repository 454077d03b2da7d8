"""A password change revokes the user's API tokens, as it ends their other web sessions."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.test import Client
from knox.models import AuthToken
from rest_framework.test import APIClient

from carehub.accounts.models import Role, User
from carehub.accounts.services import staff_create, user_password_change
from carehub.api.services import api_token_issue
from carehub.clinics.models import Clinic
from carehub.clinics.services import clinic_create
from carehub.core.exceptions import InvalidInput

pytestmark = pytest.mark.django_db

OLD = "an-old-long-passphrase-1"
NEW = "a-new-long-passphrase-2"


@pytest.fixture
def clinic() -> Clinic:
    return clinic_create(name="Token Clinic", slug="tok", time_zone="Europe/London")


@pytest.fixture
def coordinator(clinic: Clinic) -> User:
    return staff_create(clinic=clinic, username="tok-coord", role=Role.COORDINATOR, password=OLD)


def api(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def status_with(token: str) -> int:
    return api(token).get("/api/v1/patients").status_code


def test_changing_the_password_through_the_service_revokes_every_token(
    clinic: Clinic, coordinator: User
) -> None:
    first, _ = api_token_issue(user=coordinator)
    second, _ = api_token_issue(user=coordinator)
    colleague = staff_create(clinic=clinic, username="tok-other", role=Role.PHYSICIAN, password=OLD)
    theirs, _ = api_token_issue(user=colleague)
    assert status_with(first) == 200
    user_password_change(user=coordinator, password=NEW)
    assert status_with(first) == 401
    assert status_with(second) == 401
    assert not AuthToken.objects.filter(user=coordinator).exists()
    assert status_with(theirs) == 200  # another user's tokens are theirs
    fresh, _ = api_token_issue(user=coordinator)
    assert status_with(fresh) == 200


def test_a_password_the_validators_refuse_changes_nothing(coordinator: User) -> None:
    token, _ = api_token_issue(user=coordinator)
    with pytest.raises(InvalidInput):
        user_password_change(user=coordinator, password="short")
    assert status_with(token) == 200
    coordinator.refresh_from_db()
    assert coordinator.check_password(OLD)


def test_changing_the_password_in_the_admin_revokes_every_token(coordinator: User) -> None:
    token, _ = api_token_issue(user=coordinator)
    admin = User.objects.create_superuser("tok-root", password="a-long-admin-passphrase")
    browser = Client()
    browser.force_login(admin)
    response = browser.post(
        f"/admin/accounts/user/{coordinator.pk}/password/",
        {"password1": NEW, "password2": NEW, "usable_password": "true"},
    )
    assert response.status_code == 302, response.content
    coordinator.refresh_from_db()
    assert coordinator.check_password(NEW)
    assert status_with(token) == 401


def test_changepassword_command_and_unusable_password_revoke_tokens(
    coordinator: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    token, _ = api_token_issue(user=coordinator)
    monkeypatch.setattr("getpass.getpass", lambda *args, **kwargs: NEW)
    call_command("changepassword", "tok-coord")
    assert status_with(token) == 401
    token, _ = api_token_issue(user=coordinator)
    coordinator.refresh_from_db()
    coordinator.set_unusable_password()
    coordinator.save()
    assert status_with(token) == 401


def test_saving_other_fields_or_a_login_that_rehashes_keeps_the_tokens(
    coordinator: User,
    settings,  # type: ignore[no-untyped-def]
) -> None:
    token, _ = api_token_issue(user=coordinator)
    coordinator.refresh_from_db()
    coordinator.first_name = "Renamed"
    coordinator.save()
    assert status_with(token) == 200
    # A login whose stored hash is not the preferred hasher's: Django re-saves the password.
    stored = User.objects.get(pk=coordinator.pk).password
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        *settings.PASSWORD_HASHERS,
    ]
    login = APIClient().post(
        "/api/v1/auth/token", {"username": "tok-coord", "password": OLD}, format="json"
    )
    assert login.status_code == 201
    rehashed = User.objects.get(pk=coordinator.pk).password
    assert rehashed != stored
    assert rehashed.startswith("pbkdf2_sha256$")
    assert status_with(token) == 200
    assert status_with(login.json()["token"]) == 200
