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
