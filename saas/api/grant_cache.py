"""Who a token speaks for, remembered by each process until anything that decides it changes.

A grant (saas.api.tokens) is read from five tables: api_tokens, memberships, staff_assignments, tenants
and users. Every statement that writes one of them through the app's engines, whatever issues it (the
ORM, Core, raw SQL, a cascade's parent row, TRUNCATE), marks its connection; when that connection goes
back to the pool, after its COMMIT, the epoch in Redis takes a new random value. A request reads the epoch
before it trusts a remembered grant, and remembers a grant it looked up under the epoch it read *before*
the lookup. So a change that has been committed stops a token at its next request, in every process,
and a lookup racing a change is remembered under an epoch that is already stale.

Writes from outside the app (psql, a migration) are not seen: a remembered grant also expires after
`LIFETIME`, which bounds how long such a change takes to reach the API.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Callable
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
# Statements that are not compiled by SQLAlchemy (text, exec_driver_sql, a CTE's DML) are read as SQL.
_WRITES = re.compile(
    r"\b(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM|MERGE\s+INTO)\s+(?:ONLY\s+)?(?:\w+\.)?\"?(?:" + "|".join(TABLES) + r")\b"
    r"|\bTRUNCATE\b[^;]*\b(?:" + "|".join(TABLES) + r")\b",
    re.IGNORECASE,
)
_WRITING_VERBS = ("INSERT", "UPDATE", "DELETE", "MERGE", "TRUNCATE", "WITH")
# An execution option for a write that cannot change a grant (a token's last use), so it does not
# flush every process's grants.
UNCHANGED = "grants_unchanged"
_MARK = "grants_changed"


@dataclass
class Remembered:
    grant: Any
    epoch: bytes | None
    expires: float  # time.monotonic()
    last_used_at: datetime  # as this process last wrote it


def current_epoch() -> bytes | None:
    value: bytes | None = redis_client().get(EPOCH_KEY)
    return value


def _grants() -> dict[Any, Remembered]:
    remembered: dict[Any, Remembered] = current_app.extensions.setdefault("api_grants", {})
    return remembered


def recall(key: Any, epoch: bytes | None) -> Remembered | None:
    """The grant remembered for `key`, if it was looked up under `epoch` and has not expired."""
    found = _grants().get(key)
    if found is None or found.epoch != epoch or found.expires < time.monotonic():
        return None
    return found


def remember(key: Any, grant: Any, epoch: bytes | None, last_used_at: datetime) -> None:
    grants = _grants()
    if len(grants) >= MAX_REMEMBERED:
        for old in list(grants)[: MAX_REMEMBERED // 2]:
            grants.pop(old, None)  # another thread may be forgetting it too
    grants[key] = Remembered(grant, epoch, time.monotonic() + LIFETIME, last_used_at)


def writes_grant_tables(statement: str, context: Any) -> bool:
    if context is not None and context.execution_options.get(UNCHANGED):
        return False
    compiled = getattr(context, "compiled", None)
    if compiled is not None and isinstance(compiled.statement, sa.sql.dml.UpdateBase):
        return compiled.statement.table.name in TABLES  # type: ignore[attr-defined]
    if compiled is not None and not isinstance(compiled.statement, sa.TextClause):
        return False  # a compiled SELECT (the CTE writes we issue are text)
    # Only these can write (a SELECT cannot); the pages the API reads are long, and read hundreds of times a second.
    if not statement.lstrip()[:8].upper().startswith(_WRITING_VERBS):
        return False
    return _WRITES.search(statement) is not None


def watch(app: Flask, engine: sa.Engine) -> None:
    """Mark `engine`'s connections that write a grant table; move the epoch when such a connection is returned."""
    bump = _bumper(app)

    @sa.event.listens_for(engine, "after_cursor_execute")
    def _note(conn: Any, _cursor: Any, statement: str, _params: Any, context: Any, _many: bool) -> None:
        if writes_grant_tables(statement, context):
            conn.info[_MARK] = True

    @sa.event.listens_for(engine, "checkin")
    def _returned(_dbapi_connection: Any, record: Any) -> None:
        if record.info.pop(_MARK, False):
            bump()


def _bumper(app: Flask) -> Callable[[], None]:
    def bump() -> None:
        client: redis.Redis = app.extensions["redis"]
        try:
            client.set(EPOCH_KEY, secrets.token_hex(8))
        except redis.RedisError:
            # The change is committed; with Redis away the API cannot read the epoch either (it answers
            # errors, not stale grants), and what it remembered expires within LIFETIME.
            log.exception("could not move the API grants epoch")

    return bump
