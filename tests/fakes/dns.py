"""StubResolver: DNS for tests of saas.safefetch, so public-looking names resolve without traffic leaving the machine.

resolver = StubResolver({"intranet.example": ["10.0.0.5"]})
app.extensions["fetch_resolver"] = resolver   # what saas.safefetch.app_policy() uses
"""

from __future__ import annotations

from saas.safefetch import FetchRefused


class StubResolver:
    """Names → addresses, and a record of every lookup; an unknown name has no DNS answer."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.lookups: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        if host not in self.answers:
            raise FetchRefused(f"{host} could not be found (no DNS answer).")
        return self.answers[host]
