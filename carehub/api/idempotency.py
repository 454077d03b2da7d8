"""`Idempotency-Key` on every write of the API, through the core mechanism
(carehub.core.idempotency, ADR 0013), implemented once around the views' writes.

Every POST, PUT, PATCH and DELETE of a view with `IdempotentWrites` (every `AuditedApi`) needs
the header (1 to 100 printable characters, per user; 400 without). After authentication and the
role check, before the view runs, the key is claimed with the fingerprint of the request: the
view's operation (its audit action), its target (the URL path), the canonical body (what the
view's `InputSerializer` makes of it, or the body as sent when it does not validate; nothing for
a view that reads no body) and the user. Then:

- the same key and the same request once answered: the first answer again (its JSON body, 200
  for a first 201 or 202, header `Idempotent-Replayed: true`, a `replayed` member set to true),
  without running the view; the object must still be within the user's scope, and the replay
  is audited like the request;
- the same key for another request: 409 `idempotency_key_reused`, naming the first use; a key
  whose first request is still running: 409 `idempotency_key_in_progress`;
- the view's answer is kept for replays when it succeeds; a 4xx releases the key (the request
  changed nothing and may be sent again corrected); a 5xx keeps it, incomplete, for the same
  request to run again (see carehub.core.idempotency).

A view writing in several steps (record an observation, then tell the pathway) runs its first
step through `idempotent_create`, so a retry after a later step failed does not repeat it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import models
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder

from carehub.api.requests import ApiViewMixinBase
from carehub.core.exceptions import InvalidInput
from carehub.core.idempotency import (
    Attempt,
    idempotency_begin,
    idempotency_fail,
    idempotency_finish,
    idempotency_step,
)
from carehub.core.models import IdempotencyRecord

M = TypeVar("M", bound=models.Model)
logger = logging.getLogger(__name__)

IDEMPOTENCY_HEADER = "Idempotency-Key"
IDEMPOTENCY_KEY_MAX = 100
REPLAYED_HEADER = "Idempotent-Replayed"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

IDEMPOTENCY_PARAMETER = OpenApiParameter(
    IDEMPOTENCY_HEADER,
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=True,
    description=(
        f"1 to {IDEMPOTENCY_KEY_MAX} printable characters, new for each request. Sending the "
        "same request again with the same key answers the first answer again "
        f"(`{REPLAYED_HEADER}: true`) and changes nothing; another request with the same key is "
        "a 409 (`idempotency_key_reused`)."
    ),
)


def idempotency_key(request: Request) -> str:
    """The client's `Idempotency-Key` header (400 when missing or malformed)."""
    key = request.headers.get(IDEMPOTENCY_HEADER, "").strip()
    if not key or len(key) > IDEMPOTENCY_KEY_MAX or not key.isprintable():
        raise InvalidInput(
            f"The {IDEMPOTENCY_HEADER} header is required "
            f"(1 to {IDEMPOTENCY_KEY_MAX} printable characters).",
            extra={"field": IDEMPOTENCY_HEADER},
        )
    return key


class Replayed(Exception):
    """The first answer to a request sent again: returned instead of running the view."""

    def __init__(self, response: Response) -> None:
        super().__init__("replayed")
        self.response = response


def _as_json(data: Any) -> Any:
    return json.loads(json.dumps(data, cls=JSONEncoder))


def replay_response(record: IdempotencyRecord) -> Response:
    body = record.response_body
    if isinstance(body, dict) and isinstance(body.get("replayed"), bool):
        body = {**body, "replayed": True}
    status = record.response_status or 200
    return Response(
        body, status=200 if status in (201, 202) else status, headers={REPLAYED_HEADER: "true"}
    )


class IdempotentWrites(ApiViewMixinBase):
    """Mixin for API views (before `APIView` in the bases): every write method claims its
    `Idempotency-Key` before the view runs, replays or refuses as the key's record says, and
    keeps or releases the key by the answer."""

    idempotency: Attempt | None = None

    # --- what the fingerprint covers ----------------------------------------------------------

    def idempotency_operation(self) -> str:
        return getattr(self, "audit_action", "") or f"{type(self).__name__}.{self.request.method}"

    def idempotency_target(self, request: Request) -> str:
        return request.path

    def idempotency_body(self, request: Request) -> Any:
        serializer_class = getattr(self, "InputSerializer", None)
        if serializer_class is None:
            return {}  # the operation reads no body
        serializer = serializer_class(data=request.data)
        return serializer.validated_data if serializer.is_valid() else request.data

    def idempotency_replaying(self, record: IdempotencyRecord) -> None:
        """Hook before a replay is answered (AuditedApi: scope check and audit)."""

    # --- the hooks into APIView ---------------------------------------------------------------

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        self.idempotency = None
        super().initial(request, *args, **kwargs)  # authentication, role
        if request.method not in WRITE_METHODS or not hasattr(self, request.method.lower()):
            return  # a read, or a method the resource lacks (405 follows)
        key = idempotency_key(request)
        actor_id = request.user.pk
        assert actor_id is not None  # authentication and `IsAuthenticated` ran above
        attempt = idempotency_begin(
            actor_id=actor_id,
            key=key,
            operation=self.idempotency_operation(),
            target=self.idempotency_target(request),
            body=self.idempotency_body(request),
        )
        if attempt.replay:
            self.idempotency_replaying(attempt.record)
            raise Replayed(replay_response(attempt.record))
        self.idempotency = attempt

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, Replayed):
            return exc.response
        try:
            return super().handle_exception(exc)
        except Exception:
            try:
                self._idempotency_end(500, None)  # an unexpected error: a 500 follows
            except Exception:  # the database may be what failed: the original error matters
                logger.exception("The idempotency key of a failed request was not updated")
            raise

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        self._idempotency_end(response.status_code, getattr(response, "data", None))
        return response

    def _idempotency_end(self, status: int, data: Any) -> None:
        attempt, self.idempotency = self.idempotency, None
        if attempt is None:
            return
        if status < 400:
            idempotency_finish(attempt=attempt, status=status, body=_as_json(data))
        else:
            idempotency_fail(attempt=attempt, status=status)

    # --- writes in several steps --------------------------------------------------------------

    def idempotent_create(
        self, name: str, model: type[M], create: Callable[[], M]
    ) -> tuple[M, bool]:
        """The first step of a write in several steps: the row `create` makes, and False; when
        this request resumes one whose step had committed, that row and True."""
        assert self.idempotency is not None, "only inside a write"
        created: list[M] = []

        def run() -> Any:
            created.append(create())
            return created[0].pk

        pk, reused = idempotency_step(attempt=self.idempotency, name=name, run=run)
        return (created[0] if created else model._default_manager.get(pk=pk)), reused
