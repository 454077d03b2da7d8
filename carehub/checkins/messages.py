"""The messages a check-in sends: the request when it opens and reminders inside its window.

The stored message body holds a `{link}` placeholder: the link token is minted when the message
is actually sent (the renderer below), so no token is ever stored in plain text, and a reminder
is dropped (the suppressor) once the check-in is answered or closed.

Bodies are written in the patient's language (`Patient.language`) when the check-in opens, and
name the clinic and the instrument's one patient-facing name, the heading of the link's page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _

from carehub.checkins.instruments import instrument_name
from carehub.checkins.links import checkin_link_mint
from carehub.checkins.models import Checkin, CheckinStatus
from carehub.messaging.models import Message
from carehub.messaging.services import (
    MessageRequest,
    message_enqueue_many,
    register_preloader,
    register_renderer,
    register_suppressor,
)

REQUEST = "checkin_request"
REMINDER = "checkin_reminder"
LINK = "{link}"


def _subject(checkin: Checkin) -> str:
    return f"checkin:{checkin.pk}"


# Where `preload_checkins` keeps a message's check-in (None: it no longer exists).
_PRELOADED = "_preloaded_checkin"


def _checkin_id(message: Message) -> int | None:
    kind, _, pk = message.subject_key.partition(":")
    return int(pk) if kind == "checkin" and pk.isdigit() else None


def preload_checkins(messages: Sequence[Message]) -> None:
    """The check-ins of a batch of messages in one query, for the suppressor and the renderer."""
    ids = {pk for message in messages if (pk := _checkin_id(message)) is not None}
    found = Checkin.objects.in_bulk(ids)
    for message in messages:
        pk = _checkin_id(message)
        setattr(message, _PRELOADED, found.get(pk) if pk is not None else None)


def _checkin_of(message: Message) -> Checkin | None:
    if hasattr(message, _PRELOADED):
        checkin: Checkin | None = getattr(message, _PRELOADED)
        return checkin
    pk = _checkin_id(message)
    return None if pk is None else Checkin.objects.filter(pk=pk).first()


def _bodies(checkin: Checkin) -> tuple[str, str]:
    """The request's and the reminders' bodies, in the active language."""
    values = {
        "clinic": checkin.patient.clinic.name,
        "name": instrument_name(checkin.instrument).lower(),
        "link": LINK,
    }
    request = _("%(clinic)s: your %(name)s is ready. It takes a minute: %(link)s") % values
    reminder = _("%(clinic)s: a reminder, your %(name)s is still open. %(link)s") % values
    return request, reminder


def enqueue_requests_and_reminders(batch: list[tuple[Checkin, list[datetime]]]) -> None:
    """Inside the transaction that opens the check-ins: every request and reminder of the
    batch in one `message_enqueue_many` (keys `checkin:<id>:request`, `...:reminder:<n>`)."""
    requests: list[MessageRequest] = []
    for checkin, reminders in batch:
        with translation.override(checkin.patient.language):
            texts = _bodies(checkin)
        request = MessageRequest(
            patient=checkin.patient,
            recipient="patient",
            purpose=REQUEST,
            body=texts[0],
            idempotency_key=f"checkin:{checkin.pk}:request",
            subject_key=_subject(checkin),
            why=f"{checkin.instrument} check-in #{checkin.sequence} of series "
            f"{checkin.series.series}",
        )
        requests.append(request)
        requests.extend(
            replace(
                request,
                purpose=REMINDER,
                body=texts[1],
                idempotency_key=f"checkin:{checkin.pk}:reminder:{number}",
                not_before=at,
                why=f"reminder {number} for check-in #{checkin.sequence} (not answered yet)",
            )
            for number, at in enumerate(reminders, start=1)
        )
    message_enqueue_many(requests)


def suppress_when_closed(message: Message) -> str | None:
    checkin = _checkin_of(message)
    if checkin is None:
        return "the check-in no longer exists"
    if checkin.status == CheckinStatus.ANSWERED:
        return "already answered"
    if checkin.status != CheckinStatus.OPEN:
        return f"the check-in is {checkin.get_status_display().lower()}"
    return None


def render_with_link(message: Message, channel: str) -> str:
    checkin = _checkin_of(message)
    if checkin is None or LINK not in message.body:
        return message.body
    token = checkin_link_mint(checkin=checkin)
    return message.body.replace(LINK, f"{settings.PUBLIC_BASE_URL.rstrip('/')}/c/{token}")


def register() -> None:
    for purpose in (REQUEST, REMINDER):
        register_preloader(purpose, preload_checkins)
        register_suppressor(purpose, suppress_when_closed)
        register_renderer(purpose, render_with_link)
