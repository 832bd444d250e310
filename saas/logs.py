"""Logging: one format for every process, and no link token in an access log (ASVS 16.2.5).

Review, connect, invitation, feed, media, verification and reset links carry their secret in
the path, and access logs (gunicorn's, and werkzeug's in development) write the request line.
A filter on those loggers replaces any long token-shaped path segment before it is written.
"""

from __future__ import annotations

import logging
import re

# tenants/tokens.py makes 43 characters; itsdangerous tokens (verify, reset, media) are longer and dotted.
TOKEN_SEGMENT = re.compile(r"(?<=/)[A-Za-z0-9_\-.~]{32,}")
REDACTED = "[redacted]"
ACCESS_LOGGERS = ("gunicorn.access", "werkzeug")


def redact(text: str) -> str:
    return TOKEN_SEGMENT.sub(REDACTED, text)


class RedactLinkTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


_redact_filter = RedactLinkTokens()


def init() -> None:
    """Idempotent: create_app calls it for every app (a logger keeps one instance of the filter)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx logs every request at INFO; publishers.http logs the ones that went wrong, without tokens.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    for name in ACCESS_LOGGERS:
        logging.getLogger(name).addFilter(_redact_filter)
