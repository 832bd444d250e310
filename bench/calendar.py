"""Benchmark (not a test): the calendar's month view and list API for one busy workspace among many.

Seeds, with set-based SQL (generate_series), W workspaces holding 1,000,000 post targets in all;
one of them has 10,000 posts (two channels each) spread over a year. Then, in this process, times
R requests each of the month view (HTML, the busiest month) and the list API (JSON, 30 days) for
that workspace through the real app (WSGI, logged in), and prints ONE JSON line on stdout:

    {"p50_ms", "p95_ms", "p99_ms", "rows_total", "month_p95_ms", "list_p95_ms", "posts_in_month", ...}

Times are server time: from the request entering the WSGI app to the full response body.
Goal (2-core machine): p95 <= 100 ms.

Usage (progress on stderr):

    .venv/bin/python -m bench.calendar                      # 10,000 posts / 1,000,000 targets / 5,000 workspaces
    .venv/bin/python -m bench.calendar --targets 100000     # a quicker one
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # also runnable as `python bench/calendar.py`
    sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from bench.stats import percentile  # noqa: E402
from saas.embedded import EmbeddedPostgres, EmbeddedRedis, free_port  # noqa: E402

DATABASE = "calendar_bench"
PASSWORD = "bench-password-not-secret-42"
ZONE = "Europe/Berlin"


def say(message: str) -> None:
    print(f"[calendar bench] {message}", file=sys.stderr, flush=True)


def seed(engine: sa.Engine, workspaces: int, targets: int, posts: int, password_hash: str) -> dict[str, Any]:
    """Everything in a handful of INSERT … SELECT statements; returns the busy workspace's slug and counts."""
    busy_targets = posts * 2
    others = workspaces - 1
    per_other = max(1, (targets - busy_targets) // others)  # one target per post elsewhere
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=182)
    with engine.begin() as conn:
        conn.execute(
            sa.text("""
            INSERT INTO tenants (slug, name, kind, timezone)
            SELECT 'ws-' || n, 'Workspace ' || n, 'direct', :zone FROM generate_series(1, :w) AS n
        """),
            {"w": workspaces, "zone": ZONE},
        )
        busy = conn.execute(sa.text("SELECT id, slug FROM tenants WHERE slug = 'ws-1'")).one()
        user_id = conn.execute(
            sa.text("""
            INSERT INTO users (email, name, password_hash, timezone, email_verified_at, session_version)
            VALUES ('owner@bench.example', 'Bench Owner', :hash, :zone, now(), 1) RETURNING id
        """),
            {"hash": password_hash, "zone": ZONE},
        ).scalar_one()
        conn.execute(
            sa.text("INSERT INTO memberships (tenant_id, user_id, role) VALUES (:t, :u, 'owner')"),
            {"t": busy.id, "u": user_id},
        )
        # One channel per workspace, and a second one in the busy workspace.
        conn.execute(
            sa.text("""
            INSERT INTO channels (tenant_id, network, remote_id, handle, display_name, health)
            SELECT id, 'sandbox', 'acct-' || id, 'handle' || id, 'Channel ' || id, 'ok' FROM tenants
            UNION ALL
            SELECT :busy, 'sandbox', 'acct-busy-2', 'busysecond', 'Busy second', 'ok'
        """),
            {"busy": busy.id},
        )
        say("tenants and channels")
        # Posts: the busy workspace's evenly over a year, every other workspace's likewise.
        conn.execute(
            sa.text("""
            INSERT INTO posts (tenant_id, author_id, text, media_urls, revision, state, scheduled_at, timezone,
                               local_time)
            SELECT t.id, NULL, 'Post ' || n || ' of workspace ' || t.id || ': fresh bread, coffee and news',
                   '[]'::jsonb, 1,
                   CASE WHEN n % 10 = 0 THEN 'published' ELSE 'scheduled' END,
                   :start + make_interval(secs => n::float8 / p.per * 31536000),
                   :zone, NULL
            FROM tenants t
            CROSS JOIN LATERAL (SELECT CASE WHEN t.id = :busy THEN :posts ELSE :per_other END AS per) AS p
            CROSS JOIN LATERAL generate_series(1, p.per) AS n
        """),
            {"start": start, "zone": ZONE, "busy": busy.id, "posts": posts, "per_other": per_other},
        )
        conn.execute(sa.text("UPDATE posts SET local_time = (scheduled_at AT TIME ZONE timezone)"))
        say("posts")
        conn.execute(
            sa.text("""
            INSERT INTO post_targets (tenant_id, post_id, channel_id, state, scheduled_at, due_at, attempt_count,
                                      idempotency_key)
            SELECT p.tenant_id, p.id, c.id,
                   CASE WHEN p.state = 'published' THEN 'published' ELSE 'scheduled' END,
                   p.scheduled_at, p.scheduled_at, 0, md5(p.id::text || '-' || c.id::text)
            FROM posts p JOIN channels c ON c.tenant_id = p.tenant_id
        """)
        )
        say("post targets")
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text("VACUUM ANALYZE"))
        total = conn.execute(sa.text("SELECT count(*) FROM post_targets")).scalar_one()
        busy_posts = conn.execute(sa.text("SELECT count(*) FROM posts WHERE tenant_id = :t"), {"t": busy.id}).scalar()
    return {"slug": busy.slug, "rows_total": total, "busy_posts": busy_posts, "workspaces": workspaces}


