"""`Idempotency-Key` on POST: the first answer is kept in the same transaction as the change it made.

`begin` claims the key with `INSERT … ON CONFLICT DO NOTHING`: a second request with the same key waits
on the unique index until the first commits (then replays its answer) or rolls back (then runs itself).
Only successful answers are kept, in the transaction that made the change, so a refused request can be
corrected and sent again with the same key.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import orjson
import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import Response
from sqlalchemy.dialects.postgresql import insert

from saas.api.models import IdempotentResponse
from saas.api.problems import invalid
from tenants.scoping import bound_tenant_id, system_session

REPLAYED_HEADERS = ("Location", "ETag")
# How long a key is remembered: a client retrying after a lost answer does so within minutes, not days.
KEPT = timedelta(hours=24)


def begin(session: so.Session, token_id: int, key: str, request_hash: str) -> Response | None:
    """Claim `key` for this request; the stored answer when it was used before for the same request."""
    claimed = session.execute(
        insert(IdempotentResponse)
        .values(tenant_id=bound_tenant_id(session), token_id=token_id, key=key, request_hash=request_hash)
        .on_conflict_do_nothing(index_elements=["tenant_id", "token_id", "key"])
        .returning(IdempotentResponse.id)
    ).scalar()
    if claimed is not None:
        return None
    earlier = session.scalar(
        sa.select(IdempotentResponse).where(IdempotentResponse.token_id == token_id, IdempotentResponse.key == key)
    )
    assert earlier is not None and earlier.status is not None  # rows are committed only with their answer
    if earlier.request_hash != request_hash:
        raise invalid(
            "Idempotency-Key",
            "This key was already used for a different request; use a new key for a new request.",
        )
    body = json.dumps(earlier.body) if earlier.body is not None else None
    response = Response(body, status=earlier.status, mimetype="application/json" if body else None)
    response.headers.update(earlier.headers or {})
    response.headers["Idempotent-Replayed"] = "true"
    return response


def finish(session: so.Session, token_id: int, key: str, response: Response) -> None:
    """Keep the answer with the claim, to be committed with the change it describes."""
    body = response.get_data()
    session.execute(
        sa.update(IdempotentResponse)
        .where(IdempotentResponse.token_id == token_id, IdempotentResponse.key == key)
        .values(
            status=response.status_code,
            body=orjson.loads(body) if body else None,
            headers={h: response.headers[h] for h in REPLAYED_HEADERS if h in response.headers},
        )
        .execution_options(synchronize_session=False)  # no object of this table is loaded to keep in step
    )


def prune(now: datetime, limit: int = 5000) -> int:
    """Forget keys older than KEPT, every workspace's (the clock runs it hourly); returns how many."""
    with system_session() as session:  # the clock keeps every workspace's key table bounded
        oldest = sa.select(IdempotentResponse.id).where(IdempotentResponse.created_at < now - KEPT).limit(limit)
        deleted = session.execute(
            sa.delete(IdempotentResponse).where(IdempotentResponse.id.in_(oldest.scalar_subquery()))
        ).rowcount
        session.commit()
    return deleted
