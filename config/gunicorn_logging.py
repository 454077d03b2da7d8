"""gunicorn's access log without patient link tokens or search words."""

from typing import Any

from gunicorn.glogging import Logger

from carehub.core.logging import redact_for_log


class RedactingLogger(Logger):
    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        # Every text atom: the request line (r), path (U), query string (q), referer (f), and
        # the {...}i / {...}e forms of the same headers and environ entries.
        for key, value in atoms.items():
            if isinstance(value, str):
                atoms[key] = redact_for_log(value)
        return atoms
