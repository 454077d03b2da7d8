"""The web login and logout pages: role-based landing, django-axes lockout, session rotation,
session limits."""

from __future__ import annotations

import pytest
import time_machine
from django.conf import settings
from django.test import Client

from carehub.accounts.models import User
from carehub.core import clock
from tests.web.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def log_in(client: Client, username: str, password: str = PASSWORD, **extra: str):  # type: ignore[no-untyped-def]
    return client.post("/login/", {"username": username, "password": password, **extra})


def test_login_url_is_the_web_login_page() -> None:
    assert settings.LOGIN_URL == "web:login"
    response = Client().get("/caseload/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/caseload/"


def test_the_login_page_has_labelled_fields() -> None:
    html = Client().get("/login/").content.decode()
    assert '<label for="id_username">Username</label>' in html
    assert '<label for="id_password">Password</label>' in html
    assert 'autocomplete="current-password"' in html


@pytest.mark.parametrize(
    ("role", "landing"),
    [
        ("coordinator", "/caseload/"),
        ("physician", "/caseload/"),
        ("clinic_admin", "/caseload/"),
        ("physical_therapist", "/my/"),
        ("psychologist", "/my/"),
        ("pharmacist", "/my/"),
    ],
)
def test_staff_land_on_their_start_page(staff: dict[str, User], role: str, landing: str) -> None:
    response = log_in(Client(), role)
    assert response.status_code == 302
    assert response["Location"] == landing


def test_a_patient_lands_on_their_portal_whatever_next_says(patient_user: User) -> None:
    response = log_in(Client(), "alice", next="/caseload/")
    assert response["Location"] == "/me/"


def test_next_is_followed_for_staff_when_it_is_local(staff: dict[str, User]) -> None:
    assert log_in(Client(), "coordinator", next="/flags/")["Location"] == "/flags/"
    assert log_in(Client(), "coordinator", next="https://evil.example/")["Location"] == (
        "/caseload/"
    )


def test_login_rotates_the_session_key(staff: dict[str, User]) -> None:
    client = Client()
    client.get("/login/")
    session = client.session
    session["probe"] = 1
    session.save()
    before = session.session_key
    log_in(client, "coordinator")
    assert client.session.session_key != before
    assert client.session["_auth_user_id"] == str(staff["coordinator"].pk)


def test_a_wrong_password_shows_an_error_and_logs_nobody_in(staff: dict[str, User]) -> None:
    client = Client()
    response = log_in(client, "coordinator", "wrong")
    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content
    assert "_auth_user_id" not in client.session


def test_five_failures_lock_the_username_and_ip_pair_with_a_clear_page(
    staff: dict[str, User],
) -> None:
    for _ in range(4):
        failed = Client().post(
            "/login/", {"username": "coordinator", "password": "wrong"}, REMOTE_ADDR="10.1.1.1"
        )
        assert failed.status_code == 200
    locked = Client().post(
        "/login/", {"username": "coordinator", "password": "wrong"}, REMOTE_ADDR="10.1.1.1"
    )
    assert locked.status_code == 429
    assert "Login locked: too many login attempts" in locked.content.decode()
    assert int(locked["Retry-After"]) == settings.AXES_COOLOFF_TIME.total_seconds()
    right = Client()
    refused = right.post(
        "/login/", {"username": "coordinator", "password": PASSWORD}, REMOTE_ADDR="10.1.1.1"
    )
    assert refused.status_code == 429
    assert "_auth_user_id" not in right.session
    # Another address is not locked.
    elsewhere = Client().post(
        "/login/", {"username": "coordinator", "password": PASSWORD}, REMOTE_ADDR="10.1.1.2"
    )
    assert elsewhere.status_code == 302


def test_logout_needs_a_post(staff: dict[str, User], client_for) -> None:  # type: ignore[no-untyped-def]
    client = client_for(staff["coordinator"])
    page = client.get("/logout/")
    assert page.status_code == 200
    assert "_auth_user_id" in client.session
    done = client.post("/logout/")
    assert done.status_code == 200
    assert b"You are logged out" in done.content
    assert "_auth_user_id" not in client.session
    assert client.get("/caseload/").status_code == 302


def test_an_idle_session_goes_back_to_the_web_login(staff: dict[str, User]) -> None:
    client = Client()
    with time_machine.travel(clock.now(), tick=False) as traveller:
        log_in(client, "coordinator")
        assert client.get("/caseload/").status_code == 200
        traveller.shift(settings.SESSION_IDLE_TIMEOUT_SECONDS + 1)
        response = client.get("/caseload/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_an_expired_session_sends_htmx_to_the_login_page_not_into_a_row(
    staff: dict[str, User],
) -> None:
    client = Client()
    with time_machine.travel(clock.now(), tick=False) as traveller:
        log_in(client, "coordinator")
        traveller.shift(settings.SESSION_IDLE_TIMEOUT_SECONDS + 1)
        response = client.post("/flags/1/resolve", {"form_key": "a" * 32}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert response["HX-Redirect"].startswith("/login/?next=")
    assert response.content == b""
