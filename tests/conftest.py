"""Shared fixtures: a real PostgreSQL and Redis for the whole run, a clean slate for each test.

When DATABASE_URL / REDIS_URL are set, the suite uses those servers (a fresh
database is still created); otherwise it starts throwaway embedded servers.
Either way the app connects as the row-level-security roles of saas/rls.py
(the given or embedded superuser owns the tables and runs the migrations), so
every test runs under the policies production has.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from flask import Flask
from flask.testing import FlaskClient

from saas import create_app, db, rls, seed
from saas.config import PROJECT_ROOT
from saas.embedded import EmbeddedPostgres, EmbeddedRedis, free_port
from tests import factories
from tests.fakes import tokens

TEST_DATABASE = "multipost_test"
ROLE_PASSWORD = secrets.token_hex(16)


# -- no secret in the logs ---------------------------------------------------------------------------------------------
# Every log record of the run is kept; at the end none may contain a secret the suite knows of: tokens the fakes issued
# (recognisable by their marker), passwords, keys, and the link tokens the app mailed (ASVS 16.2.5).

KNOWN_SECRETS: set[str] = {factories.PASSWORD, ROLE_PASSWORD, *(login.password for login in seed.DEMO_LOGINS)}
# A link token in a mailed URL: the last path segment of at least 32 URL-safe characters (tenants/tokens.py).
MAILED_TOKEN = re.compile(r"https?://[^\s\"'<>]+/([A-Za-z0-9_-]{32,})")


def remember_secret(*values: str | None) -> None:
    """Values that must never be logged (short or empty ones would match by accident, so they are skipped)."""
    KNOWN_SECRETS.update(v for v in values if v and len(v) >= 8)


def leaked_secrets(lines: list[str], known: set[str]) -> list[str]:
    """The log lines that contain a known secret or something shaped like a fake's token."""
    return [line for line in lines if tokens.LOOKS_SECRET.search(line) or any(k in line for k in known)]


class LogCapture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a bad format string: keep its parts
            text = f"{record.msg} {record.args}"
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        self.lines.append(f"{record.name}: {text}")


@pytest.fixture(scope="session", autouse=True)
def _no_secrets_in_logs() -> Iterator[LogCapture]:
    capture = LogCapture()
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.INFO)  # what production logs (saas.create_app)
    root.addHandler(capture)
    yield capture
    root.removeHandler(capture)
    root.setLevel(level)
    leaks = leaked_secrets(capture.lines, KNOWN_SECRETS)
    assert not leaks, f"{len(leaks)} log line(s) contain a secret, e.g. {leaks[:3]}"


def _remember_mailed_tokens(mail_dir: Path) -> None:
    for path in mail_dir.glob("*.eml") if mail_dir.exists() else ():
        remember_secret(*MAILED_TOKEN.findall(path.read_text(errors="replace")))


@pytest.fixture(scope="session")
def servers() -> Iterator[dict[str, str]]:
    root = Path(tempfile.mkdtemp(prefix="multipost-test-"))
    started: list[EmbeddedPostgres | EmbeddedRedis] = []
    try:
        database_url = os.environ.get("DATABASE_URL")
        if database_url:
            admin = sa.create_engine(database_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{TEST_DATABASE}" WITH (FORCE)'))
                conn.execute(sa.text(f'CREATE DATABASE "{TEST_DATABASE}"'))
            admin.dispose()
            database_url = sa.make_url(database_url).set(database=TEST_DATABASE).render_as_string(False)
        else:
            pg = EmbeddedPostgres(root / "pg", free_port(), durable=False)
            pg.start()
            started.append(pg)
            pg.create_database(TEST_DATABASE)
            database_url = pg.url(TEST_DATABASE)
        redis_url = os.environ.get("REDIS_URL")
        if not redis_url:
            redis_server = EmbeddedRedis(root / "redis", free_port(), durable=False)
            redis_server.start()
            started.append(redis_server)
            redis_url = redis_server.url
        urls = rls.provision_urls(database_url, ROLE_PASSWORD)
        yield {
            "database": database_url,  # the owner's
            "app_database": urls["DATABASE_URL"],
            "system_database": urls["SYSTEM_DATABASE_URL"],
            "redis": redis_url,
            "root": str(root),
        }
    finally:
        for server in reversed(started):
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def migrated(servers: dict[str, str]) -> str:
    alembic_cfg = AlembicConfig(str(PROJECT_ROOT / "alembic.ini"))
    alembic_cfg.set_main_option("sqlalchemy.url", servers["database"])
    command.upgrade(alembic_cfg, "head")
    return servers["database"]


@pytest.fixture(scope="session")
def app(servers: dict[str, str], migrated: str) -> Flask:
    mail_dir = Path(servers["root"]) / "mail"
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": servers["app_database"],
            "SYSTEM_DATABASE_URL": servers["system_database"],
            "MIGRATION_DATABASE_URL": migrated,
            "REDIS_URL": servers["redis"],
            "MAIL_URL": None,
            "MAIL_DIR": mail_dir,
            "PUBLIC_BASE_URL": "http://localhost",
        }
    )
    factories.use_app(app)
    remember_secret(app.config["SECRET_KEY"], *app.config["ENCRYPTION_KEYS"].split(","))
    return app


