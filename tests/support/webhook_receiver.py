"""A local webhook receiver for tests: a real HTTP server on 127.0.0.1 that verifies the
Standard Webhooks signature and answers as told (200, 500, slow), recording what arrived."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass
class Received:
    webhook_id: str
    body: dict[str, Any]
    verified: bool
    answered: int


@dataclass
class Receiver:
    secret: str = ""
    # Called with the number of the request (1, 2, ...): (status, seconds to wait first).
    behaviour: Callable[[int], tuple[int, float]] = lambda n: (200, 0.0)
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def delivered(self) -> list[Received]:
        """Requests answered 2xx (what the receiver accepted), in arrival order."""
        with self.lock:
            return [r for r in self.received if 200 <= r.answered < 300]

    def accepted_ids(self) -> list[str]:
        """Event ids accepted, first arrival of each (a receiver dedupes on the id)."""
        seen: list[str] = []
        for item in self.delivered():
            if item.webhook_id not in seen:
                seen.append(item.webhook_id)
        return seen


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", 0))
            raw = self.rfile.read(length)
            with receiver.lock:
                number = len(receiver.received) + 1
                status, delay = receiver.behaviour(number)
            if delay:
                time.sleep(delay)
            try:
                Webhook(receiver.secret).verify(raw, dict(self.headers.items()))
                verified = True
            except WebhookVerificationError:
                verified = False
            with receiver.lock:
                receiver.received.append(
                    Received(self.headers.get("webhook-id", ""), json.loads(raw), verified, status)
                )
            try:
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()
            except (BrokenPipeError, ConnectionResetError):  # the sender gave up waiting
                pass

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@contextmanager
def webhook_receiver(receiver: Receiver) -> Iterator[Receiver]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


def closed_port_url() -> str:
    """An address where nothing listens (a receiver that is down)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hooks"