def busiest_month(engine: sa.Engine, slug: str) -> tuple[date, int]:
    with engine.connect() as conn:
        row = conn.execute(
            sa.text("""
            SELECT date_trunc('month', p.scheduled_at AT TIME ZONE :zone)::date AS month, count(*)
            FROM posts p JOIN tenants t ON t.id = p.tenant_id WHERE t.slug = :slug
            GROUP BY 1 ORDER BY 2 DESC LIMIT 1
        """),
            {"slug": slug, "zone": ZONE},
        ).one()
    return row[0], row[1]


def run(args: argparse.Namespace) -> dict[str, Any]:
    var_dir = Path(tempfile.mkdtemp(prefix="calendar-bench-"))
    pg = EmbeddedPostgres(var_dir / "postgres", free_port(), durable=False)
    redis_server = EmbeddedRedis(var_dir / "redis", free_port(), durable=False)
    pg.start()
    redis_server.start()
    try:
        pg.create_database(DATABASE)
        urls = pg.role_urls(DATABASE)  # the app under row-level security, as in production
        env = {
            **os.environ,
            **urls,
            "REDIS_URL": redis_server.url,
            "VAR_DIR": str(var_dir),
            "MAIL_DIR": str(var_dir / "mail"),
        }
        subprocess.run(
            [sys.executable, "-m", "alembic", "upgrade", "head"], cwd=ROOT, env=env, check=True, capture_output=True
        )
        say("migrated")
        from saas import passwords

        engine = sa.create_engine(urls["MIGRATION_DATABASE_URL"])  # the owner seeds every workspace
        seeded_at = time.monotonic()
        facts = seed(engine, args.workspaces, args.targets, args.posts, passwords.hash_password(PASSWORD))
        seed_seconds = time.monotonic() - seeded_at
        say(f"seeded {facts['rows_total']:,} targets in {seed_seconds:.0f} s")
        month, in_month = busiest_month(engine, facts["slug"])
        engine.dispose()

        with mock.patch.dict(os.environ, env, clear=True):
            from saas import create_app

            app = create_app({"WTF_CSRF_ENABLED": False})
        if not args.no_gc_freeze:
            gc.freeze()  # as wsgi.py does after create_app()
        client = app.test_client()
        client.post("/login", data={"email": "owner@bench.example", "password": PASSWORD})
        slug = facts["slug"]
        month_url = f"/w/{slug}/calendar?view=month&date={month.isoformat()}"
        list_from = month + timedelta(days=3)
        list_url = f"/w/{slug}/calendar/events?from={list_from}&to={list_from + timedelta(days=30)}"
        for url in (month_url, list_url):  # warm up: connections, templates, the zone database
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)
        timings: dict[str, list[float]] = {"month": [], "list": []}
        listed = 0
        for _ in range(args.requests):
            for kind, url in (("month", month_url), ("list", list_url)):
                started = time.perf_counter()
                response = client.get(url)
                body = response.get_data()
                timings[kind].append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200
                if kind == "list":
                    listed = len(json.loads(body)["posts"])
        both = timings["month"] + timings["list"]
        return {
            "p50_ms": round(statistics.median(both), 1),
            "p95_ms": round(percentile(both, 95) or 0, 1),
            "p99_ms": round(percentile(both, 99) or 0, 1),
            "rows_total": facts["rows_total"],
            "month_p50_ms": round(statistics.median(timings["month"]), 1),
            "month_p95_ms": round(percentile(timings["month"], 95) or 0, 1),
            "list_p50_ms": round(statistics.median(timings["list"]), 1),
            "list_p95_ms": round(percentile(timings["list"], 95) or 0, 1),
            "requests_each": args.requests,
            "posts_in_month": in_month,
            "posts_in_list": listed,
            "busy_workspace_posts": facts["busy_posts"],
            "workspaces": facts["workspaces"],
            "seed_seconds": round(seed_seconds, 1),
            "gc_freeze": not args.no_gc_freeze,
        }
    finally:
        redis_server.stop()
        pg.stop()
        subprocess.run(["rm", "-rf", str(var_dir)], check=False)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspaces", type=int, default=5000)
    parser.add_argument("--targets", type=int, default=1_000_000, help="post targets in all workspaces")
    parser.add_argument("--posts", type=int, default=10_000, help="posts of the measured workspace")
    parser.add_argument("--requests", type=int, default=200, help="requests of each kind")
    parser.add_argument("--no-gc-freeze", action="store_true", help="skip wsgi.py's gc.freeze() (to compare)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    print(json.dumps(run(parse_args(argv))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
