"""Login throttling (django-axes): 5 failures for one username from one IP lock that pair."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.conf import settings
from django.test import Client

from carehub.accounts.models import User

pytestmark = pytest.mark.django_db
LOGIN = "/admin/login/"
PASSWORD = "a-long-staff-password"


@pytest.fixture
def staff() -> tuple[User, User]:
    alice = User.objects.create_user("alice", password=PASSWORD, is_staff=True)
    bob = User.objects.create_user("bob", password=PASSWORD, is_staff=True)
    return alice, bob


def attempt(username: str, password: str, ip: str) -> int:
    response = Client().post(
        LOGIN, {"username": username, "password": password, "next": "/admin/"}, REMOTE_ADDR=ip
    )
    return response.status_code


def fail_five_times(username: str, ip: str) -> None:
    for _ in range(4):
        # The admin shows its form again (200) for a wrong password...
        assert attempt(username, "wrong", ip) == 200
    # ...and the fifth failure locks the pair at once.
    assert attempt(username, "wrong", ip) == 429


def test_the_settings_lock_a_username_and_ip_pair_after_five_failures() -> None:
    assert settings.AXES_FAILURE_LIMIT == 5
    assert settings.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"]]
    assert settings.AXES_COOLOFF_TIME.total_seconds() == 30 * 60
    assert settings.AXES_RESET_ON_SUCCESS is True
    assert settings.AUTHENTICATION_BACKENDS[0] == "axes.backends.AxesStandaloneBackend"
    assert settings.MIDDLEWARE[-1] == "axes.middleware.AxesMiddleware"


def test_the_sixth_attempt_is_refused_even_with_the_right_password(staff) -> None:
    fail_five_times("alice", "10.0.0.1")
    response = Client().post(
        LOGIN, {"username": "alice", "password": PASSWORD}, REMOTE_ADDR="10.0.0.1"
    )
    assert response.status_code == 429
    assert b"too many login attempts" in response.content
    assert "_auth_user_id" not in response.wsgi_request.session


def test_four_failures_then_the_right_password_logs_in_and_clears_the_count(staff) -> None:
    for _ in range(4):
        assert attempt("alice", "wrong", "10.0.0.1") == 200
    assert attempt("alice", PASSWORD, "10.0.0.1") == 302
    # The success reset the failures: four more do not lock.
    for _ in range(4):
        assert attempt("alice", "wrong", "10.0.0.1") == 200
    assert attempt("alice", PASSWORD, "10.0.0.1") == 302


def test_another_user_from_the_same_ip_is_not_locked(staff) -> None:
    fail_five_times("alice", "10.0.0.1")
    assert attempt("bob", PASSWORD, "10.0.0.1") == 302


def test_the_same_user_from_another_ip_is_not_locked(staff) -> None:
    fail_five_times("alice", "10.0.0.1")
    assert attempt("alice", PASSWORD, "10.0.0.2") == 302
    assert attempt("alice", PASSWORD, "10.0.0.1") == 429


def test_a_lock_expires_after_the_cool_off(staff) -> None:
    with time_machine.travel(datetime(2026, 3, 2, 9, 0, tzinfo=UTC), tick=False) as traveller:
        fail_five_times("alice", "10.0.0.1")
        assert attempt("alice", PASSWORD, "10.0.0.1") == 429
        traveller.shift(timedelta(minutes=29))
        assert attempt("alice", PASSWORD, "10.0.0.1") == 429
        # A refused attempt during the lock starts the cool-off again.
        traveller.shift(timedelta(minutes=30, seconds=1))
        assert attempt("alice", PASSWORD, "10.0.0.1") == 302


# --- password spraying: many usernames from one address -------------------------------------


def test_one_address_trying_many_usernames_is_refused_after_the_address_limit(staff) -> None:
    """40 usernames, one wrong password each, from one address: after
    AXES_ADDRESS_FAILURE_LIMIT failures the address is refused, even for a real user with the
    right password; another address is not."""
    assert settings.AXES_ADDRESS_FAILURE_LIMIT == 20
    statuses = [attempt(f"user{n}", "Winter2026!", "10.0.0.7") for n in range(40)]
    assert statuses[:19] == [200] * 19  # the form again: a wrong password
    assert set(statuses[20:]) == {429}
    assert attempt("alice", PASSWORD, "10.0.0.7") == 429
    assert attempt("alice", PASSWORD, "10.0.0.8") == 302  # another address logs in


def test_the_api_token_endpoint_refuses_spraying_too(staff) -> None:
    from rest_framework.test import APIClient

    client = APIClient(REMOTE_ADDR="10.0.0.9")
    for n in range(20):
        response = client.post(
            "/api/v1/auth/token", {"username": f"user{n}", "password": "x" * 12}, format="json"
        )
        assert response.status_code in (400, 401, 429)
    refused = client.post(
        "/api/v1/auth/token", {"username": "alice", "password": PASSWORD}, format="json"
    )
    assert refused.status_code == 429
    assert refused.json()["code"] == "locked_out"


def test_the_address_count_forgets_failures_older_than_the_cool_off(staff) -> None:
    start = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False):
        for n in range(19):
            assert attempt(f"user{n}", "wrong", "10.0.0.10") == 200
    with time_machine.travel(start + settings.AXES_COOLOFF_TIME + timedelta(minutes=1)):
        assert attempt("alice", PASSWORD, "10.0.0.10") == 302


def test_passwords_need_12_characters_and_not_a_common_one(staff) -> None:
    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError

    alice, _ = staff
    with pytest.raises(ValidationError, match="at least 12 characters"):
        validate_password("Tr0ub4dor&3", alice)
    with pytest.raises(ValidationError, match="too common"):
        validate_password("password1234", alice)
    validate_password("correct horse battery staple", alice)
