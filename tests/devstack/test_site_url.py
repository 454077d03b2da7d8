"""Links in messages are built on the configured site URL (`PUBLIC_BASE_URL`); the demo sets it
from the port it serves, so `PORT=8123 make demo` sends links to port 8123."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from carehub.devstack.runner import demo_env

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_builds_links_on_the_port_it_serves(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PUBLIC_BASE_URL", raising=False)
    env = demo_env({}, port=8123)
    assert env["PUBLIC_BASE_URL"] == "http://127.0.0.1:8123"
    # What the demo's processes (web, worker, scheduler) read as their setting.
    env["DJANGO_SETTINGS_MODULE"] = "config.settings.local"
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c",
         "from django.conf import settings; print(settings.PUBLIC_BASE_URL)"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "http://127.0.0.1:8123"


def test_an_explicit_site_url_wins_over_the_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://care.example.org")
    assert demo_env({}, port=8123)["PUBLIC_BASE_URL"] == "https://care.example.org"
