"""Provider selection from the environment: a real provider with its credentials passes the
production checks; one without them is refused by name (carehub.E011), in `manage.py check` and
when a process starts."""

from __future__ import annotations

import pytest
from django.test import override_settings

from carehub.messaging.channels import sms_gateway
from carehub.messaging.checks import check_provider_settings, check_recording_backends
from carehub.messaging.providers.http import HttpSmsGateway
from carehub.messaging.providers.twilio import TwilioSmsGateway
from tests.carehub.messaging.test_production_backends import production_env, run

TWILIO_ENV = {
    "MESSAGING_SMS_GATEWAY": "twilio",
    "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
    "TWILIO_AUTH_TOKEN": "fake-token",
    "TWILIO_FROM_NUMBER": "+15005550006",
}
POSTMARK_ENV = {
    "DJANGO_EMAIL_BACKEND": "anymail.backends.postmark.EmailBackend",
    "ANYMAIL_POSTMARK_SERVER_TOKEN": "fake-server-token",
    "ANYMAIL_WEBHOOK_SECRET": "postmark:fake-password",
}
COMPLETE_TWILIO = {
    "MESSAGING_SMS_GATEWAY": "twilio", "TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "t",
    "TWILIO_FROM_NUMBER": "+15005550006", "TWILIO_MESSAGING_SERVICE_SID": "",
}  # fmt: skip


def messages(**values: object) -> list[str]:
    with override_settings(**values):
        return [f"{e.id} {e.msg}" for e in check_provider_settings()]


def test_the_short_names_choose_the_gateways() -> None:
    with override_settings(MESSAGING_SMS_GATEWAY="twilio"):
        assert isinstance(sms_gateway(), TwilioSmsGateway)
    with override_settings(MESSAGING_SMS_GATEWAY="http"):
        assert isinstance(sms_gateway(), HttpSmsGateway)


@override_settings(MESSAGING_ALLOW_RECORDING_BACKENDS=False)
def test_the_recording_short_name_is_refused_in_production_too() -> None:
    with override_settings(MESSAGING_SMS_GATEWAY="recording"):
        assert [e.id for e in check_recording_backends()] == ["carehub.E010"]


def test_twilio_with_its_credentials_passes() -> None:
    assert messages(**COMPLETE_TWILIO) == []
    assert messages(**{**COMPLETE_TWILIO, "TWILIO_FROM_NUMBER": "",
                       "TWILIO_MESSAGING_SERVICE_SID": "MG1"}) == []  # fmt: skip


@pytest.mark.parametrize(
    ("blank", "named"),
    [
        ("TWILIO_AUTH_TOKEN", "TWILIO_AUTH_TOKEN"),
        ("TWILIO_ACCOUNT_SID", "TWILIO_ACCOUNT_SID"),
        ("TWILIO_FROM_NUMBER", "TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID"),
    ],
)
def test_twilio_without_a_credential_is_refused_by_name(blank: str, named: str) -> None:
    assert messages(**{**COMPLETE_TWILIO, blank: ""}) == [
        f"carehub.E011 MESSAGING_SMS_GATEWAY=twilio needs {named}"
    ]


def test_the_http_provider_needs_its_url_its_callback_secret_and_a_json_template() -> None:
    complete = {
        "MESSAGING_SMS_GATEWAY": "http", "SMS_HTTP_URL": "https://sms.example/v1",
        "SMS_HTTP_CALLBACK_SECRET": "s", "SMS_HTTP_BODY_TEMPLATE": '{"to": "{to}"}',
    }  # fmt: skip
    assert messages(**complete) == []
    assert messages(**{**complete, "SMS_HTTP_CALLBACK_SECRET": ""}) == [
        "carehub.E011 MESSAGING_SMS_GATEWAY=http needs SMS_HTTP_CALLBACK_SECRET"
    ]
    [broken] = messages(**{**complete, "SMS_HTTP_BODY_TEMPLATE": '{"to": {to}}'})
    assert broken.startswith("carehub.E011 SMS_HTTP_BODY_TEMPLATE is not JSON")


def test_an_unknown_gateway_is_refused() -> None:
    [refused] = messages(MESSAGING_SMS_GATEWAY="twillio")
    assert refused.startswith("carehub.E011 MESSAGING_SMS_GATEWAY=twillio cannot be loaded")


def test_anymail_needs_the_esp_s_credentials_and_the_webhook_secret() -> None:
    backend = "anymail.backends.postmark.EmailBackend"
    complete = {"POSTMARK_SERVER_TOKEN": "t", "WEBHOOK_SECRET": "u:p"}
    assert messages(EMAIL_BACKEND=backend, ANYMAIL=complete) == []
    [no_token] = messages(EMAIL_BACKEND=backend, ANYMAIL={"WEBHOOK_SECRET": "u:p"})
    assert no_token.startswith(f"carehub.E011 EMAIL_BACKEND={backend} is not configured")
    assert "POSTMARK_SERVER_TOKEN" in no_token
    assert messages(EMAIL_BACKEND=backend, ANYMAIL={"POSTMARK_SERVER_TOKEN": "t"}) == [
        f"carehub.E011 EMAIL_BACKEND={backend} needs ANYMAIL_WEBHOOK_SECRET"
    ]


@pytest.mark.integration
def test_production_accepts_twilio_and_an_anymail_esp_from_the_environment() -> None:
    result = run("manage.py", "check", "--deploy", env=production_env(**TWILIO_ENV, **POSTMARK_ENV))
    assert result.returncode == 0, result.stderr
    assert "carehub.E01" not in result.stderr + result.stdout


@pytest.mark.integration
def test_production_refuses_a_provider_without_credentials_and_workers_do_not_start() -> None:
    env = production_env(**{**TWILIO_ENV, "TWILIO_AUTH_TOKEN": ""}, **POSTMARK_ENV)
    check = run("manage.py", "check", "--deploy", env=env)
    assert check.returncode != 0
    assert "carehub.E011" in check.stderr
    assert "MESSAGING_SMS_GATEWAY=twilio needs TWILIO_AUTH_TOKEN" in check.stderr
    wsgi = run("-c", "import config.wsgi", env=env)
    assert wsgi.returncode != 0
    assert "TWILIO_AUTH_TOKEN" in wsgi.stderr
