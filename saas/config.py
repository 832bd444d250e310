"""Settings from the environment. The only module that reads os.environ."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEV_SECRET_KEY = "dev-only-secret-key-do-not-use-in-production"


class ConfigError(RuntimeError):
    """The configuration is unsafe or incomplete; the message says which variable to set."""


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def normalise_database_url(url: str) -> str:
    """Accept the `postgres://` spellings hosts hand out and use the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def is_production() -> bool:
    return "production" in {_env("APP_ENV", ""), _env("FLASK_ENV", "")}


def load() -> dict[str, Any]:
    """Return the application settings read from the environment."""
    var_dir = Path(_env("VAR_DIR", str(PROJECT_ROOT / "var")) or "var")
    public_base_url = (_env("PUBLIC_BASE_URL", "http://127.0.0.1:5000") or "").rstrip("/")
    database_url = _env("DATABASE_URL")
    secret_key = _env("SECRET_KEY", DEV_SECRET_KEY) or DEV_SECRET_KEY
    return {
        "SECRET_KEY": secret_key,
        # Comma-separated, newest first; development derives one from SECRET_KEY.
        "ENCRYPTION_KEYS": _env("ENCRYPTION_KEYS") or ("" if is_production() else _dev_encryption_key(secret_key)),
        # Publishing pipeline
        "SANDBOX_BASE_URL": (_env("SANDBOX_BASE_URL") or f"{public_base_url}/sandbox").rstrip("/"),
        # Fetching addresses people type (media by URL, their Mastodon instance or Bluesky server): only public
        # addresses on these ports. FETCH_LOOPBACK_HOSTS names local servers that may be on loopback (the fakes
        # `make run` and the tests start on 127.0.0.1); none in production.
        "FETCH_ALLOWED_PORTS": _int_list(_env("FETCH_ALLOWED_PORTS", "80,443") or ""),
        "FETCH_LOOPBACK_HOSTS": _word_list(
            _env("FETCH_LOOPBACK_HOSTS", "" if is_production() else "127.0.0.1,localhost") or ""
        ),
        "FETCH_TIMEOUT_SECONDS": float(_env("FETCH_TIMEOUT_SECONDS", "30") or 30),
        # Mastodon: the instance is per channel; http:// instances (local fakes) only outside production.
        "MASTODON_SETTINGS": {
            "client_name": _env("MASTODON_CLIENT_NAME", "Multipost") or "Multipost",
            "website": public_base_url,
            "allow_http": "0" if is_production() else "1",
        },
        # Bluesky: the PDS is per channel (this is the connect form's default); post links point at app_url.
        "BLUESKY_SETTINGS": {
            "pds_url": _env("BLUESKY_PDS_URL", "https://bsky.social") or "https://bsky.social",
            "app_url": _env("BLUESKY_APP_URL", "https://bsky.app") or "https://bsky.app",
            "allow_http": "0" if is_production() else "1",
        },
        # OAuth networks: app credentials and API addresses (tests and `make run` point these at local fakes).
        # API versions are settings so a sunset is a configuration change, not a release.
        "X_SETTINGS": _oauth_settings(
            "X", api_url="https://api.x.com", authorize_url="https://x.com/i/oauth2/authorize"
        ),
        "LINKEDIN_SETTINGS": _oauth_settings(
            "LINKEDIN",
            api_url="https://api.linkedin.com",
            authorize_url="https://www.linkedin.com/oauth/v2/authorization",
            token_url="https://www.linkedin.com/oauth/v2/accessToken",
        )
        | {"version": _env("LINKEDIN_VERSION", "202601") or "202601"},
        "FACEBOOK_PAGES_SETTINGS": _meta_settings("FACEBOOK"),
        "INSTAGRAM_SETTINGS": _meta_settings("INSTAGRAM"),
        "THREADS_SETTINGS": _oauth_settings(
            "THREADS", graph_url="https://graph.threads.net", authorize_url="https://threads.net/oauth/authorize"
        )
        | {"version": _env("THREADS_API_VERSION", "v1.0") or "v1.0"},
        # `make run` starts local fakes of both and offers them on the Channels page.
        "MASTODON_LOCAL_URL": _env("MASTODON_LOCAL_URL"),
        "BLUESKY_LOCAL_PDS_URL": _env("BLUESKY_LOCAL_PDS_URL"),
        # Billing (billing/): off unless a Stripe secret key is set; `make run` points it at the local fake.
        **_billing_settings(),
        "PUBLISH_LEASE_SECONDS": int(_env("PUBLISH_LEASE_SECONDS", "180") or 180),
        "PUBLISH_BATCH_SIZE": int(_env("PUBLISH_BATCH_SIZE", "200") or 200),
        "PUBLISH_CLAIM_LIMIT": int(_env("PUBLISH_CLAIM_LIMIT", "1000") or 1000),
        "PUBLISH_THREADS": int(_env("PUBLISH_THREADS", "32") or 32),
        "PUBLISH_MAX_ATTEMPTS": int(_env("PUBLISH_MAX_ATTEMPTS", "6") or 6),
        "NETWORK_TIMEOUT_SECONDS": float(_env("NETWORK_TIMEOUT_SECONDS", "20") or 20),
        # Outgoing webhooks: how long a receiver may take, and how many days of failing switch an endpoint off.
        "WEBHOOK_TIMEOUT_SECONDS": float(_env("WEBHOOK_TIMEOUT_SECONDS", "10") or 10),
        "WEBHOOK_DISABLE_AFTER_DAYS": int(_env("WEBHOOK_DISABLE_AFTER_DAYS", "3") or 3),
        "WEBHOOK_LOG_DAYS": int(_env("WEBHOOK_LOG_DAYS", "30") or 30),  # events and their delivery log kept
        "PRODUCTION": is_production(),
        "DATABASE_URL": normalise_database_url(database_url) if database_url else None,
        # Row-level security (saas/rls.py): the app role above is subject to it; the system role (BYPASSRLS) serves
        # only tenants.system_session; migrations run as the tables' owner. Outside production both default to
        # DATABASE_URL (a single-role development database then has no second wall).
        "SYSTEM_DATABASE_URL": _database_url("SYSTEM_DATABASE_URL", database_url),
        "MIGRATION_DATABASE_URL": _database_url("MIGRATION_DATABASE_URL", database_url),
        "REDIS_URL": _env("REDIS_URL"),
        "PUBLIC_BASE_URL": public_base_url,
        "MAIL_URL": _env("MAIL_URL"),
        "MAIL_FROM": _env("MAIL_FROM", "Multipost <no-reply@multipost.localhost>"),
        "MAIL_DIR": Path(_env("MAIL_DIR", str(var_dir / "mail")) or ""),
        "VAR_DIR": var_dir,
        # How long a signed media address (for networks that download files themselves) keeps working.
        "MEDIA_LINK_SECONDS": int(_env("MEDIA_LINK_SECONDS", str(7 * 24 * 3600)) or 0),
        **cookie_settings(public_base_url),
        # Sessions (saas.identity.sessions): ended after the idle timeout unseen, and at the absolute timeout
        # however busy. "Keep me logged in" replaces both with one lifetime of at most 30 days; the cookie of
        # such a session is the only permanent one, and lives as long.
        "SESSION_IDLE_TIMEOUT": timedelta(hours=float(_env("SESSION_IDLE_HOURS", "12") or 12)),
        "SESSION_ABSOLUTE_TIMEOUT": timedelta(days=float(_env("SESSION_ABSOLUTE_DAYS", "7") or 7)),
        "REMEMBER_ME_LIFETIME": timedelta(days=min(30.0, float(_env("REMEMBER_ME_DAYS", "30") or 30))),
        "PERMANENT_SESSION_LIFETIME": timedelta(days=min(30.0, float(_env("REMEMBER_ME_DAYS", "30") or 30))),
        # How long the second step of logging in (the authenticator code) may take after the password.
        "TWO_FACTOR_LOGIN_SECONDS": int(_env("TWO_FACTOR_LOGIN_SECONDS", "300") or 300),
        # Changing email, password, two-factor, API tokens or billing asks for the password again after this long.
        "REAUTH_MAX_AGE": timedelta(minutes=float(_env("REAUTH_MINUTES", "10") or 10)),
        "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the session
        # Per account and per client IP (moving windows in Redis).
        "LOGIN_LIMIT_PER_ACCOUNT": _env("LOGIN_LIMIT_PER_ACCOUNT", "10 per 15 minutes"),
        "LOGIN_LIMIT_PER_IP": _env("LOGIN_LIMIT_PER_IP", "50 per 15 minutes"),
        "TWO_FACTOR_LIMIT_PER_ACCOUNT": _env("TWO_FACTOR_LIMIT_PER_ACCOUNT", "5 per 5 minutes"),
        "TWO_FACTOR_LIMIT_PER_IP": _env("TWO_FACTOR_LIMIT_PER_IP", "50 per 15 minutes"),
        "RESET_LIMIT_PER_ACCOUNT": _env("RESET_LIMIT_PER_ACCOUNT", "3 per hour"),
        "RESET_LIMIT_PER_IP": _env("RESET_LIMIT_PER_IP", "20 per hour"),
        "SIGNUP_LIMIT_PER_IP": _env("SIGNUP_LIMIT_PER_IP", "20 per hour"),
        # Requests each API token may make (a fixed window in Redis); answered with RateLimit-* headers and 429.
        "API_RATE_LIMIT": _env("API_RATE_LIMIT", "600 per minute"),
        "TRUSTED_PROXIES": int(_env("TRUSTED_PROXIES", "0") or 0),
        "PORT": int(_env("PORT", "5000") or 5000),
        # Web processes: two per core, since a request waits on PostgreSQL and Redis part of the time and
        # another process's Python runs meanwhile (measured with bench/api_load.py: processes did better than
        # threads, which share one interpreter lock). Threads per process stay available for I/O-heavy loads.
        "WEB_CONCURRENCY": int(_env("WEB_CONCURRENCY", str(2 * (os.cpu_count() or 1))) or 2),
        "WEB_THREADS": int(_env("WEB_THREADS", "1") or 1),
        # RQ worker processes `make run` starts: one per core, since a publish batch is part CPU (HTTP, SQL)
        # and one process holds one core at most. Production scales the Procfile's `worker` the same way.
        "WORKER_PROCESSES": int(_env("WORKER_PROCESSES", str(os.cpu_count() or 1)) or 1),
    }


