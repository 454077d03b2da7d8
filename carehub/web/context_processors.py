"""Template context for every staff page."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest


def sandbox_banner(request: HttpRequest) -> dict[str, Any]:
    """A sandbox clinic's pages say so, with its test clock (ADR 0024): nobody mistakes them for
    real care. Nothing for a production clinic (the clinic is the user's, already loaded)."""
    user = getattr(request, "user", None)
    clinic = getattr(user, "clinic", None) if user is not None and user.is_authenticated else None
    if clinic is None or not clinic.is_sandbox:
        return {}
    return {"sandbox_clinic": clinic}
