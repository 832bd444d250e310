"""Extensions created unbound here and bound to the app in create_app()."""

from __future__ import annotations

import redis
from flask import Flask, current_app
from flask_login import LoginManager
from flask_wtf import CSRFProtect
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

login_manager = LoginManager()
csrf = CSRFProtect()


def init_redis(app: Flask) -> None:
    app.extensions["redis"] = redis.Redis.from_url(
        app.config["REDIS_URL"],
        socket_timeout=5,
        socket_connect_timeout=2,
        health_check_interval=30,
        # A few quick retries ride out a blip; a Redis that is really down is reported in
        # well under a second (redis-py's default backs off for seconds).
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), 3),
    )


def redis_client() -> redis.Redis:
    """The app's Redis connection pool (shared by rate limits, RQ and health checks)."""
    return current_app.extensions["redis"]
