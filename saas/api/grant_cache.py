"""Who a token speaks for, remembered by each process until anything that decides it changes.

A grant (saas.api.tokens) is read from five tables: api_tokens, memberships, staff_assignments, tenants
and users. Every statement that writes one of them through the app's engines, whatever issues it (the
ORM, Core, raw SQL, a cascade's parent row, TRUNCATE), gives the epoch in Redis a new random value
twice: just before the statement runs (if Redis refuses, so does the change: nobody is told "revoked"
while every process still trusts the token) and when its connection goes back to the pool, after the
COMMIT. A request reads the epoch before it trusts a remembered grant, and remembers a grant it looked
up under the epoch it read *before* the lookup; so a change that has been committed stops a token at its
next request, in every process, and a lookup racing a change is remembered under an epoch already stale.
Nothing is remembered while the epoch is missing (a Redis that restarted empty): it is set first.

Writes from outside the app (psql, a migration) are not seen: a remembered grant also expires after
`LIFETIME`, which bounds how long such a change takes to reach the API.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis
import sqlalchemy as sa
from flask import Flask, current_app

from saas.extensions import redis_client

log = logging.getLogger(__name__)

EPOCH_KEY = "api:grants-epoch"
LIFETIME = 30.0  # seconds
MAX_REMEMBERED = 10_000  # per process; past it, the oldest half is forgotten
TABLES = ("api_tokens", "memberships", "staff_assignments", "tenants", "users")
# Every statement is read as the SQL sent, whoever built it (ORM, Core, text, a CTE, an alias): only one
# that starts with a verb that can write is searched, for a write to one of the tables.
_WRITES = re.compile(
    r"\b(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM|MERGE\s+INTO|COPY)\s+(?:ONLY\s+)?(?:\"?\w+\"?\.)?\"?(?:"
    + "|".join(TABLES)
    + r")\b|\bTRUNCATE\b[^;]*\b(?:"
    + "|".join(TABLES)
    + r")\b",
    re.IGNORECASE,
)
_LEADING_COMMENTS = re.compile(r"\s*(?:(?:--[^\n]*(?:\n|$)|/\*.*?\*/)\s*)*", re.DOTALL)
_WRITING_VERBS = ("INSERT", "UPDATE", "DELETE", "MERGE", "TRUNCATE", "WITH", "COPY")
# An execution option for a write that cannot change a grant (a token's last use), so it does not
# flush every process's grants.
UNCHANGED = "grants_unchanged"
_MARK = "grants_changed"


@dataclass
class Remembered:
    grant: Any
    epoch: bytes
    expires: float  # time.monotonic()
    last_used_at: datetime  # as this process last wrote it


def current_epoch() -> bytes:
    client = redis_client()
    value: bytes | None = client.get(EPOCH_KEY)
    if value is None:  # a Redis that lost it: a new value, which no grant remembered before can match
        client.set(EPOCH_KEY, secrets.token_hex(8), nx=True)
        value = client.get(EPOCH_KEY)
    return value or b""


def _grants() -> dict[Any, Remembered]:
    remembered: dict[Any, Remembered] = current_app.extensions.setdefault("api_grants", {})
    return remembered


def recall(key: Any, epoch: bytes) -> Remembered | None:
    """The grant remembered for `key`, if it was looked up under `epoch` and has not expired."""
    found = _grants().get(key)
    if found is None or found.epoch != epoch or found.expires < time.monotonic():
        return None
    return found


def remember(key: Any, grant: Any, epoch: bytes, last_used_at: datetime) -> None:
    grants = _grants()
    if len(grants) >= MAX_REMEMBERED:
        for old in list(grants)[: MAX_REMEMBERED // 2]:
            grants.pop(old, None)  # another thread may be forgetting it too
    grants[key] = Remembered(grant, epoch, time.monotonic() + LIFETIME, last_used_at)


def writes_grant_tables(statement: str, context: Any) -> bool:
    if context is not None and context.execution_options.get(UNCHANGED):
        return False
    # A SELECT cannot write; the API's pages are long statements read hundreds of times a second.
    head = _LEADING_COMMENTS.match(statement[:300])
    if not statement[head.end() if head else 0 :][:8].upper().startswith(_WRITING_VERBS):
        return False
    return _WRITES.search(statement) is not None


def watch(app: Flask, engine: sa.Engine) -> None:
    """Move the epoch before any statement that writes a grant table, and again once its connection is back."""

    def move() -> None:
        client: redis.Redis = app.extensions["redis"]
        client.set(EPOCH_KEY, secrets.token_hex(8))

    @sa.event.listens_for(engine, "before_cursor_execute")
    def _note(conn: Any, _cursor: Any, statement: str, _params: Any, context: Any, _many: bool) -> None:
        if writes_grant_tables(statement, context):
            # Before the write runs: if Redis refuses, the statement fails and its transaction is rolled
            # back like any failed statement's (an error in the COMMIT event would leave it half open).
            move()
            conn.info[_MARK] = True

    @sa.event.listens_for(engine, "checkin")
    def _returned(_dbapi_connection: Any, record: Any) -> None:
        if record.info.pop(_MARK, False):
            try:
                move()  # after the COMMIT: a lookup that ran between the first move and the COMMIT is stale
            except Exception:  # noqa: BLE001 (the pool must get its connection back whatever happens)
                log.exception("could not move the API grants epoch after a commit")
