"""The Multipost web application (also the context for workers and the CLI)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    """Create and configure the application. `overrides` replace settings (tests)."""
    from saas import config, logs

    app = Flask(__name__)
    app.config.update(config.load())
    if overrides:
        if "PUBLIC_BASE_URL" in overrides:  # cookies follow the address (https: Secure, __Host- names)
            app.config.update(config.cookie_settings(overrides["PUBLIC_BASE_URL"]))
        app.config.update(overrides)
    config.check(app.config)  # type: ignore[arg-type]
    if not app.config["DATABASE_URL"] or not app.config["REDIS_URL"]:
        raise config.ConfigError(
            "DATABASE_URL and REDIS_URL are not set. `make run` starts embedded servers and sets them for you."
        )
    logs.init()

    if app.config["TRUSTED_PROXIES"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]

    import saas.models  # noqa: F401  (every mapper configured before the first query)
    from saas import audit, cli, db, extensions, security, web

    db.init_app(app)
    if app.config["PRODUCTION"]:
        from saas import rls

        # One query at start-up: an app role that bypasses row-level security would make it enforce nothing.
        problems = rls.app_role_problems(db.engine_of(app))
        if problems:
            raise config.ConfigError(f"DATABASE_URL must name a role under row-level security: {'; '.join(problems)}")
    extensions.init_redis(app)
    extensions.csrf.init_app(app)
    security.init_app(app)
    audit.init_app(app)
    web.init_app(app)
    cli.init_app(app)
    return app
