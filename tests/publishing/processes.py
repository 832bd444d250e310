"""Real processes for fault tests: a dedicated PostgreSQL and Redis, and `flask --app wsgi worker|clock` children.

    stack = Stack.create()                       # own servers under a temp dir, migrated, an app for seeding
    stack.use_network(fake)                      # SANDBOX_BASE_URL for this process and the children
    tenant = stack.make_tenant("Bakery")         # seed with the real services
    channel = stack.connect(tenant, "bluebell")
    stack.schedule(tenant, [channel], ["Bread at 7"])
    worker = stack.start_worker()                # a real RQ worker process (forks a work horse per job)
    clock = stack.start_clock()
    stack.wait_all_final(1, timeout=60)          # or stack.wait_until(predicate, timeout=..., what=...)
    stack.kill(worker)                           # SIGKILL the worker, its work horse and anything else it started
    stack.stop_all(); stack.close()

Every child runs in its own session (start_new_session), so `kill` finds all it started by session id
(Linux /proc), including RQ's work horse, which moves to its own process group. Each child writes to its own log file;
`wait_until` failures quote the target states and the tail of every log.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from flask import Flask
from redis import Redis

from publishers.base import Credentials, Profile
from saas import create_app, db, passwords
from saas.channels import service as channel_service
from saas.config import PROJECT_ROOT
from saas.crypto import new_key
from saas.embedded import EmbeddedPostgres, EmbeddedRedis, free_port
from saas.posts import service as post_service
from saas.posts.models import PostTarget
from tenants import service as tenant_service
from tenants.models import TenantKind, User
from tenants.scoping import tenant_session
from tests.fakes.network import FakeSandboxNetwork

DATABASE = "multipost_faults"
PASSWORD = "plum-orchard-lantern-42"
FINAL_STATES = ("published", "failed", "unconfirmed", "blocked", "canceled")
T = TypeVar("T")


@dataclass
class Child:
    """One process we started: `worker` or `clock`."""

    role: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    stopped: bool = False  # we stopped or killed it on purpose

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def name(self) -> str:
        return f"{self.role}[{self.pid}]"

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def tail(self, chars: int = 3000) -> str:
        return self.log()[-chars:]


def _session_members(session_id: int) -> list[int]:
    """Live (non-zombie) processes whose session id is `session_id` (Linux /proc)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp session ..."; comm may contain spaces or parentheses.
        fields = stat[stat.rindex(")") + 2 :].split()
        state, sid = fields[0], int(fields[3])
        if sid == session_id and state != "Z":
            members.append(int(entry))
    return members


