"""One idempotency mechanism for every write of every interface (ADR 0013).

A write sent with a one-time key (the API's `Idempotency-Key` header, the hidden key of a page's
form) is recorded per (actor, key) with the **fingerprint** of the request: the SHA-256 of a
canonical JSON of the operation's name, its target, the canonical body (sorted keys, normalised
values) and the actor. Then:

- a key not seen (or expired: older than `IDEMPOTENCY_KEY_HOURS`) is claimed *in progress* in
  its own committed transaction, before the write runs (a concurrent duplicate waits on the
  unique index, then sees the claim);
- the same key with the same fingerprint, once done, **replays** the first answer (the API's
  status and JSON body, the page's message) and changes nothing;
- the same key with another fingerprint is refused (`IdempotencyKeyReused`, naming the first
  use), and so is a key whose first request is still running (`IdempotencyKeyInProgress`);
- a write that fails with a 4xx before committing anything **releases** the key (nothing
  changed; the corrected request may be sent with it); any other failure (a 5xx, or a 4xx after
  a step of a write in several steps committed) leaves the key **incomplete**: the same request
  sent again runs again, skipping the steps already committed (`idempotency_step`), and another
  request with that key is still refused. A claim whose request died without an answer is taken
  over the same way after `ABANDONED_AFTER`.

The pathway's own log of event keys (`ProcessedEvent`) stays: interfaces pass a key derived
from theirs to the dispatch, which answers a replayed event with its stored outcome.
"""

from __future__ import annotations

import hashlib
import json
import math
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, TypeVar
from uuid import UUID

from django.conf import settings
from django.db import IntegrityError, models, transaction

from carehub.core import clock
from carehub.core.exceptions import Conflict
from carehub.core.models import IdempotencyRecord, IdempotencyStatus

J = TypeVar("J")

# A claim older than this whose request never answered (its process died, the database went
# away before the answer was stored) is taken over by the same request sent again. Longer than
# any request may run (gunicorn stops a worker after 30 s).
ABANDONED_AFTER = timedelta(minutes=5)
MESSAGE_MAX_LENGTH = 500
# A claim that loses the unique index to a concurrent one looks again (that one may have been
# released meanwhile); a key fought over longer than this is answered as in progress.
CLAIM_TRIES = 3


class IdempotencyKeyReused(Conflict):
    """The key was used for another request (operation, target, body or actor)."""

    code = "idempotency_key_reused"


class IdempotencyKeyInProgress(Conflict):
    """The first request with this key has not answered yet."""

    code = "idempotency_key_in_progress"


@dataclass
class Attempt:
    """A claimed key: `replay` when the first answer is to be given again (nothing runs);
    otherwise the request runs now (`resumed` when it takes over an incomplete one)."""

    record: IdempotencyRecord
    replay: bool = False
    resumed: bool = False


# --- the fingerprint ---------------------------------------------------------------------------


def canonical(value: Any) -> Any:
    """`value` as plain JSON, one spelling per meaning: mappings with string keys (sorted when
    dumped), numbers with an integral value as integers (`5`, `5.0` and `Decimal("5")` agree),
    moments in UTC ISO 8601, text in Unicode NFC, UUIDs as text, rows as `label:pk`."""
    if isinstance(value, Mapping):
        return {str(key): canonical(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [canonical(item) for item in value]
    if isinstance(value, set | frozenset):
        return sorted((canonical(item) for item in value), key=_dump)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float | Decimal):
        number = float(value)
        if not math.isfinite(number):
            return str(number)
        return int(number) if number.is_integer() else number
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value)
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return canonical(value.total_seconds())
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, models.Model):
        return f"{value._meta.label_lower}:{value.pk}"
    return str(value)


