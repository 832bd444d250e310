"""Benchmark (not a test): a burst of due posts through the normal process set, judged by the fake network.

Sets up T tenants, each with one owner and one Sandbox channel connected to its own account on a
FakeSandboxNetwork (a separate process, request latency L), makes N targets due at the same moment,
runs the process set `make run` starts (gunicorn web with 2 workers, `flask --app wsgi worker` x W,
`flask --app wsgi clock`), waits until every target is final, and prints ONE JSON line on stdout:

    {"targets", "tenants", "latency_ms", "workers", "seconds_to_drain", "posts_per_s",
     "lateness_p50_s", "lateness_p99_s", "duplicates", "missing", "peak_rss_mb", ...extras}

- lateness: the fake's journal `received_at` of the request that created each post, minus the
  target's `scheduled_at` (both wall clocks of this one machine);
- duplicates / missing: from the fake's own summary (posts per Idempotency-Key) against the keys
  this script seeded, never from our database;
- peak_rss_mb: the largest resident size of any single process of the set (web master and its
  workers, RQ workers and their forked work-horses, the clock), sampled every 0.2 s;
- fake_ceiling_rps: what a fresh fake answers (POST /api/v1/posts, same latency) with nothing else
  running, at the concurrency the run reached at the fake (its journal's max in flight), and
  fake_max_rps at --ceiling-concurrency, so the result reads as a share of the fake's own limit.

--steady: one target due per second for --seconds (default 60), lateness reported the same way.

Usage (progress goes to stderr, the JSON line to stdout):

    .venv/bin/python -m bench.publish_burst                                  # the goal: 10,000 / 500 / 100 ms
    .venv/bin/python -m bench.publish_burst --targets 1000 --tenants 50      # a quick one
    .venv/bin/python -m bench.publish_burst --steady                         # 1 target/s for 60 s
    .venv/bin/python -m bench.publish_burst --workers 4 --env PUBLISH_THREADS=64 --env PUBLISH_BATCH_SIZE=100
    PUBLISH_THREADS=64 .venv/bin/python -m bench.publish_burst               # the environment is passed on too

Goals on a 2-core machine (bench/README.md): N=10,000, T=500, L=100 ms drained in <= 30 s (>= 330 posts/s),
duplicates 0, missing 0, no process above 250 MB resident; steady lateness p99 <= 1.5 s.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # also runnable as `python bench/publish_burst.py`
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import psutil  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from bench import networks  # noqa: E402
from bench.stats import percentile, say  # noqa: E402
from saas import config  # noqa: E402
from saas.embedded import EmbeddedPostgres, EmbeddedRedis, free_port  # noqa: E402

DATABASE = "multipost_bench"
MOUNT = "/sandbox"
FINAL_STATES = ("published", "failed", "unconfirmed", "blocked", "canceled")
SETTINGS_REPORTED = (
    "PUBLISH_BATCH_SIZE",
    "PUBLISH_CLAIM_LIMIT",
    "PUBLISH_THREADS",
    "PUBLISH_LEASE_SECONDS",
    "NETWORK_TIMEOUT_SECONDS",
)
GOALS = {"seconds_to_drain": 30.0, "posts_per_s": 330.0, "peak_rss_mb": 250.0, "steady_lateness_p99_s": 1.5}
MB = 1024 * 1024
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def parse_time(raw: str) -> datetime:
    moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# ---------------------------------------------------------------------------------------------------------------------
# Processes


@dataclass
class Child:
    role: str  # "web", "worker", "clock", "fake"
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


def start_child(role: str, name: str, command: list[str], env: dict[str, str], log_dir: Path) -> Child:
    log_path = log_dir / f"{name}.log"
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: Ctrl-C reaches us, and we stop it (and its forks)
        )
    return Child(role, name, process, log_path)


def stop_child(child: Child, timeout: float = 15.0) -> None:
    """SIGTERM the process (warm shutdown), then SIGKILL whatever is left of its own process group."""
    process = child.process
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            say(f"{child.name} did not stop within {timeout:.0f}s; killing it")
    # The group is ours (start_new_session made the child its leader): forked work-horses, gunicorn workers.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)


def start_fake(latency_ms: float, log_dir: Path, name: str = "fake", network: str = "sandbox") -> tuple[Child, str]:
    """The fake network in its own process (its own GIL); returns it and its base URL."""
    log_path = log_dir / f"{name}.log"
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(
            [sys.executable, *networks.fake_command(network, latency_ms, MOUNT)],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log_file,
            start_new_session=True,
        )
    child = Child("fake", name, process, log_path)
    assert process.stdout is not None
    first = process.stdout.readline().decode().strip()
    if not first.startswith("http"):
        stop_child(child)
        raise RuntimeError(f"the fake network did not start: {first!r}\n{child.tail()}")
    return child, first


def cpu_seconds(pid: int, descendants: bool = True) -> float:
    """CPU used by a process, the children it has reaped, and its live descendants (or by itself alone)."""
    try:
        process = psutil.Process(pid)
        times = process.cpu_times()
        if not descendants:  # this benchmark: its children are the measured processes, counted on their own
            return times.user + times.system
        total = times.user + times.system + times.children_user + times.children_system
        for descendant in process.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                d = descendant.cpu_times()
                total += d.user + d.system
        return total
    except psutil.Error:
        return 0.0


def role_cpu(pids_by_role: dict[str, list[int]]) -> dict[str, float]:
    return {
        role: sum(cpu_seconds(pid, descendants=role != "bench") for pid in pids) for role, pids in pids_by_role.items()
    }


def code_version() -> dict[str, Any]:
    """Which code was measured: the commit, and the files that differ from it (others edit while we run)."""

    def git(*args: str) -> str:
        result = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return result.stdout.rstrip("\n")

    dirty = [line[3:] for line in git("status", "--porcelain", "--", "saas", "publishers", "tenants").splitlines()]
    return {"commit": git("rev-parse", "--short", "HEAD"), "dirty": dirty}


def box_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (all cores) since boot."""
    times = psutil.cpu_times()._asdict()
    return float(sum(times.get(name, 0.0) for name in ("user", "nice", "system", "irq", "softirq", "steal")))


