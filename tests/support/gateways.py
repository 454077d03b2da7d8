"""The patient's phone, for tests: the recording gateway (which stores link tokens redacted) that
also hands the tests, in this process, the text as delivered, with its live check-in link."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.test import override_settings

from carehub.messaging.channels import RecordingSmsGateway, SmsGateway


class PhoneSmsGateway(RecordingSmsGateway):
    delivered: dict[str, str] = {}  # idempotency key → the text the patient would read

    def send(self, to: str, body: str, idempotency_key: str) -> str:
        self.delivered[idempotency_key] = body
        return super().send(to, body, idempotency_key)


@contextmanager
def patients_phone() -> Iterator[dict[str, str]]:
    """SMS sent inside the block reach the returned dict as delivered (key → text)."""
    PhoneSmsGateway.delivered = {}
    with override_settings(MESSAGING_SMS_GATEWAY="tests.support.gateways.PhoneSmsGateway"):
        yield PhoneSmsGateway.delivered


def link_token(text: str) -> str:
    """The token of the check-in link in a delivered text."""
    return text.rsplit("/c/", 1)[1].strip()


class ProviderSmsGateway(SmsGateway):
    """Stands for a production provider's gateway in settings checks (never sends here)."""

    def send(self, to: str, body: str, idempotency_key: str) -> str:
        raise AssertionError("a settings check must not send")
