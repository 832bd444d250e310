"""Benchmark (not a test): the public API under load, listing a week of a busy workspace and creating posts.

Starts its own embedded PostgreSQL and Redis, migrates, seeds one workspace with N posts (default 10,000,
spread over a year, one target each) and an API token, runs the web process as `make run` does (the app role
under row-level security, gunicorn with two workers per core), then for S seconds runs C concurrent clients:
each lists a random week window (`GET /api/v1/posts?from=…&to=…&limit=50`) and, every --create-every'th
request, creates a post (`POST /api/v1/posts` with an Idempotency-Key). Prints ONE JSON line on stdout:

    {"rps", "p50_ms", "p99_ms", "errors", ...extras}

rps / p50_ms / p99_ms are of the list requests (the goal); creates are reported as create_rps and
create_p99_ms; errors counts every answer that is not 200/201 and every failed connection.

Usage (progress on stderr):

    .venv/bin/python -m bench.api_load                        # the goal: 10,000 posts, 16 clients, 30 s
    .venv/bin/python -m bench.api_load --seconds 5 --posts 2000   # a quick check that it runs

Goal on a 2-core machine: >= 300 list requests/s with p99 <= 100 ms, zero errors.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # also runnable as `python bench/api_load.py`
    sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
import urllib3  # noqa: E402

from bench.stats import percentile, say  # noqa: E402
from saas.embedded import EmbeddedPostgres, EmbeddedRedis, free_port  # noqa: E402

DATABASE = "multipost_api_bench"
ZONE = "Europe/Berlin"


def seed(app: Any, database_url: str, posts: int) -> tuple[str, int, datetime]:
    """One workspace with `posts` posts over a year (set-based SQL) and a token; returns (token, channel, start)."""
    from saas import db
    from saas.api import tokens
    from tenants import bind_tenant
    from tenants.models import TenantKind, User
    from tenants.service import create_tenant

    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
    with app.app_context(), db.new_session() as session:
        owner = User(email="owner@bench.example", name="Bench Owner", password_hash="-", timezone=ZONE)
        session.add(owner)
        session.flush()
        tenant = create_tenant(session, name="Busy Bakery", kind=TenantKind.DIRECT, owner=owner, timezone=ZONE)
        session.commit()
        tenant_id, owner_id = tenant.id, owner.id
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        channel_id = conn.execute(
            sa.text("""
            INSERT INTO channels (tenant_id, network, remote_id, handle, display_name, health)
            VALUES (:t, 'sandbox', 'acct-busy', 'busybakery', 'Busy Bakery', 'ok') RETURNING id
        """),
            {"t": tenant_id},
        ).scalar_one()
        conn.execute(
            sa.text("""
            INSERT INTO posts (tenant_id, author_id, text, media_urls, revision, state, scheduled_at, timezone,
                               local_time, tags)
            SELECT :t, :u, 'Post ' || n || ': fresh bread, coffee and news', '[]'::jsonb, 1, 'scheduled',
                   :start + make_interval(secs => n::float8 / :n * 31536000), :zone, NULL,
                   CASE WHEN n % 3 = 0 THEN ARRAY['bread']::varchar[] ELSE '{}'::varchar[] END
            FROM generate_series(1, :n) AS n
        """),
            {"t": tenant_id, "u": owner_id, "start": start, "n": posts, "zone": ZONE},
        )
        conn.execute(sa.text("UPDATE posts SET local_time = (scheduled_at AT TIME ZONE timezone)"))
        conn.execute(
            sa.text("""
            INSERT INTO post_targets (tenant_id, post_id, channel_id, state, scheduled_at, due_at, attempt_count,
                                      idempotency_key)
            SELECT tenant_id, id, :c, 'scheduled', scheduled_at, scheduled_at, 0, md5(id::text) FROM posts
        """),
            {"c": channel_id},
        )
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text("VACUUM ANALYZE"))
    engine.dispose()
    with app.app_context(), db.new_session() as session:
        bind_tenant(session, tenant_id)
        _token, secret = tokens.create(session, name="bench", scopes=["read", "write"], user_id=owner_id,
                                       created_by_id=owner_id)  # fmt: skip
        session.commit()
    return secret, channel_id, start


def hammer(base_url: str, token: str, channel_id: int, start: datetime, args: argparse.Namespace) -> dict[str, Any]:
    # A plain http.client connection per client thread: the load generator shares the machine's cores with
    # the server, so it should spend as little of them as it can.
    address = urllib.parse.urlsplit(base_url)
    headers = {"Authorization": f"Bearer {token}"}
    lists: list[float] = []
    creates: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    go = threading.Event()
    stop_at = [0.0]

    def client(index: int) -> None:
        rng = random.Random(index)
        connection = http.client.HTTPConnection(address.hostname or "127.0.0.1", address.port, timeout=10)
        n = 0
        go.wait()
        while time.monotonic() < stop_at[0]:
            n += 1
            creating = args.create_every and n % args.create_every == 0
            began = time.perf_counter()
            try:
                if creating:
                    when = datetime.now(UTC) + timedelta(days=rng.randint(2, 360), minutes=rng.randint(0, 1439))
                    body = {"text": f"Bench post {index}-{n}", "channel_ids": [channel_id],
                            "scheduled_at": when.isoformat()}  # fmt: skip
                    sent = {**headers, "Content-Type": "application/json", "Idempotency-Key": uuid.uuid4().hex}
                    connection.request("POST", "/api/v1/posts", body=json.dumps(body), headers=sent)
                else:
                    first = start + timedelta(days=rng.randint(0, 350))
                    query = {"from": first.isoformat(), "to": (first + timedelta(days=7)).isoformat(), "limit": "50"}
                    connection.request("GET", "/api/v1/posts?" + urllib.parse.urlencode(query), headers=headers)
                response = connection.getresponse()
                data = response.read()
                if response.will_close:
                    connection.close()  # the next request connects again
                elapsed = (time.perf_counter() - began) * 1000
                with lock:
                    (creates if creating else lists).append(elapsed)
                    if response.status != (201 if creating else 200):
                        errors.append(f"{response.status} {data[:200]!r}")
            except Exception as exc:  # a refused or dropped connection is an error, not a crash of the bench
                connection.close()
                with lock:
                    errors.append(repr(exc))

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(args.clients)]
    for thread in threads:
        thread.start()
    began = time.monotonic()
    stop_at[0] = began + args.seconds
    go.set()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    if errors:
        say(f"{len(errors)} errors, first: {errors[0]}")
    return {
        "rps": round(len(lists) / elapsed, 1),
        "p50_ms": round(percentile(lists, 50) or 0, 1),
        "p99_ms": round(percentile(lists, 99) or 0, 1),
        "errors": len(errors),
        "list_requests": len(lists),
        "create_rps": round(len(creates) / elapsed, 1),
        "create_p99_ms": round(percentile(creates, 99) or 0, 1),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    var_dir = Path(tempfile.mkdtemp(prefix="multipost-api-bench-"))
    servers: list[Any] = []
    web: subprocess.Popen[bytes] | None = None
    try:
        pg = EmbeddedPostgres(var_dir / "postgres", free_port(), durable=False)
        pg.start()
        servers.append(pg)
        pg.create_database(DATABASE)
        redis_server = EmbeddedRedis(var_dir / "redis", free_port(), durable=False)
        redis_server.start()
        servers.append(redis_server)
        port = free_port()
        # The roles `make run` uses: the web speaks as the app role, under row-level security (saas/rls.py).
        urls = pg.role_urls(DATABASE)
        env = dict(os.environ)
        env.update(
            {
                **urls,
                "REDIS_URL": redis_server.url,
                "VAR_DIR": str(var_dir),
                "MAIL_DIR": str(var_dir / "mail"),
                "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
                "API_RATE_LIMIT": "1000000 per minute",  # one token here stands for many integrations
                "PYTHONUNBUFFERED": "1",
            }
        )
        subprocess.run(
            [sys.executable, "-m", "alembic", "upgrade", "head"], cwd=ROOT, env=env, check=True, capture_output=True
        )
        say("migrated")
        from saas import create_app

        with mock.patch.dict(os.environ, env, clear=True):
            app = create_app({**urls, "REDIS_URL": redis_server.url})
        token, channel_id, start = seed(app, urls["MIGRATION_DATABASE_URL"], args.posts)
        say(f"seeded {args.posts} posts")
        log = open(var_dir / "web.log", "wb")  # noqa: SIM115 (closed with the process)
        web = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "wsgi:app", "--bind", f"127.0.0.1:{port}", "--workers",
             str(args.web_workers), "--threads", str(args.web_threads)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                if urllib3.request("GET", f"{base_url}/healthz", timeout=2).status == 200:
                    break
            if web.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {(var_dir / 'web.log').read_text()[-2000:]}")
            time.sleep(0.2)
        say(f"web ready ({args.web_workers} workers); {args.clients} clients for {args.seconds:g} s")
        # Warm each worker (imports, first queries) before the clock starts.
        warm = argparse.Namespace(**{**vars(args), "seconds": 2.0})
        hammer(base_url, token, channel_id, start, warm)
        result = hammer(base_url, token, channel_id, start, args)
        result.update(
            {
                "posts": args.posts,
                "clients": args.clients,
                "seconds": args.seconds,
                "web_workers": args.web_workers,
                "web_threads": args.web_threads,
            }
        )
        return result
    finally:
        if web is not None and web.poll() is None:
            web.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                web.wait(timeout=15)
        for server in reversed(servers):
            server.stop()
        shutil.rmtree(var_dir, ignore_errors=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--posts", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=16, help="concurrent client threads")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--create-every", type=int, default=10, help="every n-th request of a client creates a post")
    parser.add_argument("--web-workers", type=int, default=2 * (os.cpu_count() or 1),
                        help="gunicorn workers (as `make run`: two per core)")  # fmt: skip
    parser.add_argument("--web-threads", type=int, default=1, help="gunicorn threads per worker (as `make run`)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    print(json.dumps(run(parse_args())), flush=True)