class Sampler(threading.Thread):
    """Samples the resident size of every process of each role (descendants included) every `interval`.

    Peaks are kept for the processes' whole life (from start-up) and, separately, for the burst window
    (from `in_window = True`): start-up has its own transient peaks.
    """

    def __init__(self, roots: dict[str, list[int]], interval: float = 0.2) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self.roots = roots
        self.interval = interval
        self.stop_event = threading.Event()
        self.peak_by_role: dict[str, int] = {}
        self.peak: tuple[int, str, str] = (0, "", "")  # bytes, role, process description
        self.peak_in_window_by_role: dict[str, int] = {}
        self.in_window = False
        self.samples = 0

    @staticmethod
    def _scan() -> dict[int, tuple[int, int]]:
        """pid -> (ppid, rss bytes) for every process, from /proc/<pid>/stat (one cheap read each)."""
        table: dict[int, tuple[int, int]] = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as stat:
                    fields = stat.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue  # gone meanwhile
            # after "pid (comm)": state ppid ... ; rss (pages) is field 24 of stat, index 21 here
            table[int(entry.name)] = (int(fields[1]), int(fields[21]) * PAGE_SIZE)
        return table

    def sample(self) -> None:
        table = self._scan()
        children: dict[int, list[int]] = {}
        for pid, (ppid, _) in table.items():
            children.setdefault(ppid, []).append(pid)
        for role, pids in self.roots.items():
            family = [pid for pid in pids if pid in table]
            for pid in family:  # grows while iterating: breadth-first over the descendants
                family.extend(children.get(pid, ()))
            for pid in family:
                rss = table[pid][1]
                if rss > self.peak_by_role.get(role, 0):
                    self.peak_by_role[role] = rss
                if self.in_window and rss > self.peak_in_window_by_role.get(role, 0):
                    self.peak_in_window_by_role[role] = rss
                if rss > self.peak[0]:
                    with contextlib.suppress(psutil.Error):
                        description = " ".join(psutil.Process(pid).cmdline()[1:6])
                        self.peak = (rss, role, f"pid {pid}: {description}")
        self.samples += 1

    def run(self) -> None:
        while not self.stop_event.is_set():
            self.sample()
            self.stop_event.wait(self.interval)


# ---------------------------------------------------------------------------------------------------------------------
# Seeding


@dataclass
class Seeded:
    channels: list[tuple[int, int, int, str]] = field(default_factory=list)  # (tenant, owner, channel, handle)
    keys: list[str] = field(default_factory=list)


