"""GET /healthz reports the database, Redis and the dispatcher, and answers 503 when one is down."""

from __future__ import annotations

from datetime import UTC, datetime

from saas import create_app, dispatcher
from saas.embedded import free_port


def test_healthy(client, redis_conn):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"database": "ok", "redis": "ok", "dispatcher": {"last_tick": None}}


def test_reports_the_dispatchers_last_tick(app, client, redis_conn):
    before = datetime.now(UTC)
    with app.app_context():
        dispatcher.tick(redis_conn)
    last_tick = datetime.fromisoformat(client.get("/healthz").json["dispatcher"]["last_tick"])
    assert before <= last_tick <= datetime.now(UTC)


def _app_with(app, **overrides):
    return create_app(
        {**{k: app.config[k] for k in ("DATABASE_URL", "REDIS_URL", "MAIL_DIR")}, "TESTING": True, **overrides}
    )


def test_redis_down_is_503_and_named(app):
    broken = _app_with(app, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    response = broken.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json["database"] == "ok"
    assert response.json["redis"].startswith("error: ")


def test_database_down_is_503_and_named(app):
    broken = _app_with(app, DATABASE_URL=f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing")
    response = broken.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json["redis"] == "ok"
    assert response.json["database"].startswith("error: ")
