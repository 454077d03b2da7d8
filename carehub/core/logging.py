"""Logging filters: patient link tokens and search words never reach a log line."""

from __future__ import annotations

import logging
import re

# /c/<token> is the patient check-in link; the token is a bearer credential.
TOKEN_PATH = re.compile(r"/c/[A-Za-z0-9_\-]{8,}")
REDACTED = "/c/[redacted]"
# Search words (the API's `search`, the caseload's `q`) are often patient names: the parameter
# stays, its value goes, in a request line, a URL, a referer or a bare query string.
SEARCH_PARAMETER = re.compile(r"(^|[?&;])(search|q)=[^&;#\s\"']*")
REDACTED_SEARCH = r"\1\2=[redacted]"


def redact(text: str) -> str:
    """The text without link tokens (also used for message texts shown by the API)."""
    return TOKEN_PATH.sub(REDACTED, text)


def redact_for_log(text: str) -> str:
    """The text without link tokens nor search words: for log lines."""
    return SEARCH_PARAMETER.sub(REDACTED_SEARCH, redact(text))


def _shows_secrets(text: str) -> bool:
    return bool(TOKEN_PATH.search(text) or SEARCH_PARAMETER.search(text))


class RedactLinkTokens(logging.Filter):
    """Rewrites every record passing through a handler whose message shows a link token or
    search words."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if _shows_secrets(message):
            record.msg, record.args = redact_for_log(message), ()
        request = getattr(record, "request", None)
        if request is not None and (
            TOKEN_PATH.search(getattr(request, "path", ""))
            or _shows_secrets("?" + getattr(request, "META", {}).get("QUERY_STRING", ""))
        ):
            record.request = None  # error handlers would format the request path otherwise
        return True
