"""Browser tests: Playwright driving headless Chromium against pytest-django's live server.

`browser` is started once per test module; each test gets fresh contexts (`desktop`,
`phone`), so cookies never leak between tests. Log a user in with
`tests.support.browser.log_in(context, user, live_server.url)` unless the login form is what
the test is about."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Playwright, sync_playwright

from tests.support.browser import CHROMIUM_ARGS, DESKTOP, PHONE, chromium_path


@pytest.fixture(scope="module", autouse=True)
def _sync_orm_beside_playwright() -> Iterator[None]:
    """Playwright's sync API runs an event loop in the test thread; the ORM calls a test makes
    between browser steps are ordinary synchronous calls. Set per module (while its browser
    runs), so the variable never reaches other tests (`check --deploy` warns about it)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


@pytest.fixture(scope="module")
def playwright_instance(_sync_orm_beside_playwright: None) -> Iterator[Playwright]:
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="module")
def browser(playwright_instance: Playwright) -> Iterator[Browser]:
    browser = playwright_instance.chromium.launch(
        executable_path=chromium_path(playwright_instance.chromium.executable_path),
        args=CHROMIUM_ARGS,
        headless=True,
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
