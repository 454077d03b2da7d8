"""API tokens: obtained with a username and password, stored as a digest only, revocable."""

from __future__ import annotations

import pytest
from knox.models import AuthToken
from rest_framework.test import APIClient

from carehub.accounts.models import User
from tests.api.conftest import PASSWORD, assert_problem

pytestmark = pytest.mark.django_db
URL = "/api/v1/auth/token"


def obtain(username: str, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    return APIClient().post(URL, {"username": username, "password": password}, format="json")


def test_token_is_issued_for_a_valid_login_and_authenticates(staff: dict[str, User]) -> None:
    response = obtain("coordinator")
    assert response.status_code == 201
    token = response.json()["token"]
    assert response.json()["expires_at"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/patients").status_code == 200


def test_token_is_not_stored_in_plain_text(staff: dict[str, User]) -> None:
    token = obtain("physician").json()["token"]
    [row] = AuthToken.objects.filter(user=staff["physician"])
    stored = [str(value) for value in AuthToken.objects.values_list().get()]
    assert token not in stored
    assert row.digest != token
    assert len(row.token_key) < len(token)  # only a short lookup prefix is kept


def test_wrong_password_is_a_401_problem(staff: dict[str, User]) -> None:
    response = obtain("coordinator", "not-the-password")
    assert_problem(response, 401, "authentication_failed")
    assert not AuthToken.objects.exists()


def test_missing_fields_are_a_400_problem(staff: dict[str, User]) -> None:
    response = APIClient().post(URL, {"username": "coordinator"}, format="json")
    body = assert_problem(response, 400, "invalid_input")
    assert "password" in body["errors"]


def test_revoked_token_is_refused(staff: dict[str, User]) -> None:
    token = obtain("coordinator").json()["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.delete(URL).status_code == 204
    assert not AuthToken.objects.exists()
    assert_problem(client.get("/api/v1/patients"), 401, "authentication_failed")


def test_revoking_without_a_token_is_refused(client_for, staff) -> None:  # type: ignore[no-untyped-def]
    assert_problem(APIClient().delete(URL), 401, "not_authenticated")
    # A session (force-authenticated here) has no token to revoke.
    body = assert_problem(client_for(staff["coordinator"]).delete(URL), 400, "invalid_input")
    assert "Authorization" in body["errors"]


def obtain_from(username: str, password: str, ip: str):  # type: ignore[no-untyped-def]
    return APIClient().post(
        URL, {"username": username, "password": password}, format="json", REMOTE_ADDR=ip
    )


def test_five_failures_lock_the_pair_with_a_429_problem(staff: dict[str, User]) -> None:
    for _ in range(4):
        assert_problem(
            obtain_from("coordinator", "wrong", "10.1.1.1"), 401, "authentication_failed"
        )
    locked = obtain_from("coordinator", "wrong", "10.1.1.1")  # the fifth failure locks at once
    body = assert_problem(locked, 429, "locked_out")
    assert locked["Retry-After"] == str(30 * 60)
    assert body["retry_after"] == 30 * 60
    # The right password is refused while the lock holds, and no token is issued.
    refused = obtain_from("coordinator", PASSWORD, "10.1.1.1")
    assert_problem(refused, 429, "locked_out")
    assert int(refused["Retry-After"]) > 0
    assert not AuthToken.objects.exists()
    # Only that (username, IP) pair is locked.
    assert obtain_from("coordinator", PASSWORD, "10.1.1.2").status_code == 201
    assert obtain_from("physician", PASSWORD, "10.1.1.1").status_code == 201
