"""Processes started without DJANGO_SETTINGS_MODULE (manage.py, Celery, WSGI/ASGI) run on the
production settings, so a forgotten variable never starts a worker in debug on a public key."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHOW = "from django.conf import settings; print(settings.SETTINGS_MODULE, settings.DEBUG)"


def bare_env(**extra: str) -> dict[str, str]:
    """This environment without the settings module, the secret key or a debug switch."""
    drop = {"DJANGO_SETTINGS_MODULE", "DJANGO_SECRET_KEY", "DJANGO_DEBUG"}
    return {**{k: v for k, v in os.environ.items() if k not in drop}, **extra}


def run(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *argv], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )


def test_manage_py_refuses_to_start_without_a_secret_key_and_says_why() -> None:
    result = run("manage.py", "check", env=bare_env())
    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert "Set DJANGO_SECRET_KEY" in last_line
    assert "config.settings.production" in last_line


@pytest.mark.parametrize(
    "argv",
    [
        ["manage.py", "shell", "-c", SHOW],
        ["-c", f"import config.celery_app; {SHOW}"],
        ["-c", f"import config.wsgi; {SHOW}"],
        ["-c", f"import config.asgi; {SHOW}"],
    ],
    ids=["manage.py", "celery", "wsgi", "asgi"],
)
def test_every_entry_point_defaults_to_the_production_settings(argv: list[str]) -> None:
    env = bare_env(
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="x",
        MESSAGING_SMS_GATEWAY="tests.support.gateways.ProviderSmsGateway",
    )
    result = run(*argv, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-2:] == ["config.settings.production", "False"]


def test_the_demo_names_the_local_settings() -> None:
    from carehub.devstack.runner import demo_env

    saved = os.environ.pop("DJANGO_SETTINGS_MODULE", None)
    try:
        assert demo_env({})["DJANGO_SETTINGS_MODULE"] == "config.settings.local"
    finally:
        if saved is not None:
            os.environ["DJANGO_SETTINGS_MODULE"] = saved


def test_make_and_ci_name_the_settings_they_need() -> None:
    makefile = (ROOT / "Makefile").read_text()
    test_recipe = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert "DJANGO_SETTINGS_MODULE=config.settings.test" in test_recipe
    demo_recipe = makefile.split("\ndemo:", 1)[1].split("\n\n", 1)[0]
    assert "DJANGO_SETTINGS_MODULE=config.settings.local" in demo_recipe
    assert "export DJANGO_SETTINGS_MODULE=config.settings.test" in (ROOT / ".ci/run").read_text()


def test_the_production_settings_do_not_install_the_demo() -> None:
    env = bare_env(
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="x",
        MESSAGING_SMS_GATEWAY="tests.support.gateways.ProviderSmsGateway",
    )
    show_apps = "from django.conf import settings; print('carehub.demo' in settings.INSTALLED_APPS)"
    production = run("manage.py", "shell", "-c", show_apps, env=env)
    assert production.returncode == 0, production.stderr
    assert production.stdout.split()[-1] == "False"
    seed = run("manage.py", "seed_demo", env=env)
    assert seed.returncode != 0
    assert "Unknown command: 'seed_demo'" in seed.stderr
    local = run(
        "manage.py",
        "shell",
        "-c",
        show_apps,
        env=bare_env(DJANGO_SETTINGS_MODULE="config.settings.local"),
    )
    assert local.stdout.split()[-1] == "True"


QUEUE = "from django.conf import settings; print(settings.CELERY_TASK_DEFAULT_QUEUE)"


def test_each_xdist_worker_publishes_to_a_queue_of_its_own() -> None:
    """`make test` runs one pytest-xdist worker per core (ADR 0034): each names its queue after
    itself, as pytest-django names its database; a Celery worker a test starts is told that
    queue and does not add the suffix again."""
    from django.conf import settings

    from tests.support.celery_worker import worker_env

    def queue(**extra: str) -> str:
        env = bare_env(DJANGO_SETTINGS_MODULE="config.settings.test", CELERY_QUEUE="q")
        env.pop("PYTEST_XDIST_WORKER", None)
        env.update(extra)
        result = run("-c", f"import django; django.setup(); {QUEUE}", env=env)
        assert result.returncode == 0, result.stderr
        return result.stdout.split()[-1]

    assert queue() == "q"
    assert queue(PYTEST_XDIST_WORKER="gw0") == "q-gw0"
    assert queue(PYTEST_XDIST_WORKER="gw1") == "q-gw1"
    started = worker_env()
    assert "PYTEST_XDIST_WORKER" not in started
    assert started["CELERY_QUEUE"] == settings.CELERY_TASK_DEFAULT_QUEUE
    assert queue(CELERY_QUEUE=started["CELERY_QUEUE"]) == settings.CELERY_TASK_DEFAULT_QUEUE
