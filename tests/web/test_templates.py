"""The web UI's templates keep the Content Security Policy (ADR 0007): no inline script, style,
event handler or htmx code (`hx-on`), and every page is served with the strict policy."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.test import Client

import carehub.web

TEMPLATES = sorted((Path(carehub.web.__file__).parent / "templates").rglob("*.html"))
INLINE = [
    (re.compile(r"<style", re.I), "a <style> element"),
    (re.compile(r"\sstyle\s*=", re.I), "a style attribute"),
    (re.compile(r"<script(?![^>]*\ssrc=)[^>]*>", re.I), "an inline <script>"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "an inline event handler"),
    (re.compile(r"\shx-on", re.I), "htmx inline code (hx-on)"),
    (re.compile(r"javascript:", re.I), "a javascript: URL"),
]


def test_there_are_templates_to_check() -> None:
    assert len(TEMPLATES) >= 20


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_no_inline_code_or_style(template: Path) -> None:
    text = template.read_text()
    found = [what for pattern, what in INLINE if pattern.search(text)]
    assert found == [], f"{template.name}: {found}"


@pytest.mark.django_db
def test_the_login_page_is_served_with_the_strict_policy() -> None:
    policy = Client().get("/login/")["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "style-src 'self'" in policy
    assert "unsafe-inline" not in policy
