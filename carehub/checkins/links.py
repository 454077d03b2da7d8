"""Check-in link tokens: minted when a request or reminder is sent (carehub.checkins.messages),
stored only as their hash."""

from __future__ import annotations

import hashlib
import secrets

from carehub.checkins.models import Checkin, CheckinLink


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def checkin_link_mint(*, checkin: Checkin) -> str:
    """A new link token (256 bits) for the check-in, valid until its answer window closes."""
    token = secrets.token_urlsafe(32)
    CheckinLink.objects.create(
        checkin=checkin, token_hash=token_hash(token), expires_at=checkin.closes_at
    )
    return token
