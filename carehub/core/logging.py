"""Logging filters: patient link tokens never reach a log line."""

from __future__ import annotations

import logging
import re

# /c/<token> is the patient check-in link; the token is a bearer credential.
TOKEN_PATH = re.compile(r"/c/[A-Za-z0-9_\-]{8,}")
REDACTED = "/c/[redacted]"


def redact(text: str) -> str:
    return TOKEN_PATH.sub(REDACTED, text)


class RedactLinkTokens(logging.Filter):
    """Rewrites every record passing through a handler whose message shows a link token."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if TOKEN_PATH.search(message):
            record.msg, record.args = redact(message), ()
        request = getattr(record, "request", None)
        if request is not None and TOKEN_PATH.search(getattr(request, "path", "")):
            record.request = None  # error handlers would format the request path otherwise
        return True