def seed(
    app: Any, control: httpx.Client, tenants: int, targets: int, network: str = "sandbox", base_url: str = ""
) -> Seeded:
    """T tenants (owner + one channel on its own fake account), then N targets due in 2099."""
    from saas import db
    from saas.channels import service as channel_service
    from saas.posts.models import Post, PostState, PostTarget, TargetState
    from tenants import service as tenant_service
    from tenants.models import TenantKind, User

    seeded = Seeded()
    run_id = uuid.uuid4().hex[:6]
    far = datetime(2099, 1, 1, tzinfo=UTC)
    with app.app_context():
        for i in range(tenants):
            handle = f"bench{run_id}_{i:05d}"
            response = control.post("/accounts", json={"handle": handle, "display_name": f"Bench {i}"})
            response.raise_for_status()
            account = response.json()
            with db.new_session() as session:
                owner = User(
                    email=f"owner{i}-{run_id}@bench.example",
                    name=f"Bench owner {i}",
                    password_hash="!bench: no login",  # not an argon2 hash: nobody can log in as this user
                    email_verified_at=datetime.now(UTC),
                )
                session.add(owner)
                session.flush()
                tenant = tenant_service.create_tenant(
                    session, name=f"Bench tenant {i} {run_id}", kind=TenantKind.DIRECT, owner=owner
                )
                profile, credentials = networks.channel_values(network, base_url, account, handle, f"Bench {i}")
                channel = channel_service.connect(session, network, profile, credentials)
                session.commit()
                seeded.channels.append((tenant.id, owner.id, channel.id, handle))
            if (i + 1) % 100 == 0:
                say(f"seeded {i + 1}/{tenants} tenants")

        posts_table, targets_table = Post.__table__, PostTarget.__table__
        chunk = 2000
        with db.system_engine().begin() as connection:  # every tenant's posts at once
            for start in range(0, targets, chunk):
                numbers = range(start, min(targets, start + chunk))
                owners = [seeded.channels[n % tenants] for n in numbers]
                post_ids = connection.execute(
                    sa.insert(posts_table).returning(posts_table.c.id, sort_by_parameter_order=True),
                    [
                        {
                            "tenant_id": tenant_id,
                            "author_id": owner_id,
                            "text": f"Bench post {n} for @{handle}",
                            "media_urls": [],
                            "revision": 1,
                            "state": PostState.SCHEDULED,
                            "scheduled_at": far,
                            "timezone": "UTC",
                        }
                        for n, (tenant_id, owner_id, _, handle) in zip(numbers, owners, strict=True)
                    ],
                ).scalars()
                rows = []
                for post_id, (tenant_id, _, channel_id, _) in zip(post_ids, owners, strict=True):
                    key = uuid.uuid4().hex
                    seeded.keys.append(key)
                    rows.append(
                        {
                            "tenant_id": tenant_id,
                            "post_id": post_id,
                            "channel_id": channel_id,
                            "state": TargetState.SCHEDULED,
                            "scheduled_at": far,
                            "due_at": far,
                            "attempt_count": 0,
                            "idempotency_key": key,
                        }
                    )
                connection.execute(sa.insert(targets_table), rows)
        with sa.create_engine(app.config["MIGRATION_DATABASE_URL"]).begin() as connection:  # the owner may
            connection.execute(sa.text("ANALYZE"))
    return seeded


MAKE_DUE_SQL = sa.text("""
WITH ranked AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM post_targets)
UPDATE post_targets t
SET scheduled_at = CAST(:first AS timestamptz) + make_interval(secs => ranked.n * CAST(:step AS double precision)),
    due_at = CAST(:first AS timestamptz) + make_interval(secs => ranked.n * CAST(:step AS double precision))
FROM ranked
WHERE t.id = ranked.id
""")
SYNC_POSTS_SQL = sa.text("UPDATE posts p SET scheduled_at = t.scheduled_at FROM post_targets t WHERE t.post_id = p.id")


# ---------------------------------------------------------------------------------------------------------------------
# The fake network's own ceiling


