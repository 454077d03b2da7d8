"""Template context for the staff pages' navigation."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

from carehub.messaging.selectors import recording_backends_configured


def development_pages(request: HttpRequest) -> dict[str, bool]:
    """Whether the "Sent messages" page exists (DEV_PAGES, and the recording backends)."""
    return {"sent_messages_available": settings.DEV_PAGES and recording_backends_configured()}
