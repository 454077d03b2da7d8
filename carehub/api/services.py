"""Writes the API owns: its access tokens (django-rest-knox keeps only a SHA-512 digest of
each token and its first characters to find it; the token itself is shown once). The keys of
retryable writes are the core's (carehub.core.idempotency)."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from knox.models import AuthToken

from carehub.accounts.models import User


@transaction.atomic
def api_token_issue(*, user: User) -> tuple[str, datetime | None]:
    """A new token for the user: the token (to show once) and when it expires."""
    instance, token = AuthToken.objects.create(user=user)
    return token, instance.expiry


@transaction.atomic
def api_token_revoke(*, token: AuthToken) -> None:
    token.delete()