def owner_engine(app: Flask) -> sa.Engine:
    """The tables' owner (TRUNCATE is not granted to the app's roles), one engine per run."""
    if "test_owner_engine" not in app.extensions:
        app.extensions["test_owner_engine"] = sa.create_engine(app.config["MIGRATION_DATABASE_URL"], pool_size=1)
    return app.extensions["test_owner_engine"]


@pytest.fixture(autouse=True)
def _clean_slate(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test starts with empty tables, an empty Redis and an empty outbox."""
    yield
    if "app" not in request.fixturenames:
        return
    app: Flask = request.getfixturevalue("app")
    with owner_engine(app).begin() as conn:
        tables = ", ".join(f'"{t.name}"' for t in db.Base.metadata.sorted_tables)
        conn.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    app.extensions["redis"].flushdb()
    app.extensions.pop("api_grants", None)  # what the API remembered of tokens now gone
    _remember_mailed_tokens(Path(app.config["MAIL_DIR"]))
    shutil.rmtree(app.config["MAIL_DIR"], ignore_errors=True)


@pytest.fixture
def redis_conn(app: Flask) -> redis.Redis:
    return app.extensions["redis"]


class Outbox:
    """The mail the app wrote to MAIL_DIR, oldest first."""

    def __init__(self, mail_dir: Path) -> None:
        self.mail_dir = mail_dir

    def messages(self) -> list[EmailMessage]:
        if not self.mail_dir.exists():
            return []
        parser = BytesParser(policy=policy.default)
        return [parser.parsebytes(p.read_bytes()) for p in sorted(self.mail_dir.glob("*.eml"))]  # type: ignore[misc]

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages() if m["To"] == address]

    def last_to(self, address: str) -> EmailMessage:
        found = self.to(address)
        assert found, f"no mail to {address}; outbox has {[m['To'] for m in self.messages()]}"
        return found[-1]

    def link_in_last(self, address: str) -> str:
        """The path of the first link to our app in the newest message to `address`."""
        body = self.last_to(address).get_content()
        match = re.search(r"http://localhost(/\S+)", body)
        assert match, body
        return match.group(1)


@pytest.fixture
def outbox(app: Flask) -> Outbox:
    return Outbox(Path(app.config["MAIL_DIR"]))


CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


class Client(FlaskClient):
    """A test client that submits forms as a browser does: with the page's CSRF token."""

    def csrf_token(self, page: str = "/login") -> str:
        response = self.get(page)
        match = CSRF_META.search(response.get_data(as_text=True))
        assert match, f"no CSRF token on {page} ({response.status_code})"
        return match.group(1)

    def submit(self, path: str, data: dict[str, Any] | None = None, page: str | None = None, **kwargs: Any) -> Any:
        """POST `data` to `path` with a CSRF token taken from `page` (default: a page that has one)."""
        token = self.csrf_token(page or "/login")
        return self.post(path, data={**(data or {}), "csrf_token": token}, **kwargs)

    def log_in(self, email: str, password: str) -> Any:
        response = self.submit("/login", {"email": email, "password": password})
        assert response.status_code == 302, response.get_data(as_text=True)
        return response


@pytest.fixture
def client(app: Flask) -> Client:
    app.test_client_class = Client
    return app.test_client()  # type: ignore[return-value]


@pytest.fixture
def make_client(app: Flask) -> Any:
    """Another browser (its own cookies), for tests with several people."""
    app.test_client_class = Client

    def make() -> Client:
        return app.test_client()  # type: ignore[return-value]

    return make
