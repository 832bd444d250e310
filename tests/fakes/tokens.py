"""Secrets the fakes issue carry one marker, so the log scan of tests/conftest.py recognises any of them.

The marker sits after any prefix a real network uses (`sbx_at_…`), so code that looks at
prefixes behaves as against the real thing.
"""

from __future__ import annotations

import re
import secrets

MARK = "fakesecret"

# A fake's secret, or anything shaped like a JWT (Bluesky's session tokens).
LOOKS_SECRET = re.compile(rf"{MARK}[A-Za-z0-9_-]{{8,}}|eyJ[A-Za-z0-9_-]{{8,}}\.eyJ[A-Za-z0-9_-]{{8,}}\.[A-Za-z0-9_-]+")


def issue(nbytes: int = 32, prefix: str = "") -> str:
    """A fresh secret (token, client secret) in the recognisable shape."""
    return f"{prefix}{MARK}{secrets.token_urlsafe(nbytes)}"
