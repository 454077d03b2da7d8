"""Production cannot run on the development backends by accident: the recording SMS gateway or
e-mail backend stop every kind of process (carehub.E010) unless explicitly allowed, the pages
under /dev/ are not routed, and no recorded row holds a live check-in link."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core import mail
from django.core.mail import EmailMessage
from django.test import override_settings

from carehub.messaging.channels import RecordingEmailBackend, RecordingSmsGateway
from carehub.messaging.checks import check_recording_backends
from carehub.messaging.models import RecordedMessage

ROOT = Path(__file__).resolve().parents[3]
PROVIDER = "tests.support.gateways.ProviderSmsGateway"
RECORDING_SMS = "carehub.messaging.channels.RecordingSmsGateway"
RECORDING_EMAIL = "carehub.messaging.channels.RecordingEmailBackend"
SMTP = "django.core.mail.backends.smtp.EmailBackend"
TOKEN = "Zq3x_9-VfT0aLkP2mN8rB4sW6yE1uI7oHcJdGgKe0Xw"


def production_env(**extra: str) -> dict[str, str]:
    """The production settings with a key and hosts and nothing else of ours configured."""
    drop = {"DJANGO_SETTINGS_MODULE", "MESSAGING_SMS_GATEWAY", "DJANGO_EMAIL_BACKEND"}
    drop |= {"MESSAGING_ALLOW_RECORDING_BACKENDS", "DEV_PAGES"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="carehub.example",
    )
    env.update(extra)
    return env


def run(*argv: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *argv], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=timeout, check=False,
    )  # fmt: skip


def test_production_refuses_the_default_recording_sms_gateway() -> None:
    result = run("manage.py", "check", "--deploy", env=production_env())
    assert result.returncode != 0
    assert "carehub.E010" in result.stderr
    assert RECORDING_SMS in result.stderr


def test_production_refuses_the_recording_email_backend() -> None:
    env = production_env(MESSAGING_SMS_GATEWAY=PROVIDER, DJANGO_EMAIL_BACKEND=RECORDING_EMAIL)
    result = run("manage.py", "check", env=env)
    assert result.returncode != 0
    assert f"EMAIL_BACKEND={RECORDING_EMAIL}" in result.stderr
    assert "carehub.E010" in result.stderr


def test_production_with_real_backends_passes() -> None:
    result = run(
        "manage.py", "check", "--deploy", env=production_env(MESSAGING_SMS_GATEWAY=PROVIDER)
    )
    assert result.returncode == 0, result.stderr
    assert "carehub.E010" not in result.stderr + result.stdout


def test_gunicorn_and_celery_refuse_to_start_too(tmp_path: Path) -> None:
    wsgi = run("-c", "import config.wsgi", env=production_env())
    assert wsgi.returncode != 0
    assert "carehub.E010" in wsgi.stderr
    worker = run(
        "-m", "celery", "-A", "config", "worker", "--pool", "solo", "--loglevel", "INFO",
        env=production_env(CELERY_QUEUE="refused-" + secrets.token_hex(4)),
    )  # fmt: skip
    assert worker.returncode == 1
    assert "carehub.E010" in worker.stdout + worker.stderr
    beat = run(
        "-m",
        "celery",
        "-A",
        "config",
        "beat",
        "--schedule",
        str(tmp_path / "schedule"),
        env=production_env(),
    )
    assert beat.returncode == 1
    assert "carehub.E010" in beat.stdout + beat.stderr


def test_the_explicit_opt_out_starts_with_a_warning() -> None:
    env = production_env(MESSAGING_ALLOW_RECORDING_BACKENDS="true")
    result = run("manage.py", "check", "--deploy", env=env)
    assert result.returncode == 0, result.stderr
    assert "WARNING" in result.stderr
    assert f"{RECORDING_SMS} is a recording development backend" in result.stderr
    wsgi = run("-c", "import config.wsgi", env=env)
    assert wsgi.returncode == 0, wsgi.stderr
    assert "recording development backend" in wsgi.stderr


def test_production_does_not_route_the_development_pages() -> None:
    code = (
        "import django; django.setup()\n"
        "from django.urls import Resolver404, resolve\n"
        "for path in ('/dev/sent-messages/', '/dev/sent-messages/1/open'):\n"
        "    try:\n"
        "        resolve(path)\n"
        "    except Resolver404:\n"
        "        print('absent', path)\n"
        "print(resolve('/healthz').url_name)\n"
    )
    result = run("-c", code, env=production_env(MESSAGING_SMS_GATEWAY=PROVIDER))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:3] == [
        "absent /dev/sent-messages/",
        "absent /dev/sent-messages/1/open",
        "healthz",
    ]


@override_settings(MESSAGING_ALLOW_RECORDING_BACKENDS=False)
@pytest.mark.parametrize(
    ("sms", "email", "refused"),
    [
        (RECORDING_SMS, SMTP, [f"MESSAGING_SMS_GATEWAY={RECORDING_SMS}"]),
        ("carehub.demo.gateway.DemoSmsGateway", SMTP, ["MESSAGING_SMS_GATEWAY="]),
        (PROVIDER, RECORDING_EMAIL, [f"EMAIL_BACKEND={RECORDING_EMAIL}"]),
        (PROVIDER, SMTP, []),
    ],
)
def test_the_check_names_each_recording_backend(sms: str, email: str, refused: list[str]) -> None:
    with override_settings(MESSAGING_SMS_GATEWAY=sms, EMAIL_BACKEND=email):
        errors = check_recording_backends()
    assert [e.id for e in errors] == ["carehub.E010"] * len(refused)
    for error, setting in zip(errors, refused, strict=True):
        assert error.msg.startswith(setting)


@pytest.mark.django_db(transaction=True)
def test_recorded_rows_keep_no_link_token() -> None:
    text = f"Your PEG is ready: https://care.example/c/{TOKEN}"
    RecordingSmsGateway().send("+447700900123", text, "sms-key")
    with override_settings(EMAIL_BACKEND=RECORDING_EMAIL):
        EmailMessage(subject=f"/c/{TOKEN}", body=text, to=["p@example.org"]).send()
    assert isinstance(mail.get_connection(RECORDING_EMAIL), RecordingEmailBackend)
    rows = list(RecordedMessage.objects.values_list("subject", "body"))
    assert len(rows) == 2
    for subject, body in rows:
        assert TOKEN not in subject + body
        assert body == "Your PEG is ready: https://care.example/c/[redacted]"
