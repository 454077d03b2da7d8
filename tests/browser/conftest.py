"""Browser tests: Playwright driving headless Chromium against pytest-django's live server.

`browser` is started once per test session; each test gets fresh contexts (`desktop`,
`phone`), so cookies never leak between tests. Log a user in with
`tests.support.browser.log_in(context, user, live_server.url)` unless the login form is what
the test is about."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Playwright, sync_playwright

from tests.support.browser import CHROMIUM_ARGS, DESKTOP, PHONE, chromium_path

# Playwright's sync API runs an event loop in the test thread; the ORM calls the tests make
# between browser steps are ordinary synchronous calls.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session")
def playwright_instance() -> Iterator[Playwright]:
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def browser(playwright_instance: Playwright) -> Iterator[Browser]:
    browser = playwright_instance.chromium.launch(
        executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True
    )
    yield browser
    browser.close()


def _context(browser: Browser, options: dict) -> Iterator[BrowserContext]:  # type: ignore[type-arg]
    context = browser.new_context(**options)
    context.set_default_timeout(15_000)
    yield context
    context.close()


@pytest.fixture
def desktop(browser: Browser, live_server) -> Iterator[BrowserContext]:  # type: ignore[no-untyped-def]
    yield from _context(browser, {**DESKTOP, "base_url": live_server.url})


@pytest.fixture
def phone(browser: Browser, live_server) -> Iterator[BrowserContext]:  # type: ignore[no-untyped-def]
    yield from _context(browser, {**PHONE, "base_url": live_server.url})