def _hammer(base_url: str, tokens: list[str], threads: int, seconds: float, ready: Any, go: Any, results: Any) -> None:
    """One load process: `threads` httpx clients posting as fast as the fake answers, for `seconds`.

    The clients are built (and connected) before the window opens: building an httpx.Client costs
    tens of milliseconds (its TLS context), which must not count against the fake.
    """
    done = [0] * threads
    errors = [0] * threads
    clients = [httpx.Client(base_url=base_url, timeout=30) for _ in range(threads)]
    window: list[float] = []

    def loop(index: int) -> None:
        client = clients[index]
        n = 0
        while time.monotonic() < window[0]:
            token = tokens[(index + n * threads) % len(tokens)]
            n += 1
            try:
                response = client.post(
                    "/api/v1/posts",
                    headers={"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex},
                    json={"text": f"ceiling {os.getpid()}-{index}-{n}", "media_urls": []},
                )
            except httpx.HTTPError:
                errors[index] += 1
                continue
            if response.status_code in (200, 201):
                done[index] += 1
            else:
                errors[index] += 1

    ready.put(os.getpid())
    go.wait()
    window.append(time.monotonic() + seconds)
    pool = [threading.Thread(target=loop, args=(i,), daemon=True) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    for client in clients:
        client.close()
    results.put((sum(done), sum(errors)))


def measure_ceiling(latency_ms: float, concurrency: int, seconds: float, log_dir: Path) -> dict[str, Any]:
    """Requests/s a fresh fake answers at `concurrency` requests in flight, with nothing else running."""
    concurrency = max(1, concurrency)
    fake, base = start_fake(latency_ms, log_dir, name=f"fake-ceiling-{concurrency}")
    try:
        with httpx.Client(base_url=f"{base}/_control", timeout=60) as control:
            for scope in ("account", "app"):
                control.put("/rate_limits", json={"scope": scope, "limit": 10**9, "window_seconds": 300})
            tokens = [
                control.post("/accounts", json={"handle": f"ceiling{i}"}).json()["access_token"]
                for i in range(min(concurrency, 100))
            ]
            processes = 1 if concurrency < 16 else 2  # a single client process runs out of GIL before the fake
            context = multiprocessing.get_context("spawn")
            ready, results, go = context.Queue(), context.Queue(), context.Event()
            split = [concurrency // processes + (1 if i < concurrency % processes else 0) for i in range(processes)]
            loaders = [
                context.Process(target=_hammer, args=(base, tokens, n, seconds, ready, go, results), daemon=True)
                for n in split
            ]
            for loader in loaders:
                loader.start()
            for _ in loaders:
                ready.get(timeout=120)
            cpu_before, wall_before = cpu_seconds(fake.pid), time.monotonic()
            go.set()
            totals = [results.get(timeout=seconds + 120) for _ in loaders]
            wall = time.monotonic() - wall_before
            cpu = cpu_seconds(fake.pid) - cpu_before
            for loader in loaders:
                loader.join(timeout=10)
            journal = control.get("/journal").json()
    finally:
        stop_child(fake)
    answered = sum(t[0] for t in totals)
    return {
        "rps": round(answered / wall, 1),
        "concurrency": concurrency,
        "answered": answered,
        "seconds": round(wall, 2),
        "errors": sum(t[1] for t in totals),
        "max_in_flight": journal.get("max_in_flight"),
        "fake_cpu_pct": round(100 * cpu / wall, 1),
        "load_processes": processes,
    }


# ---------------------------------------------------------------------------------------------------------------------
# The run


@dataclass
class Bench:
    args: argparse.Namespace
    var_dir: Path
    servers: list[EmbeddedPostgres | EmbeddedRedis] = field(default_factory=list)
    children: list[Child] = field(default_factory=list)
    fake: Child | None = None
    load_at_due: float = 0.0
    code: dict[str, Any] = field(default_factory=dict)
    db_counters_at_due: dict[str, int] = field(default_factory=dict)

    def cleanup(self) -> None:
        for child in reversed(self.children):
            stop_child(child)
        self.children.clear()
        if self.fake is not None:
            stop_child(self.fake)
            self.fake = None
        for server in reversed(self.servers):
            with contextlib.suppress(Exception):
                server.stop()
        self.servers.clear()

    def check_children(self) -> None:
        for child in self.children:
            if child.process.poll() is not None:
                raise RuntimeError(f"{child.name} exited with {child.process.returncode}:\n{child.tail()}")

    def run(self) -> dict[str, Any]:
        args = self.args
        log_dir = self.var_dir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)

        say(f"servers under {self.var_dir}")
        self.code = code_version()
        pg = EmbeddedPostgres(self.var_dir / "postgres", free_port(), durable=False)
        pg.start()
        self.servers.append(pg)
        pg.create_database(DATABASE)
        redis_server = EmbeddedRedis(self.var_dir / "redis", free_port(), durable=False)
        redis_server.start()
        self.servers.append(redis_server)
        # The roles of production (saas/rls.py): the app under row-level security, the dispatcher as the system role.
        urls, redis_url = pg.role_urls(DATABASE), redis_server.url

        self.fake, base_url = start_fake(args.latency_ms, log_dir, network=args.network)
        say(f"fake network at {base_url} (pid {self.fake.pid}, {args.latency_ms:g} ms per request)")

        web_port = free_port()
        env = dict(os.environ)
        env.update(
            {
                **urls,
                "REDIS_URL": redis_url,
                "SANDBOX_BASE_URL": base_url,
                "VAR_DIR": str(self.var_dir),
                "MAIL_DIR": str(self.var_dir / "mail"),
                "PORT": str(web_port),
                "PUBLIC_BASE_URL": f"http://127.0.0.1:{web_port}",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(dict(item.split("=", 1) for item in args.env))
        with mock.patch.dict(os.environ, env, clear=True):
            settings = config.load()
        reported = {name: settings[name] for name in SETTINGS_REPORTED}

        subprocess.run(
            [sys.executable, "-m", "alembic", "upgrade", "head"], cwd=ROOT, env=env, check=True, capture_output=True
        )
        say("migrated")

        from saas import create_app

        with mock.patch.dict(os.environ, env, clear=True):
            app = create_app({**urls, "REDIS_URL": redis_url, "SANDBOX_BASE_URL": base_url})
        logging.getLogger("httpx").setLevel(logging.WARNING)
        targets = args.seconds if args.steady else args.targets
        with httpx.Client(base_url=f"{base_url}/_control", timeout=60) as control:
            seeding = time.monotonic()
            seeded = seed(app, control, args.tenants, targets, args.network, base_url)
            say(f"seeded {args.tenants} tenants and {targets} targets in {time.monotonic() - seeding:.1f}s")

            python = sys.executable
            commands = [
                (
                    "web",
                    "web",
                    [python, "-m", "gunicorn", "wsgi:app", "--bind", f"127.0.0.1:{web_port}"]
                    + ["--workers", str(args.web_workers), "--access-logfile", "-"],
                ),
                ("clock", "clock", [python, "-m", "flask", "--app", "wsgi", "clock"]),
            ] + [
                ("worker", f"worker{i}", [python, "-m", "flask", "--app", "wsgi", "worker"])
                for i in range(args.workers)
            ]
            roots: dict[str, list[int]] = {}
            for role, name, command in commands:
                child = start_child(role, name, command, env, log_dir)
                self.children.append(child)
                roots.setdefault(role, []).append(child.pid)
            sampler = Sampler(roots)
            sampler.start()
            self.wait_ready(redis_url, web_port)
            say("pids: " + ", ".join(f"{child.name} {child.pid}" for child in self.children))
            sampler.in_window = True

            engine = sa.create_engine(urls["SYSTEM_DATABASE_URL"], pool_size=1, max_overflow=0)  # every tenant's
            first_due = datetime.now(UTC) + timedelta(seconds=args.lead_seconds)
            step = 1.0 if args.steady else 0.0
            with engine.begin() as connection:
                connection.execute(MAKE_DUE_SQL, {"first": first_due, "step": step})
                connection.execute(SYNC_POSTS_SQL)
                scheduled = dict(
                    connection.execute(sa.text("SELECT idempotency_key, scheduled_at FROM post_targets")).all()
                )
            last_due = max(scheduled.values())
            say(f"{targets} targets due from {first_due:%H:%M:%S.%f} to {last_due:%H:%M:%S.%f}")

            cpu_pids = self.cpu_pids(pg, redis_server)
            drained_at, states, cpu_window = self.wait_drained(engine, targets, first_due, last_due, cpu_pids)
            cpu_after = role_cpu(cpu_pids)
            cpu_after["box_busy"] = box_busy_seconds()
            load_at_drain = os.getloadavg()[0]
            db_counters = self.db_counters(engine)
            sampler.stop_event.set()
            sampler.join()
            sampler.sample()

            summary = control.get("/summary").json()
            entries = control.get("/journal/entries", params={"limit": str(10**9)}).json()
            summary, entries = networks.in_target_keys(args.network, seeded.keys, summary, entries)
            attempts = self.attempt_times(engine)
            engine.dispose()

        for child in reversed(self.children):
            stop_child(child)
        self.children.clear()
        if self.fake is not None:
            stop_child(self.fake)
            self.fake = None

        # -- what the fake saw ---------------------------------------------------------------------------------------
        seeded_keys = set(seeded.keys)
        posts_by_key = {row["key"]: row["posts"] for row in summary["posts_by_key"]}
        missing = sum(1 for key in seeded_keys if posts_by_key.get(key, 0) == 0)
        duplicates = sum(n - 1 for n in posts_by_key.values() if n > 1)
        first_received: dict[str, datetime] = {}
        last_answer: datetime | None = None
        for entry in entries:
            if entry["method"] != "POST" or entry["path"].rstrip("/") != networks.CREATE_PATH[args.network]:
                continue
            if entry["outcome"] != "committed":
                continue
            key = entry["details"].get("key") or entry["headers"].get("idempotency-key")
            received = parse_time(entry["received_at"])
            if key and (key not in first_received or received < first_received[key]):
                first_received[key] = received
            if entry["answered_at"]:
                answered = parse_time(entry["answered_at"])
                last_answer = answered if last_answer is None or answered > last_answer else last_answer
        lateness = [(at - scheduled[key]).total_seconds() for key, at in first_received.items() if key in scheduled]
        published_on_fake = len(first_received)

        cpu_used = {role: round(cpu_after[role] - cpu_window.get(role, 0.0), 1) for role in sorted(cpu_after)}
        start = first_due
        seconds_to_drain = (drained_at - start).total_seconds() if drained_at else None
        result: dict[str, Any] = {
            "mode": "steady" if args.steady else "burst",
            "targets": targets,
            "tenants": args.tenants,
            "latency_ms": args.latency_ms,
            "workers": args.workers,
            "seconds_to_drain": rounded(seconds_to_drain, 2),
            "posts_per_s": rounded(published_on_fake / seconds_to_drain, 1) if seconds_to_drain else None,
            "lateness_p50_s": rounded(percentile(lateness, 50)),
            "lateness_p99_s": rounded(percentile(lateness, 99)),
            "duplicates": duplicates,
            "missing": missing,
            "peak_rss_mb": round(sampler.peak[0] / MB, 1),
            # -- extras -----------------------------------------------------------------------------------------------
            "lateness_max_s": rounded(max(lateness) if lateness else None),
            "lateness_basis": "fake journal received_at of the creating POST minus post_targets.scheduled_at",
            "seconds_to_last_post": rounded((last_answer - start).total_seconds(), 2) if last_answer else None,
            "published_on_fake": published_on_fake,
            "duplicate_texts": len(summary.get("duplicate_texts", [])),
            "db_states": states,
            "fake_requests": summary["requests"],
            "db_attempts": attempts,
            # PostgreSQL's own counters over the window: sessions (= backend processes started) and transactions
            "db_server": {
                name: value - self.db_counters_at_due.get(name, 0) for name, value in sorted(db_counters.items())
            },
            "peak_rss_mb_by_role": {role: round(rss / MB, 1) for role, rss in sorted(sampler.peak_by_role.items())},
            # the same, once the process set was ready (start-up excluded: importing saas.passwords hashes a dummy
            # password with argon2's 64 MiB, a transient ~60 MB peak in every process that creates the app)
            "peak_rss_mb_in_run_by_role": {
                role: round(rss / MB, 1) for role, rss in sorted(sampler.peak_in_window_by_role.items())
            },
            "peak_rss_process": sampler.peak[2],
            "rss_samples": sampler.samples,
            "cpu_s": cpu_used,
            "box": {
                "cpus": psutil.cpu_count(),
                "loadavg_1m_at_due": round(self.load_at_due, 2),
                "loadavg_1m_at_drain": round(load_at_drain, 2),
                # CPU the whole machine spent in the window on anything but this benchmark's processes
                "other_cpu_s": round(
                    cpu_used.get("box_busy", 0.0) - sum(v for k, v in cpu_used.items() if k != "box_busy"), 1
                ),
            },
            "settings": reported | {"web_workers": args.web_workers, "lead_seconds": args.lead_seconds},
        }
        if args.steady:
            result["steady_seconds"] = args.seconds

        # -- the fake's own ceiling ------------------------------------------------------------------------------------
        if not args.no_ceiling:
            same = int(summary["requests"].get("max_in_flight") or 1)
            say(f"measuring the fake's ceiling at {same} in flight (same as the run), {args.ceiling_seconds:g}s")
            ceiling = measure_ceiling(args.latency_ms, same, args.ceiling_seconds, log_dir)
            result["fake_ceiling_rps"] = ceiling["rps"]
            result["fake_ceiling_concurrency"] = same
            result["share_of_ceiling"] = (
                rounded(result["posts_per_s"] / ceiling["rps"], 3) if result["posts_per_s"] and ceiling["rps"] else None
            )
            result["fake_ceiling"] = ceiling
            if args.ceiling_concurrency and args.ceiling_concurrency != same:
                say(f"measuring the fake's ceiling at {args.ceiling_concurrency} in flight, {args.ceiling_seconds:g}s")
                high = measure_ceiling(args.latency_ms, args.ceiling_concurrency, args.ceiling_seconds, log_dir)
                result["fake_max_rps"] = high["rps"]
                result["fake_max_rps_concurrency"] = args.ceiling_concurrency
                result["fake_max"] = high

        if args.steady:
            goals = {
                "steady_lateness_p99_s<=1.5": (result["lateness_p99_s"] or math.inf) <= GOALS["steady_lateness_p99_s"]
            }
        else:
            goals = {
                "seconds_to_drain<=30": (seconds_to_drain or math.inf) <= GOALS["seconds_to_drain"],
                "posts_per_s>=330": (result["posts_per_s"] or 0) >= GOALS["posts_per_s"],
            }
        goals |= {
            "duplicates==0": duplicates == 0,
            "missing==0": missing == 0,
            "peak_rss_mb<=250": result["peak_rss_mb"] <= GOALS["peak_rss_mb"],
        }
        result["goals_met"] = goals
        result["code"] = self.code
        result["var_dir"] = str(self.var_dir) if args.keep else None
        return result

    def wait_ready(self, redis_url: str, web_port: int, timeout: float = 90.0) -> None:
        """Web answers /healthz, the clock has ticked, and every RQ worker has registered."""
        from redis import Redis
        from rq import Worker

        connection = Redis.from_url(redis_url)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                self.check_children()
                web = False
                with contextlib.suppress(httpx.HTTPError):
                    web = httpx.get(f"http://127.0.0.1:{web_port}/healthz", timeout=2).status_code == 200
                ticked = connection.exists("dispatcher:last_tick") == 1
                workers = Worker.count(connection=connection)
                if web and ticked and workers >= self.args.workers:
                    say(f"process set ready: web, clock, {workers} worker(s)")
                    return
                time.sleep(0.2)
        finally:
            connection.close()
        raise RuntimeError("the process set did not become ready in time")

    def cpu_pids(self, pg: EmbeddedPostgres, redis_server: EmbeddedRedis) -> dict[str, list[int]]:
        pids: dict[str, list[int]] = {}
        for child in self.children:
            pids.setdefault(child.role, []).append(child.pid)
        with contextlib.suppress(OSError, ValueError, IndexError):
            pids["postgres"] = [int((pg.data_dir / "postmaster.pid").read_text().splitlines()[0])]
        if redis_server.process is not None:
            pids["redis"] = [redis_server.process.pid]
        if self.fake is not None:
            pids["fake"] = [self.fake.pid]
        pids["bench"] = [os.getpid()]
        return pids

    def wait_drained(
        self,
        engine: sa.Engine,
        targets: int,
        first_due: datetime,
        last_due: datetime,
        cpu_pids: dict[str, list[int]],
    ) -> tuple[datetime | None, dict[str, int], dict[str, float]]:
        """Poll the targets' states until all are final; CPU is counted from the first due moment."""
        args = self.args
        timeout = args.timeout or ((args.seconds + 120) if args.steady else 300)
        cpu_before: dict[str, float] | None = None
        states: dict[str, int] = {}
        last_report = 0.0
        query = sa.text("SELECT state, count(*) FROM post_targets GROUP BY state")
        while True:
            now = datetime.now(UTC)
            if cpu_before is None and now >= first_due:
                self.db_counters_at_due = self.db_counters(engine)
                cpu_before = role_cpu(cpu_pids)
                cpu_before["box_busy"] = box_busy_seconds()
                self.load_at_due = os.getloadavg()[0]
            with engine.connect() as connection:
                states = {row[0]: int(row[1]) for row in connection.execute(query)}
            final = sum(n for state, n in states.items() if state in FINAL_STATES)
            if final >= targets and now >= last_due:
                say(f"drained: {states}")
                assert cpu_before is not None
                return now, states, cpu_before
            elapsed = (now - first_due).total_seconds()
            if elapsed > timeout:
                say(f"timed out after {timeout:.0f}s: {states}")
                return None, states, cpu_before or {}
            if time.monotonic() - last_report >= 2:
                say(f"t={elapsed:+6.1f}s  final {final}/{targets}  {states}")
                last_report = time.monotonic()
            self.check_children()
            time.sleep(0.2)

    @staticmethod
    def db_counters(engine: sa.Engine) -> dict[str, int]:
        with engine.connect() as connection:
            row = connection.execute(
                sa.text(
                    "SELECT sessions, xact_commit, xact_rollback FROM pg_stat_database"
                    " WHERE datname = current_database()"
                )
            ).one()
        return {"sessions": int(row[0]), "commits": int(row[1]), "rollbacks": int(row[2])}

    def attempt_times(self, engine: sa.Engine) -> dict[str, Any]:
        """From our own records, for the breakdown: when attempts started, and how long they took."""
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text("""
                    SELECT EXTRACT(EPOCH FROM (a.started_at - t.scheduled_at)),
                           EXTRACT(EPOCH FROM (a.finished_at - a.started_at)),
                           a.latency_ms, a.outcome
                    FROM publish_attempts a JOIN post_targets t ON t.id = a.target_id
                """)
            ).all()
        started = [float(r[0]) for r in rows if r[0] is not None]
        took = [float(r[1]) for r in rows if r[1] is not None]
        network = [r[2] / 1000 for r in rows if r[2] is not None]
        outcomes: dict[str, int] = {}
        for r in rows:
            outcomes[r[3]] = outcomes.get(r[3], 0) + 1
        return {
            "count": len(rows),
            "outcomes": outcomes,
            "start_lateness_p50_s": rounded(percentile(started, 50)),
            "start_lateness_p99_s": rounded(percentile(started, 99)),
            "start_to_finish_p50_s": rounded(percentile(took, 50)),
            "start_to_finish_p99_s": rounded(percentile(took, 99)),
            "network_call_p50_s": rounded(percentile(network, 50)),
            "network_call_p99_s": rounded(percentile(network, 99)),
        }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Burst (or steady) publishing through dispatcher + workers + web against the fake network; "
        "prints one JSON line.",
    )
    parser.add_argument("--targets", type=int, default=10_000, help="targets due at the same moment (burst)")
    parser.add_argument("--tenants", type=int, default=500, help="tenants, each with one owner and one channel")
    parser.add_argument("--latency-ms", type=float, default=100.0, help="the fake network's latency per request")
    parser.add_argument(
        "--workers",
        type=int,
        default=config.load()["WORKER_PROCESSES"],
        help="RQ worker processes (default: as many as `make run` starts, WORKER_PROCESSES: one per core)",
    )
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn workers (`make run` starts 2)")
    parser.add_argument("--steady", action="store_true", help="one target due per second instead of a burst")
    parser.add_argument("--seconds", type=int, default=60, help="steady mode: how many seconds (= targets)")
    parser.add_argument("--lead-seconds", type=float, default=2.0, help="how far ahead of now the first due moment is")
    parser.add_argument("--timeout", type=float, default=0, help="give up after this many seconds past the due moment")
    parser.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE", help="extra environment for the process set"
    )
    parser.add_argument("--no-ceiling", action="store_true", help="skip measuring the fake network's own ceiling")
    parser.add_argument("--ceiling-seconds", type=float, default=5.0)
    parser.add_argument(
        "--ceiling-concurrency", type=int, default=256, help="also measure the fake at this many requests in flight"
    )
    parser.add_argument("--keep", action="store_true", help="keep the var dir (logs, database) afterwards")
    parser.add_argument("--network", choices=networks.NETWORKS, default="sandbox", help="which fake to publish to")
    args = parser.parse_args(argv)
    if args.network != "sandbox":
        args.no_ceiling = True  # the ceiling probe speaks the Sandbox protocol only
    for item in args.env:
        if "=" not in item:
            parser.error(f"--env wants KEY=VALUE, not {item!r}")
    if args.targets < 1 or args.tenants < 1 or args.workers < 1:
        parser.error("--targets, --tenants and --workers must be at least 1")
    return args


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """SIGINT and SIGTERM end the run through the `finally` that stops everything.

    Installed explicitly: a shell starts background jobs with SIGINT ignored, and Python then never
    turns Ctrl-C / `kill -INT` into KeyboardInterrupt.
    """

    def handler(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = {signum: signal.signal(signum, handler) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    var_dir = Path(tempfile.mkdtemp(prefix="publish-burst-"))
    bench = Bench(args, var_dir)
    try:
        with interruptible():
            result = bench.run()
    except KeyboardInterrupt:
        say("interrupted; stopping everything")
        return 130
    finally:
        # A second Ctrl-C must not cut the cleanup short and leave servers running.
        previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in (signal.SIGINT, signal.SIGTERM)}
        bench.cleanup()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if args.keep:
            say(f"kept {var_dir}")
        else:
            shutil.rmtree(var_dir, ignore_errors=True)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