def _word_list(raw: str) -> list[str]:
    return [word.strip().lower() for word in raw.split(",") if word.strip()]


def _int_list(raw: str) -> list[int]:
    return [int(word) for word in _word_list(raw)]


def cookie_settings(public_base_url: str) -> dict[str, Any]:
    """Session and remember cookies for the public address: HttpOnly always, Lax so cross-site POSTs carry no
    session, and under https Secure with the `__Host-` prefix (browsers then refuse the cookie unless it is
    Secure, Path=/ and has no Domain, so no sibling subdomain can set or shadow it). Plain names under http
    (development, tests), where browsers would drop a `__Host-` cookie."""
    https = public_base_url.startswith("https://")
    prefix = "__Host-" if https else ""
    lifetime = timedelta(days=14)
    return {
        "SESSION_COOKIE_NAME": f"{prefix}session",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": https,
        "SESSION_COOKIE_PATH": "/",
        "SESSION_COOKIE_DOMAIN": None,
        # flask-login's "remember me" cookie, should a login form offer it: the same rules, and not its
        # default of a year.
        "REMEMBER_COOKIE_NAME": f"{prefix}remember_token",
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": https,
        "REMEMBER_COOKIE_PATH": "/",
        "REMEMBER_COOKIE_DOMAIN": None,
        "REMEMBER_COOKIE_DURATION": lifetime,
    }


