"""Staff sessions: a new key at login, 15 minutes idle and 12 hours in all, safe cookies."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.conf import settings
from django.contrib.sessions.models import Session
from django.test import Client

from carehub.accounts.models import User

pytestmark = pytest.mark.django_db
PASSWORD = "a-long-staff-password"
START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


@pytest.fixture
def staff() -> User:
    return User.objects.create_user("carol", password=PASSWORD, is_staff=True)


def logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_session_settings() -> None:
    assert settings.SESSION_IDLE_TIMEOUT_SECONDS == 900
    assert settings.SESSION_ABSOLUTE_TIMEOUT_SECONDS == 43200
    assert settings.SESSION_COOKIE_AGE == 43200
    assert settings.SESSION_COOKIE_HTTPONLY is True
    assert settings.SESSION_COOKIE_SAMESITE == "Lax"
    assert settings.CSRF_COOKIE_HTTPONLY is True


def test_logging_in_gives_the_session_a_new_key(staff: User) -> None:
    client = Client()
    before = client.session  # an anonymous session, as a visitor would have one
    before["visited"] = True
    before.save()
    old_key = before.session_key

    response = client.post("/admin/login/", {"username": "carol", "password": PASSWORD})

    assert response.status_code == 302
    new_key = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert new_key != old_key
    assert not Session.objects.filter(session_key=old_key).exists()
    assert logged_in(client)
    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert int(cookie["max-age"]) == 43200


def test_fifteen_minutes_without_a_request_log_out_to_the_login_page(staff: User) -> None:
    client = Client()
    with time_machine.travel(START, tick=False) as traveller:
        client.force_login(staff)
        traveller.shift(timedelta(minutes=14))
        assert client.get("/admin/").status_code == 200
        traveller.shift(timedelta(minutes=14))  # 28 minutes after login, 14 idle: still in
        assert client.get("/admin/").status_code == 200
        traveller.shift(timedelta(minutes=15, seconds=1))
        response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/admin/"
    assert not logged_in(client)


def test_activity_is_stamped_at_most_once_a_minute(staff: User) -> None:
    """Pages in quick succession do not each rewrite the session row; a request a minute or
    more after the last stamp does, and that stamp is what the idle limit counts from."""
    client = Client()
    with time_machine.travel(START, tick=False) as traveller:
        client.force_login(staff)
        key = client.cookies[settings.SESSION_COOKIE_NAME].value
        saved = Session.objects.get(session_key=key).expire_date
        traveller.shift(timedelta(seconds=30))
        assert client.get("/admin/").status_code == 200
        assert Session.objects.get(session_key=key).expire_date == saved  # not rewritten
        traveller.shift(timedelta(seconds=31))  # 61 s after the last stamp
        assert client.get("/admin/").status_code == 200
        assert Session.objects.get(session_key=key).expire_date > saved
        traveller.shift(timedelta(minutes=15))  # 15 min after that stamp: still in
        assert client.get("/admin/").status_code == 200
        traveller.shift(timedelta(minutes=15, seconds=1))
        assert client.get("/admin/").status_code == 302


def test_twelve_hours_after_login_the_session_ends_however_active(staff: User) -> None:
    client = Client()
    with time_machine.travel(START, tick=False) as traveller:
        client.force_login(staff)
        for _ in range(12 * 6 - 1):  # a request every 10 minutes until 11 h 50 min
            traveller.shift(timedelta(minutes=10))
            assert client.get("/admin/").status_code == 200
        traveller.shift(timedelta(minutes=10, seconds=1))  # 12 h and 1 s after login
        response = client.get("/admin/accounts/user/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/admin/accounts/user/"
    assert not logged_in(client)


def test_an_expired_api_request_gets_401_not_a_redirect(staff: User) -> None:
    client = Client()
    with time_machine.travel(START, tick=False) as traveller:
        client.force_login(staff)
        traveller.shift(timedelta(minutes=16))
        response = client.get("/api/anything")
    assert response.status_code == 401
    assert response.json() == {"detail": "Session expired."}
    assert not logged_in(client)

    with time_machine.travel(START, tick=False) as traveller:
        client.force_login(staff)
        traveller.shift(timedelta(minutes=16))
        response = client.get("/admin/", headers={"Accept": "application/json"})
    assert response.status_code == 401


def test_anonymous_visitors_are_not_timed() -> None:
    client = Client()
    with time_machine.travel(START, tick=False) as traveller:
        assert client.get("/admin/login/").status_code == 200
        traveller.shift(timedelta(hours=13))
        assert client.get("/admin/login/").status_code == 200
