"""Hooks other apps register for a purpose (from their AppConfig.ready(), so that web processes
and workers have the same ones): suppressors say a message is no longer needed, renderers turn
a message's template into the text for a channel at send time, and preloaders read what those
two need for a whole batch of messages at once (so a batch costs a constant number of queries).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from carehub.messaging.models import Message

Suppressor = Callable[["Message"], str | None]
Renderer = Callable[["Message", str], str]
Preloader = Callable[[Sequence["Message"]], None]

_suppressors: dict[str, list[Suppressor]] = {}
_renderers: dict[str, Renderer] = {}
_preloaders: dict[str, list[Preloader]] = {}


def add_suppressor(purpose: str, fn: Suppressor) -> None:
    registered = _suppressors.setdefault(purpose, [])
    if fn not in registered:
        registered.append(fn)


def add_renderer(purpose: str, fn: Renderer) -> None:
    _renderers[purpose] = fn


def add_preloader(purpose: str, fn: Preloader) -> None:
    registered = _preloaders.setdefault(purpose, [])
    if fn not in registered:
        registered.append(fn)


def preload(messages: Sequence[Message]) -> None:
    """Each registered preloader once, with the messages of the batch it registered for."""
    groups: dict[Preloader, list[Message]] = {}
    for message in messages:
        for fn in _preloaders.get(message.purpose, []):
            groups.setdefault(fn, []).append(message)
    for fn, group in groups.items():
        fn(group)


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


def render_many(items: Sequence[tuple[Message, str]]) -> dict[int, str | Exception]:
    """The text of each (message, channel), or the exception its renderer raised (that message
    fails alone; the others of the batch are sent)."""
    texts: dict[int, str | Exception] = {}
    for message, channel in items:
        try:
            texts[message.pk] = render(message, channel)
        except Exception as exc:  # recorded as that message's failed attempt by the caller
            texts[message.pk] = exc
    return texts