@dataclass
class Stack:
    """Dedicated servers, an app for seeding and checking, and the worker/clock processes of one test module."""

    root: Path
    pg: EmbeddedPostgres
    redis_server: EmbeddedRedis
    urls: dict[str, str]  # DATABASE_URL, SYSTEM_DATABASE_URL, MIGRATION_DATABASE_URL: the roles of saas/rls.py
    app: Flask
    encryption_keys: str
    lease_seconds: int = 5
    network_timeout: float = 3.0
    network: FakeSandboxNetwork | None = None  # set by use_network()
    children: list[Child] = field(default_factory=list)
    access_tokens: dict[str, str] = field(default_factory=dict)  # handle → the access token its channel holds
    _owner_ids: dict[int, int] = field(default_factory=dict)
    _password_hash: str | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------------------

    @classmethod
    def create(cls, *, lease_seconds: int = 5, network_timeout: float = 3.0) -> Stack:
        """Start PostgreSQL and Redis under a fresh temp dir, migrate, and build the seeding app."""
        root = Path(tempfile.mkdtemp(prefix="multipost-faults-"))
        pg = EmbeddedPostgres(root / "pg", free_port(), durable=False)
        redis_server = EmbeddedRedis(root / "redis", free_port(), durable=False)
        try:
            pg.start()
            pg.create_database(DATABASE)
            urls = pg.role_urls(DATABASE)
            alembic_cfg = AlembicConfig(str(PROJECT_ROOT / "alembic.ini"))
            alembic_cfg.set_main_option("sqlalchemy.url", urls["MIGRATION_DATABASE_URL"])
            command.upgrade(alembic_cfg, "head")
            redis_server.start()
            keys = new_key()
            app = create_app(
                {
                    "TESTING": True,
                    **urls,
                    "REDIS_URL": redis_server.url,
                    "ENCRYPTION_KEYS": keys,
                    "MAIL_URL": None,
                    "MAIL_DIR": root / "mail",
                    "PUBLIC_BASE_URL": "http://localhost",
                    "PUBLISH_LEASE_SECONDS": lease_seconds,
                    "NETWORK_TIMEOUT_SECONDS": network_timeout,
                }
            )
        except BaseException:
            redis_server.stop()
            pg.stop()
            shutil.rmtree(root, ignore_errors=True)
            raise
        (root / "logs").mkdir()
        return cls(
            root=root,
            pg=pg,
            redis_server=redis_server,
            urls=urls,
            app=app,
            encryption_keys=keys,
            lease_seconds=lease_seconds,
            network_timeout=network_timeout,
        )

    def close(self) -> None:
        """Stop every child and both servers, and remove the temp dir."""
        try:
            self.stop_all()
        finally:
            for engine in (self.engine, self.app.extensions["db_engine"], self.app.extensions["db_system_engine"]):
                engine.dispose()
            self.redis_server.stop()
            self.pg.stop()
            shutil.rmtree(self.root, ignore_errors=True)

    def use_network(self, network: FakeSandboxNetwork) -> None:
        """Children started from now on (and this app's adapters) publish to `network`."""
        self.network = network
        self.app.config["SANDBOX_BASE_URL"] = network.base_url
        self.app.extensions.pop("publishers", None)

    def reset(self) -> None:
        """Between tests: no children, servers up, empty tables, empty Redis, empty outbox."""
        self.stop_all()
        self.children.clear()
        self.pg.start()  # a no-op when running
        if self.redis_server.process is None or self.redis_server.process.poll() is not None:
            self.redis_server.start()
        with self.engine.begin() as conn:
            tables = ", ".join(f'"{t.name}"' for t in db.Base.metadata.sorted_tables)
            conn.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        self.redis.flushall()
        shutil.rmtree(self.root / "mail", ignore_errors=True)
        self._owner_ids.clear()
        self.access_tokens.clear()

    @property
    def engine(self) -> sa.Engine:
        """The tables' owner: the test's own eye on every tenant (and TRUNCATE), past row-level security."""
        if "test_owner_engine" not in self.app.extensions:
            self.app.extensions["test_owner_engine"] = sa.create_engine(self.urls["MIGRATION_DATABASE_URL"])
        return self.app.extensions["test_owner_engine"]

    @property
    def redis(self) -> Redis:
        return self.app.extensions["redis"]

    # -- processes ---------------------------------------------------------------------------------------------------

    def env(self, **overrides: object) -> dict[str, str]:
        """The environment of a child: this stack's servers and the fake network, plus `overrides`."""
        env = {k: v for k, v in os.environ.items() if k not in ("APP_ENV", "FLASK_ENV", "MAIL_URL")}
        env.update(
            {
                **self.urls,
                "REDIS_URL": self.redis_server.url,
                "SANDBOX_BASE_URL": self.network.base_url if self.network else "http://127.0.0.1:9/sandbox",
                "ENCRYPTION_KEYS": self.encryption_keys,
                "PUBLISH_LEASE_SECONDS": str(self.lease_seconds),
                "NETWORK_TIMEOUT_SECONDS": str(self.network_timeout),
                "MAIL_DIR": str(self.root / "mail"),
                "VAR_DIR": str(self.root / "var"),
                "PUBLIC_BASE_URL": "http://localhost",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update({k: str(v) for k, v in overrides.items()})
        return env

    def _spawn(self, role: str, env: dict[str, object]) -> Child:
        n = sum(1 for c in self.children if c.role == role) + 1
        log_path = self.root / "logs" / f"{role}-{n}.log"
        with open(log_path, "ab") as log_file:  # the child keeps its own descriptor
            popen = subprocess.Popen(
                [sys.executable, "-m", "flask", "--app", "wsgi", role],
                cwd=PROJECT_ROOT,
                env=self.env(**env),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own session: kill() finds the work horse by session id
            )
        child = Child(role, popen, log_path)
        self.children.append(child)
        return child

    def start_worker(self, *, wait: bool = True, **env: object) -> Child:
        """`flask --app wsgi worker`; with `wait`, returns once it has registered with Redis (ready to take jobs)."""
        child = self._spawn("worker", env)
        if wait:
            self.wait_ready(child)
        return child

    def wait_ready(self, *children: Child, timeout: float = 60) -> None:
        """Until each worker has registered with Redis and each clock has entered its loop."""
        for child in children:
            if child.role == "worker":
                ready: Callable[[], bool] = lambda c=child: self._worker_registered(c.pid)  # noqa: E731
            else:
                ready = lambda c=child: "dispatcher started" in c.log()  # noqa: E731
            self.wait_until(ready, timeout=timeout, what=f"{child.name} to be ready")

    def _worker_registered(self, pid: int) -> bool:
        for key in self.redis.smembers("rq:workers"):
            if self.redis.hget(key, "pid") == str(pid).encode():
                return True
        return False

    def start_clock(self, *, wait: bool = True, **env: object) -> Child:
        """`flask --app wsgi clock`; with `wait`, returns once its loop has started."""
        child = self._spawn("clock", env)
        if wait:
            self.wait_ready(child)
        return child

    def kill(self, child: Child) -> None:
        """SIGKILL the child and every process in its session (RQ's work horse sits in a process group of its own)."""
        child.stopped = True
        deadline = time.monotonic() + 10
        while True:
            members = _session_members(child.pid)
            if child.alive() and child.pid not in members:
                members.append(child.pid)
            if not members:
                break
            for pid in members:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            if time.monotonic() > deadline:
                raise RuntimeError(f"{child.name}: processes {members} survived SIGKILL")
            time.sleep(0.02)  # until the kernel has taken them down
            child.popen.poll()
        child.popen.wait(timeout=10)

    def stop(self, child: Child, timeout: float = 10.0) -> None:
        """SIGTERM (RQ: warm shutdown; clock: leave the loop), then SIGKILL whatever is left after `timeout`."""
        child.stopped = True
        if child.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.popen.wait(timeout=timeout)
        self.kill(child)  # the leader if still alive, and any orphan (a work horse) left in its session

    def stop_all(self, timeout: float = 5.0) -> None:
        """Stop every child: SIGTERM all at once, then SIGKILL whatever remains after `timeout`."""
        for child in self.children:
            child.stopped = True
            if child.alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in self.children:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
        for child in self.children:
            self.kill(child)

    def logs(self, chars: int = 3000) -> str:
        parts = []
        for child in self.children:
            status = "running" if child.alive() else f"exited {child.popen.returncode}"
            parts.append(f"----- {child.name} ({status}), {child.log_path.name} -----\n{child.tail(chars)}")
        return "\n".join(parts)

    # -- servers -----------------------------------------------------------------------------------------------------

    def restart_redis(self) -> None:
        """FLUSHALL, stop, start again on the same port: every job, registry and lock is gone."""
        self.redis.flushall()
        self.redis_server.stop()
        with contextlib.suppress(FileNotFoundError):
            (self.redis_server.data_dir / "dump.rdb").unlink()
        self.redis_server.start()
        self.redis.connection_pool.disconnect()

    def restart_postgres(self) -> None:
        """`pg_ctl stop -m fast` (every connection cut) and start again on the same data dir and port."""
        port = self.pg.port
        self.pg.stop()
        self.pg.start()
        assert self.pg.port == port
        for engine in (self.engine, self.app.extensions["db_engine"], self.app.extensions["db_system_engine"]):
            engine.dispose()

    # -- waiting and looking -----------------------------------------------------------------------------------------

    def wait_until(
        self,
        predicate: Callable[[], T],
        *,
        timeout: float,
        what: str,
        interval: float = 0.1,
        describe: Callable[[], str] | None = None,
    ) -> T:
        """Poll `predicate` until it returns something truthy, and return that. Database errors count as "not yet"
        (the server may be restarting). Fails at once when a child dies on its own; on timeout, fails with the
        target states, `describe()` and the log tails."""
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while True:
            try:
                value = predicate()
            except sa.exc.DBAPIError as exc:
                value, last_error = None, exc  # type: ignore[assignment]
            if value:
                return value
            died = [c for c in self.children if not c.stopped and not c.alive()]
            if died or time.monotonic() > deadline:
                reason = (
                    f"{', '.join(c.name for c in died)} exited on its own" if died else f"not within {timeout:.0f} s"
                )
                raise AssertionError(self._report(f"Waited for {what}: {reason}.", last_error, describe))
            time.sleep(interval)

    def _report(self, headline: str, error: Exception | None, describe: Callable[[], str] | None) -> str:
        lines = [headline]
        try:
            lines.append(f"Target states now: {dict(self.state_counts())} (final: {', '.join(FINAL_STATES)})")
        except Exception as exc:  # the database may be what is down
            lines.append(f"Target states unavailable: {exc!r}")
        if error is not None:
            lines.append(f"Last database error while polling: {type(error).__name__}: {str(error)[:300]}")
        if describe is not None:
            with contextlib.suppress(Exception):
                lines.append(describe())
        lines.append(self.logs())
        return "\n".join(lines)

    def rows(self, sql: str, **params: Any) -> list[sa.Row[Any]]:
        """Raw SQL as the test's eye on the database (no tenant scoping: it reads every tenant)."""
        with self.engine.connect() as conn:
            return list(conn.execute(sa.text(sql), params))

    def execute(self, sql: str, **params: Any) -> int:
        """Raw SQL that changes rows, committed; returns the row count."""
        with self.engine.begin() as conn:
            return conn.execute(sa.text(sql), params).rowcount

    def state_counts(self) -> Counter[str]:
        return Counter(
            {row.state: row.n for row in self.rows("SELECT state, count(*) AS n FROM post_targets GROUP BY 1")}
        )

    def targets(self) -> list[sa.Row[Any]]:
        return self.rows(
            "SELECT t.*, c.handle FROM post_targets t JOIN channels c ON c.id = t.channel_id ORDER BY t.id"
        )

    def all_final(self, expected: int) -> bool:
        counts = self.state_counts()
        return sum(counts.values()) == expected and sum(counts[s] for s in FINAL_STATES) == expected

    def wait_all_final(self, expected: int, timeout: float) -> Counter[str]:
        self.wait_until(
            lambda: self.all_final(expected), timeout=timeout, what=f"all {expected} targets in a final state"
        )
        return self.state_counts()

    # -- seeding (the real services, in this stack's app) ------------------------------------------------------------

    def make_tenant(self, name: str) -> int:
        """A direct tenant with a verified owner; returns the tenant id."""
        with self.app.app_context(), db.new_session() as session:
            if self._password_hash is None:  # hash once: a loaded machine makes every hash slow
                self._password_hash = passwords.hash_password(PASSWORD)
            n = len(self._owner_ids) + 1
            owner = User(
                email=f"owner{n}@example.com",
                name=f"Owner {n}",
                password_hash=self._password_hash,
                timezone="UTC",
                email_verified_at=utcnow(),
            )
            session.add(owner)
            session.flush()
            tenant = tenant_service.create_tenant(session, name=name, kind=TenantKind.DIRECT, owner=owner)
            session.commit()
            self._owner_ids[tenant.id] = owner.id
            return tenant.id

    def connect(self, tenant_id: int, handle: str) -> int:
        """A new account on the fake network, connected as a channel of the tenant; returns the channel id."""
        network = self.network
        assert network is not None, "use_network() first"
        account_id, access, refresh = network.add_account(handle)
        self.access_tokens[handle] = access
        with self.app.app_context(), tenant_session(tenant_id) as session:
            channel = channel_service.connect(
                session,
                "sandbox",
                Profile(remote_id=account_id, handle=handle, display_name=handle.title()),
                Credentials(access_token=access, refresh_token=refresh, expires_at=network.token_expires_at(access)),
            )
            session.commit()
            return channel.id

    def schedule(
        self,
        tenant_id: int,
        channel_ids: Sequence[int],
        texts: Iterable[str],
        at: datetime | Sequence[datetime] | None = None,
    ) -> list[int]:
        """One post per text to every channel, all in one transaction; due now, at `at`, or at `at[i]` for post i."""
        texts = list(texts)
        times = at if isinstance(at, Sequence) else [at] * len(texts)
        assert len(times) == len(texts)
        ids = []
        with self.app.app_context(), tenant_session(tenant_id) as session:
            for text, when in zip(texts, times, strict=True):
                post = post_service.schedule_post(
                    session,
                    author_id=self._owner_ids[tenant_id],
                    text=text,
                    channel_ids=list(channel_ids),
                    schedule=post_service.Schedule(publish_now=True, local_time=None, timezone="UTC"),
                )
                if when is not None:
                    assert when.tzinfo is not None
                    post.scheduled_at = when
                    session.execute(
                        sa.update(PostTarget)
                        .where(PostTarget.post_id == post.id)
                        .values(scheduled_at=when, due_at=when)
                    )
                ids.append(post.id)
            session.commit()
        return ids

    def make_due(self, seconds: float) -> datetime:
        """Every waiting target (and its post) due `seconds` from now by the database clock, all at once, in one
        transaction: a clock running meanwhile claims them together however long the seeding took."""
        with self.engine.begin() as conn:
            due = conn.execute(sa.text("SELECT now() + make_interval(secs => :s)"), {"s": seconds}).scalar_one()
            conn.execute(
                sa.text("UPDATE post_targets SET scheduled_at = :due, due_at = :due WHERE state = 'scheduled'"),
                {"due": due},
            )
            conn.execute(
                sa.text("UPDATE posts SET scheduled_at = :due WHERE id IN (SELECT post_id FROM post_targets)"),
                {"due": due},
            )
        return due


def utcnow() -> datetime:
    return datetime.now(UTC)
