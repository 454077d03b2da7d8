"""Headless Chromium for browser tests, driven by Playwright for Python.

The tests drive the system's Chromium (Debian's `chromium` package; `CHROMIUM_PATH` names
another binary). On a machine without one, `make test` has Playwright download its own build
(`playwright install chromium`) and the tests use that; with neither, they fail with
instructions rather than being skipped."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from playwright.sync_api import BrowserContext

from carehub.accounts.models import User

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"

# Viewports: a current mid-size phone and a laptop.
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
DESKTOP = {"viewport": {"width": 1366, "height": 900}}


def chromium_path(managed: str) -> str:
    """The Chromium binary to drive: the system's, else Playwright's own build (`managed`, its
    expected path), else an error saying how to get one."""
    explicit = os.environ.get("CHROMIUM_PATH")
    if explicit:
        return explicit
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    if Path(managed).exists():
        return managed
    raise RuntimeError(
        "The browser tests need Chromium: `apt-get install chromium` (Debian/Ubuntu), "
        "`.venv/bin/python -m playwright install chromium`, or set CHROMIUM_PATH to a "
        "Chromium/Chrome binary."
    )


def session_cookie_for(user: User, live_server_url: str) -> dict[str, str | bool]:
    """A logged-in session for `user`, as the cookie a browser would hold after logging in
    (for tests whose subject is not the login form itself)."""
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[-1]
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return {
        "name": settings.SESSION_COOKIE_NAME,
        "value": session.session_key or "",
        "url": live_server_url,
        "httpOnly": True,
    }


def log_in(context: BrowserContext, user: User, live_server_url: str) -> None:
    context.add_cookies([session_cookie_for(user, live_server_url)])  # type: ignore[list-item]


def screenshot_path(name: str) -> Path:
    """Where a test saves the screenshot of a page (git-ignored `test-artifacts/`)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / f"{name}.png"
