"""Content Security Policy: scripts and styles from our origin only, on every response."""

import pytest
from django.test import Client

from carehub.accounts.models import User
from tests.carehub.checkins.test_checkins import (  # noqa: F401 (fixtures)
    afternoon_in_new_york,
    enrolment,
    open_one,
)

pytestmark = pytest.mark.django_db

EXPECTED = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "frame-ancestors": "'none'",
    "form-action": "'self'",
    "base-uri": "'none'",
    "object-src": "'none'",
}


def directives(header: str) -> dict[str, str]:
    parts = (part.strip().split(" ", 1) for part in header.split(";") if part.strip())
    return dict(parts)


def test_responses_carry_the_strict_policy() -> None:
    response = Client().get("/admin/login/")
    assert response.status_code == 200
    assert directives(response["Content-Security-Policy"]) == EXPECTED


def test_the_admin_still_renders_under_the_policy() -> None:
    admin = User.objects.create_superuser("root", password="a-long-admin-password")
    client = Client()
    client.force_login(admin)
    for url in ("/admin/", "/admin/accounts/user/", f"/admin/accounts/user/{admin.pk}/change/"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert "Content-Security-Policy" in response
        assert b"<script>" not in response.content, url


def test_the_checkin_page_renders_with_its_stylesheet_and_no_inline_style(enrolment) -> None:  # noqa: F811
    _checkin, token = open_one(enrolment)
    client = Client()
    page = client.get(f"/c/{token}")
    assert page.status_code == 200
    assert directives(page["Content-Security-Policy"]) == EXPECTED
    assert b"<style" not in page.content
    assert b"style=" not in page.content
    assert b'<link rel="stylesheet" href="/static/checkins/checkin.css">' in page.content
    stylesheet = client.get("/static/checkins/checkin.css")
    assert stylesheet.status_code == 200
    assert b".crisis" in b"".join(stylesheet.streaming_content)
