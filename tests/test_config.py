"""Configuration refuses unsafe production settings."""

from __future__ import annotations

import pytest

from saas import config


def production(**overrides):
    settings = {
        "PRODUCTION": True,
        "SECRET_KEY": "k" * 40,
        "DATABASE_URL": "postgresql+psycopg://multipost_app@db/app",
        "SYSTEM_DATABASE_URL": "postgresql+psycopg://multipost_system@db/app",
        "REDIS_URL": "redis://cache:6379/0",
        "PUBLIC_BASE_URL": "https://app.example.com",
        "ENCRYPTION_KEYS": "a" * 43,
    }
    return {**settings, **overrides}


def test_production_with_safe_settings_starts():
    config.check(production())


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"SECRET_KEY": config.DEV_SECRET_KEY}, "SECRET_KEY"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY"),
        ({"DATABASE_URL": None}, "DATABASE_URL"),
        ({"SYSTEM_DATABASE_URL": None}, "SYSTEM_DATABASE_URL"),
        ({"SYSTEM_DATABASE_URL": "postgresql+psycopg://multipost_app@db/app"}, "another role"),
        ({"PUBLIC_BASE_URL": "http://app.example.com"}, "https"),
        ({"ENCRYPTION_KEYS": ""}, "ENCRYPTION_KEYS"),
    ],
)
def test_production_refuses_unsafe_settings(overrides, complaint):
    with pytest.raises(config.ConfigError, match=complaint):
        config.check(production(**overrides))


def test_production_has_no_fallback_for_the_system_and_migration_roles(monkeypatch):
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("DATABASE_URL", "postgres://multipost_app@db/app")
    monkeypatch.delenv("SYSTEM_DATABASE_URL", raising=False)
    monkeypatch.delenv("MIGRATION_DATABASE_URL", raising=False)
    settings = config.load()
    assert settings["SYSTEM_DATABASE_URL"] is None and settings["MIGRATION_DATABASE_URL"] is None


def test_development_falls_back_to_database_url(monkeypatch):
    monkeypatch.delenv("APP_ENV", raising=False)
    monkeypatch.delenv("FLASK_ENV", raising=False)
    monkeypatch.setenv("DATABASE_URL", "postgres://me@localhost/dev")
    monkeypatch.delenv("SYSTEM_DATABASE_URL", raising=False)
    monkeypatch.setenv("MIGRATION_DATABASE_URL", "postgres://owner@localhost/dev")
    settings = config.load()
    assert settings["SYSTEM_DATABASE_URL"] == "postgresql+psycopg://me@localhost/dev"
    assert settings["MIGRATION_DATABASE_URL"] == "postgresql+psycopg://owner@localhost/dev"


def test_development_allows_the_dev_key():
    config.check(production(PRODUCTION=False, SECRET_KEY=config.DEV_SECRET_KEY))


def test_production_env_refuses_dev_key_at_app_creation(monkeypatch, app):
    from saas import create_app

    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(config.ConfigError, match="SECRET_KEY"):
        create_app({"DATABASE_URL": app.config["DATABASE_URL"], "REDIS_URL": app.config["REDIS_URL"]})


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@h/db", "postgresql+psycopg://u:p@h/db"),
        ("postgresql://u@h:5433/db", "postgresql+psycopg://u@h:5433/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
    ],
)
def test_database_url_spellings(given, expected):
    assert config.normalise_database_url(given) == expected


def test_cookies_are_secure_under_https(monkeypatch):
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://app.example.com")
    assert config.load()["SESSION_COOKIE_SECURE"] is True
    monkeypatch.setenv("PUBLIC_BASE_URL", "http://127.0.0.1:5000")
    assert config.load()["SESSION_COOKIE_SECURE"] is False


def test_fetching_may_reach_loopback_only_outside_production(monkeypatch):
    monkeypatch.delenv("FETCH_LOOPBACK_HOSTS", raising=False)
    assert config.load()["FETCH_LOOPBACK_HOSTS"] == ["127.0.0.1", "localhost"]
    monkeypatch.setenv("APP_ENV", "production")
    assert config.load()["FETCH_LOOPBACK_HOSTS"] == []
    assert config.load()["FETCH_ALLOWED_PORTS"] == [80, 443]
