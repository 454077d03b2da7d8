"""Test doubles for the one outside dependency of delivery: the SMS provider. Everything else
(our services, the database, the recording backends) runs for real."""

from __future__ import annotations

from carehub.messaging.channels import DeliveryError, RecordingSmsGateway

# Any SMS to this number fails at the provider, every time (a poison message).
POISON_PHONE = "+15550009999"


class PoisonSmsGateway(RecordingSmsGateway):
    """The recording gateway, except that the provider refuses one recipient forever."""

    def send(self, to: str, body: str, idempotency_key: str) -> str:
        if to == POISON_PHONE:
            raise DeliveryError("provider error 503 for this recipient")
        return super().send(to, body, idempotency_key)


class DownSmsGateway(RecordingSmsGateway):
    """A provider that is down: every send fails."""

    def send(self, to: str, body: str, idempotency_key: str) -> str:
        raise DeliveryError("provider unavailable")


POISON_GATEWAY = "tests.carehub.messaging.support.PoisonSmsGateway"
DOWN_GATEWAY = "tests.carehub.messaging.support.DownSmsGateway"


class SlowSmsGateway(RecordingSmsGateway):
    """The recording gateway behind a slow provider: each send takes
    TEST_GATEWAY_DELAY_SECONDS (default 0.5), so a batch is still in flight when a fault hits."""

    def send(self, to: str, body: str, idempotency_key: str) -> str:
        import os
        import time

        time.sleep(float(os.environ.get("TEST_GATEWAY_DELAY_SECONDS", "0.5")))
        return super().send(to, body, idempotency_key)


SLOW_GATEWAY = "tests.carehub.messaging.support.SlowSmsGateway"
