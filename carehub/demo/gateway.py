"""The demo's SMS gateway: records like the development gateway, except that, like a real
provider, it refuses numbers that are not in service. One demo patient's number is such a
number, so the demo has dead messages to look at (Dead messages → fix the contact, then resend)."""

from __future__ import annotations

from carehub.messaging.channels import RecordingSmsGateway, UnreachableContact

# A number from the fictional 555-01xx range that the demo treats as disconnected.
NOT_IN_SERVICE = frozenset({"+15555550199"})


class DemoSmsGateway(RecordingSmsGateway):
    def send(self, to: str, body: str, idempotency_key: str) -> str:
        if to in NOT_IN_SERVICE:
            raise UnreachableContact(f"the provider refused {to}: number not in service")
        return super().send(to, body, idempotency_key)
