"""Hooks other apps register for a purpose (from their AppConfig.ready(), so that web processes
and workers have the same ones): suppressors say a message is no longer needed, renderers turn
a message's template into the text for a channel at send time."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from carehub.messaging.models import Message

Suppressor = Callable[["Message"], str | None]
Renderer = Callable[["Message", str], str]

_suppressors: dict[str, list[Suppressor]] = {}
_renderers: dict[str, Renderer] = {}


def add_suppressor(purpose: str, fn: Suppressor) -> None:
    registered = _suppressors.setdefault(purpose, [])
    if fn not in registered:
        registered.append(fn)


def add_renderer(purpose: str, fn: Renderer) -> None:
    _renderers[purpose] = fn


def suppression_reason(message: Message) -> str | None:
    """The first reason a registered suppressor gives to drop the message, if any."""
    for fn in _suppressors.get(message.purpose, []):
        reason = fn(message)
        if reason:
            return reason
    return None


def render(message: Message, channel: str) -> str:
    renderer = _renderers.get(message.purpose)
    return message.body if renderer is None else renderer(message, channel)
