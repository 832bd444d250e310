"""GET /healthz: is the database, Redis and the dispatcher alive?"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Blueprint, jsonify

from saas import db, dispatcher
from saas.extensions import redis_client

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Any:
    report: dict[str, Any] = {}
    try:
        with db.engine().connect() as connection:
            connection.execute(sa.text("SELECT 1"))
        report["database"] = "ok"
    except Exception as exc:  # any failure is the answer, not a crash
        report["database"] = f"error: {type(exc).__name__}"
    try:
        redis_client().ping()
        report["redis"] = "ok"
        last_tick = dispatcher.last_tick(redis_client())
    except Exception as exc:
        report["redis"] = f"error: {type(exc).__name__}"
        last_tick = None
    report["dispatcher"] = {"last_tick": last_tick.isoformat() if last_tick else None}
    healthy = report["database"] == "ok" and report["redis"] == "ok"
    return jsonify(report), 200 if healthy else 503