def _dump(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def request_fingerprint(*, operation: str, target: str, body: Any, actor_id: int) -> str:
    """SHA-256 (hex) of the canonical JSON of the operation, target, body and actor."""
    payload = {
        "actor": actor_id,
        "body": canonical(body),
        "operation": operation,
        "target": target,
    }
    return hashlib.sha256(_dump(payload).encode()).hexdigest()


def first_use(record: IdempotencyRecord) -> dict[str, str]:
    """What a refusal names: the request that first used the key."""
    return {
        "operation": record.operation,
        "target": record.target,
        "at": record.created_at.isoformat(),
    }


# --- claiming, answering, releasing ------------------------------------------------------------


def key_lifetime() -> timedelta:
    return timedelta(hours=settings.IDEMPOTENCY_KEY_HOURS)


def _judge(record: IdempotencyRecord, fingerprint: str, now: datetime) -> Attempt | None:
    """What an unexpired record means for a request with this fingerprint: an Attempt to replay,
    None when the request may run (the record is incomplete or abandoned), or a refusal."""
    if record.fingerprint != fingerprint:
        raise IdempotencyKeyReused(
            f"This key was already used for another request ({record.operation} on "
            f"{record.target} at {record.created_at:%Y-%m-%d %H:%M:%S} UTC); use a new key for "
            "a new request.",
            extra={"first_use": first_use(record)},
        )
    if record.status == IdempotencyStatus.DONE:
        return Attempt(record=record, replay=True)
    if record.status == IdempotencyStatus.IN_PROGRESS and record.started_at > now - ABANDONED_AFTER:
        raise IdempotencyKeyInProgress(
            "The first request with this key is still running; retry in a moment.",
            extra={"first_use": first_use(record)},
        )
    return None


def idempotency_peek(
    *, actor_id: int, key: str, operation: str, target: str, body: Any
) -> Attempt | None:
    """Without claiming anything: the first answer to replay, or None when the request would run
    (a new key, or an incomplete first request); refusals as `idempotency_begin`."""
    fingerprint = request_fingerprint(
        operation=operation, target=target, body=body, actor_id=actor_id
    )
    now = clock.now()
    record = IdempotencyRecord.objects.filter(
        actor_id=actor_id, key=key, created_at__gte=now - key_lifetime()
    ).first()
    return None if record is None else _judge(record, fingerprint, now)


def idempotency_begin(
    *, actor_id: int, key: str, operation: str, target: str, body: Any
) -> Attempt:
    """Claim `key` for this request (committed at once), or answer what an earlier use of it
    means: an Attempt with `replay` (give its answer again), `IdempotencyKeyReused`,
    `IdempotencyKeyInProgress`. An expired record is replaced."""
    fingerprint = request_fingerprint(
        operation=operation, target=target, body=body, actor_id=actor_id
    )
    for _ in range(CLAIM_TRIES):
        now = clock.now()
        with transaction.atomic(durable=True):
            record = (
                IdempotencyRecord.objects.select_for_update()
                .filter(actor_id=actor_id, key=key)
                .first()
            )
            if record is not None and record.created_at < now - key_lifetime():
                record.delete()
                record = None
            if record is None:
                try:
                    with transaction.atomic():  # a savepoint: a concurrent claim wins the index
                        record = IdempotencyRecord.objects.create(
                            actor_id=actor_id,
                            key=key,
                            operation=operation[:64],
                            target=target[:200],
                            fingerprint=fingerprint,
                            created_at=now,
                            started_at=now,
                        )
                except IntegrityError:
                    continue  # it waited for the other claim to commit: judge that one
                return Attempt(record=record)
            verdict = _judge(record, fingerprint, now)
            if verdict is not None:
                return verdict
            record.status = IdempotencyStatus.IN_PROGRESS
            record.started_at = now
            record.save(update_fields=["status", "started_at"])
            return Attempt(record=record, resumed=True)
    raise IdempotencyKeyInProgress(
        "Another request with this key is being claimed; retry in a moment."
    )


def idempotency_step(*, attempt: Attempt, name: str, run: Callable[[], J]) -> tuple[J, bool]:
    """A step of a write in several steps (record an observation, then tell the pathway): `run`
    commits together with the note that it did, and returns a JSON value (e.g. a row's id).
    Returns that value and False; in a request that resumes an incomplete one whose step had
    committed, the stored value and True, without running it again. `run` must not open a
    durable transaction of its own."""
    progress = attempt.record.progress or {}
    if name in progress:
        return progress[name], True
    with transaction.atomic(durable=True):
        value = run()
        progress = {**progress, name: canonical(value)}
        IdempotencyRecord.objects.filter(pk=attempt.record.pk).update(progress=progress)
    attempt.record.progress = progress
    return value, False


def idempotency_finish(
    *, attempt: Attempt, status: int, body: Any = None, message: str = ""
) -> None:
    """The request answered successfully: keep its answer for replays."""
    with transaction.atomic(durable=True):
        IdempotencyRecord.objects.filter(pk=attempt.record.pk).update(
            status=IdempotencyStatus.DONE,
            response_status=status,
            response_body=canonical(body) if body is not None else None,
            message=message[:MESSAGE_MAX_LENGTH],
        )


def idempotency_fail(*, attempt: Attempt, status: int) -> None:
    """The request failed. A 4xx of a first request that committed no step changed nothing: the
    key is released. Anything else keeps the key, incomplete, for the same request to run
    again (a 5xx may come after a service committed)."""
    record = attempt.record
    with transaction.atomic(durable=True):
        mine = IdempotencyRecord.objects.filter(
            pk=record.pk, status=IdempotencyStatus.IN_PROGRESS, started_at=record.started_at
        )
        if 400 <= status < 500 and not attempt.resumed and not record.progress:
            mine.delete()
        else:
            mine.update(status=IdempotencyStatus.INCOMPLETE)


def idempotency_keys_prune(*, older_than: timedelta | None = None) -> int:
    """Forget keys older than `IDEMPOTENCY_KEY_HOURS` (default 24; hourly from beat): a client
    retries within minutes and a page's form is re-rendered with a new key; after that the same
    key is a new request. What the requests changed stays."""
    kept = older_than or key_lifetime()
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=clock.now() - kept).delete()
    return deleted
