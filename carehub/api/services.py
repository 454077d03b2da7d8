"""Writes the API owns: its access tokens (django-rest-knox keeps only a SHA-512 digest of
each token and its first characters to find it; the token itself is shown once) and the keys
of retryable writes (`idempotent_create`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TypeVar

from django.conf import settings
from django.db import IntegrityError, models, transaction
from knox.models import AuthToken

from carehub.accounts.models import User
from carehub.api.models import IdempotentRequest
from carehub.core import clock
from carehub.core.exceptions import Conflict

T = TypeVar("T", bound=models.Model)


@transaction.atomic
def api_token_issue(*, user: User) -> tuple[str, datetime | None]:
    """A new token for the user: the token (to show once) and when it expires."""
    instance, token = AuthToken.objects.create(user=user)
    return token, instance.expiry


@transaction.atomic
def api_token_revoke(*, token: AuthToken) -> None:
    token.delete()


def idempotent_create(
    *, user: User, key: str, operation: str, model: type[T], create: Callable[[], T]
) -> tuple[T, bool]:
    """Run `create` once per (user, key): the row it created and False; on a retry with the same
    key, the row the first request created and True. `create` runs inside this transaction, so
    a failure leaves the key unused. The same key for another operation is a Conflict; two
    concurrent requests with one key wait for each other (the unique index)."""
    with transaction.atomic(durable=True):
        try:
            with transaction.atomic():
                record = IdempotentRequest.objects.create(user=user, key=key, operation=operation)
        except IntegrityError:
            record = IdempotentRequest.objects.get(user=user, key=key)
            if record.operation != operation or record.object_id is None:
                raise Conflict(
                    "This Idempotency-Key was already used for another request.",
                    extra={"field": "Idempotency-Key"},
                ) from None
            return model._default_manager.get(pk=record.object_id), True
        created = create()
        record.object_id = created.pk
        record.save(update_fields=["object_id"])
        return created, False


def idempotent_requests_prune(*, older_than: timedelta | None = None) -> int:
    """Forget retry keys older than `API_IDEMPOTENCY_KEY_HOURS` (default 24): a client retries
    within minutes; after that the same key is a new request. The recorded rows stay."""
    kept = older_than or timedelta(hours=settings.API_IDEMPOTENCY_KEY_HOURS)
    deleted, _ = IdempotentRequest.objects.filter(created_at__lt=clock.now() - kept).delete()
    return deleted
