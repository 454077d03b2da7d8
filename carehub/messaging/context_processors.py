"""Template context for the staff pages' navigation."""

from __future__ import annotations

from django.http import HttpRequest

from carehub.messaging.selectors import recording_backends_configured


def development_pages(request: HttpRequest) -> dict[str, bool]:
    """Whether the "Sent messages" page exists (only with the recording backends)."""
    return {"sent_messages_available": recording_backends_configured()}
