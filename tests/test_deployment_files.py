"""The production stack is described by files we cannot run here (no Docker engine), so their
structure is checked by reading them."""

import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent


def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_the_production_services_with_healthchecks() -> None:
    services = compose()["services"]
    assert {"postgres", "redis", "web", "worker", "beat"} <= set(services)
    for name in ("postgres", "redis", "web", "worker", "beat"):
        assert "healthcheck" in services[name], name
        assert services[name]["healthcheck"]["test"], name


def test_redis_never_evicts_broker_keys() -> None:
    command = compose()["services"]["redis"]["command"]
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"


def test_exactly_one_beat_and_app_services_wait_for_healthy_dependencies() -> None:
    services = compose()["services"]
    assert services["beat"]["deploy"]["replicas"] == 1
    assert "beat" in services["beat"]["command"]
    for name in ("web", "worker", "beat"):
        depends = services[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["redis"]["condition"] == "service_healthy"
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        env = services[name]["environment"]
        assert env["DJANGO_SETTINGS_MODULE"] == "config.settings.production"
        assert "?" in env["DJANGO_SECRET_KEY"]  # required from the environment, never a default
        assert "?" in env["MESSAGING_SMS_GATEWAY"]  # a provider, never the recording one
    assert services["web"]["command"][0] == "gunicorn"


def test_compose_and_dockerfile_agree_on_the_entry_points() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "config.wsgi:application" in dockerfile
    assert "USER carehub" in dockerfile
    assert compose()["services"]["worker"]["command"][:3] == ["celery", "-A", "config"]


def test_production_settings_pass_the_deployment_checklist() -> None:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "carehub.example",
        "MESSAGING_SMS_GATEWAY": "tests.support.gateways.ProviderSmsGateway",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_refuses_to_start_without_a_secret_key() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SECRET_KEY"}
    env.update(DJANGO_SETTINGS_MODULE="config.settings.production", DJANGO_ALLOWED_HOSTS="x")
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True,
        check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_only_migrate_has_the_owner_and_the_apps_connect_as_their_own_role() -> None:
    services = compose()["services"]
    owner = services["postgres"]["environment"]["POSTGRES_USER"]
    for name in ("web", "worker", "beat"):
        env = services[name]["environment"]
        assert env["DATABASE_URL"].startswith("postgres://carehub_app:"), name
        assert f"//{owner}:" not in env["DATABASE_URL"], name
        assert "DATABASE_OWNER_URL" not in env, name
    migrate = services["migrate"]
    assert migrate["environment"]["DATABASE_OWNER_URL"].startswith(f"postgres://{owner}:")
    command = " ".join(migrate["command"])
    assert "manage.py migrate" in command
    assert "check --deploy --database default" in command  # carehub.E020, as the application