def _database_url(name: str, fallback: str | None) -> str | None:
    url = _env(name) or (None if is_production() else fallback)
    return normalise_database_url(url) if url else None


def _billing_settings() -> dict[str, Any]:
    import json

    secret_key = _env("STRIPE_SECRET_KEY")
    return {
        "BILLING_ENABLED": bool(secret_key),
        "STRIPE_SECRET_KEY": secret_key,
        "STRIPE_WEBHOOK_SECRET": _env("STRIPE_WEBHOOK_SECRET"),
        "STRIPE_API_BASE": (_env("STRIPE_API_BASE", "https://api.stripe.com") or "").rstrip("/"),
        "STRIPE_TIMEOUT_SECONDS": float(_env("STRIPE_TIMEOUT_SECONDS", "20") or 20),
        # Stripe's own libraries default to 300 s; a wider window accepts older replays.
        "STRIPE_WEBHOOK_TOLERANCE_SECONDS": int(_env("STRIPE_WEBHOOK_TOLERANCE_SECONDS", "300") or 300),
        "STRIPE_PRICE_PRO": _env("STRIPE_PRICE_PRO"),
        "STRIPE_PRICE_AGENCY": _env("STRIPE_PRICE_AGENCY"),
        # How long an emailed review link works (saas.approvals).
        "APPROVAL_LINK_DAYS": int(_env("APPROVAL_LINK_DAYS", "14") or 14),
        "BILLING_TRIAL_DAYS": int(_env("BILLING_TRIAL_DAYS", "14") or 14),
        # "1": choosing a plan during the free trial starts a Stripe trial for the days left (first charge at its
        # end); otherwise the plan starts, and is charged, at once.
        "BILLING_TRIAL_CARRIES_OVER": _env("BILLING_TRIAL_CARRIES_OVER", "0") == "1",
        "BILLING_GRACE_PERIOD": timedelta(days=float(_env("BILLING_GRACE_DAYS", "7") or 7)),
        # Names, prices shown and limits per plan, e.g. {"pro": {"channels": 20, "price_label": "€39 / month"}}.
        "BILLING_PLANS": json.loads(_env("BILLING_PLANS", "{}") or "{}"),
    }


def _oauth_settings(prefix: str, **urls: str) -> dict[str, str]:
    """<PREFIX>_CLIENT_ID / _CLIENT_SECRET, and each URL overridable as <PREFIX>_<NAME> (e.g. X_API_URL)."""
    settings = {
        "client_id": _env(f"{prefix}_CLIENT_ID", "") or "",
        "client_secret": _env(f"{prefix}_CLIENT_SECRET", "") or "",
    }
    return settings | {name: _env(f"{prefix}_{name.upper()}", url) or url for name, url in urls.items()}


def _meta_settings(prefix: str) -> dict[str, str]:
    """Facebook Login apps (Pages and Instagram share the Graph host and GRAPH_API_VERSION)."""
    settings = _oauth_settings(prefix, graph_url="https://graph.facebook.com", dialog_url="https://www.facebook.com")
    return settings | {"version": _env("GRAPH_API_VERSION", "v24.0") or "v24.0"}


def _dev_encryption_key(secret_key: str) -> str:
    from saas.crypto import dev_key

    return dev_key(secret_key)


def check(settings: dict[str, Any]) -> None:
    """Refuse settings that are unsafe for production."""
    if not settings["PRODUCTION"]:
        return
    if settings["SECRET_KEY"] == DEV_SECRET_KEY or len(settings["SECRET_KEY"]) < 32:
        raise ConfigError("SECRET_KEY must be set to a random value of at least 32 characters in production")
    if not settings["DATABASE_URL"] or not settings["REDIS_URL"]:
        raise ConfigError("DATABASE_URL and REDIS_URL must be set in production")
    if not settings.get("SYSTEM_DATABASE_URL"):
        raise ConfigError(
            "SYSTEM_DATABASE_URL must be set in production: the BYPASSRLS role for cross-tenant work "
            "(DATABASE_URL's role must not bypass row-level security)"
        )
    if settings["SYSTEM_DATABASE_URL"] == settings["DATABASE_URL"]:
        raise ConfigError("SYSTEM_DATABASE_URL must name another role than DATABASE_URL in production")
    if not settings.get("ENCRYPTION_KEYS"):
        raise ConfigError("ENCRYPTION_KEYS must be set in production (flask --app wsgi new-encryption-key)")
    if settings.get("BILLING_ENABLED") and not settings.get("STRIPE_WEBHOOK_SECRET"):
        raise ConfigError("STRIPE_WEBHOOK_SECRET must be set when STRIPE_SECRET_KEY is (the webhook signing secret)")
    if not settings["PUBLIC_BASE_URL"].startswith("https://"):
        raise ConfigError("PUBLIC_BASE_URL must be an https:// address in production")
