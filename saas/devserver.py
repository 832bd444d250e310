"""`make run`: everything a developer needs in one foreground command.

Starts PostgreSQL and Redis under var/ when DATABASE_URL / REDIS_URL are unset,
applies migrations, seeds the demo once, then runs the Procfile's web, worker
and clock processes with their output interleaved. Ctrl-C stops them all, then
the servers; the data stays in var/ for next time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from saas import config
from saas.embedded import EmbeddedPostgres, EmbeddedRedis

PG_PORT = 55432
REDIS_PORT = 56379
DATABASE = "multipost"


def _pump(name: str, stream: object) -> None:
    for line in iter(stream.readline, ""):  # type: ignore[attr-defined]
        sys.stdout.write(f"{name:<6}| {line}")
        sys.stdout.flush()


# Local fakes of real networks (from tests/fakes), so a demo can connect and publish without accounts.
LOCAL_NETWORKS = {
    "mastodon": (["-m", "tests.fakes.mastodon", "--port", "0", "--demo-user", "demo"], "MASTODON_LOCAL_URL"),
    "bluesky": (
        ["-m", "tests.fakes.bluesky", "--port", "0", "--demo-account", "demo.bsky.test:demo-demo-demo-demo"],
        "BLUESKY_LOCAL_PDS_URL",
    ),
    # OAuth networks: the fakes auto-approve as "demo" and know one fixed app (client id and secret).
    "x": (["-m", "tests.fakes.x", "--port", "0", "--demo-user", "demo"], "X_API_URL"),
    "linkedin": (["-m", "tests.fakes.linkedin", "--port", "0", "--demo-user", "demo"], "LINKEDIN_API_URL"),
    "facebook": (["-m", "tests.fakes.facebook", "--port", "0", "--demo-user", "demo"], "FACEBOOK_GRAPH_URL"),
    "instagram": (["-m", "tests.fakes.instagram", "--port", "0", "--demo-user", "demo"], "INSTAGRAM_GRAPH_URL"),
    "threads": (["-m", "tests.fakes.threads", "--port", "0", "--demo-user", "demo"], "THREADS_GRAPH_URL"),
}

DISPLAY_NAMES = {"x": "X", "linkedin": "LinkedIn"}


def _local_oauth_env(name: str, url: str) -> dict[str, str]:
    """Point an OAuth network's app settings at its local fake (read by saas.config)."""
    if name == "x":
        return {
            "X_CLIENT_ID": "fake-x-client",
            "X_CLIENT_SECRET": "fake-x-secret",
            "X_AUTHORIZE_URL": f"{url}/i/oauth2/authorize",
        }
    if name == "linkedin":
        return {
            "LINKEDIN_CLIENT_ID": "fake-linkedin-client",
            "LINKEDIN_CLIENT_SECRET": "fake-linkedin-secret",
            "LINKEDIN_AUTHORIZE_URL": f"{url}/oauth/v2/authorization",
            "LINKEDIN_TOKEN_URL": f"{url}/oauth/v2/accessToken",
        }
    prefix = name.upper()
    meta = {f"{prefix}_CLIENT_ID": "fake-meta-app", f"{prefix}_CLIENT_SECRET": "fake-meta-secret"}
    if name == "threads":
        return meta | {"THREADS_AUTHORIZE_URL": f"{url}/oauth/authorize"}
    return meta | {f"{prefix}_DIALOG_URL": url}


def _start_local_networks(python: str, env: dict[str, str]) -> list[subprocess.Popen[str]]:
    """Start the local fakes and put their URLs (and fake app credentials) in `env` (development only)."""
    if config.is_production() or not (config.PROJECT_ROOT / "tests" / "fakes").is_dir():
        return []
    started = []
    for name, (args, variable) in LOCAL_NETWORKS.items():
        child = subprocess.Popen(
            [python, *args], cwd=config.PROJECT_ROOT, env=env, stdout=subprocess.PIPE, text=True, start_new_session=True
        )
        started.append(child)
        assert child.stdout is not None
        url = child.stdout.readline().strip()
        if not url.startswith("http"):
            print(f"{name} (local) did not start; continuing without it.", flush=True)
            continue
        env[variable] = url
        if name not in ("mastodon", "bluesky"):
            for key, value in _local_oauth_env(name, url).items():
                env.setdefault(key, value)
        if name == "bluesky":
            env.setdefault("BLUESKY_APP_URL", url)  # post links open the fake's own pages
        print(f"{DISPLAY_NAMES.get(name, name.title()):<11} (local) {url}", flush=True)
    return started


# Stripe (local): a fake on 127.0.0.1 that stripe-python talks to, so the billing pages and Checkout work offline.
LOCAL_STRIPE = {
    "STRIPE_SECRET_KEY": "sk_test_local",
    "STRIPE_WEBHOOK_SECRET": "whsec_local",
    "STRIPE_PRICE_PRO": "price_local_pro",
    "STRIPE_PRICE_AGENCY": "price_local_agency",
}


def _start_local_stripe(python: str, env: dict[str, str], public_base_url: str) -> list[subprocess.Popen[str]]:
    """Start "Stripe (local)" unless a real STRIPE_SECRET_KEY is configured (development only)."""
    if config.is_production() or env.get("STRIPE_SECRET_KEY") or not (config.PROJECT_ROOT / "tests" / "fakes").is_dir():
        return []
    args = [
        *("--secret-key", LOCAL_STRIPE["STRIPE_SECRET_KEY"], "--webhook-secret", LOCAL_STRIPE["STRIPE_WEBHOOK_SECRET"]),
        *("--webhook-url", f"{public_base_url}/webhooks/stripe"),
        *("--price", f"{LOCAL_STRIPE['STRIPE_PRICE_PRO']}:2900:Pro"),
        *("--price", f"{LOCAL_STRIPE['STRIPE_PRICE_AGENCY']}:1900:Agency"),
    ]
    child = subprocess.Popen(
        [python, "-m", "tests.fakes.stripe", "--port", "0", *args],
        cwd=config.PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert child.stdout is not None
    url = child.stdout.readline().strip()
    if not url.startswith("http"):
        print("Stripe (local) did not start; billing stays off.", flush=True)
        return [child]
    env.update(LOCAL_STRIPE, STRIPE_API_BASE=url)
    print(f"Stripe      (local) {url}  (its Checkout page has Pay and Decline buttons)", flush=True)
    return [child]


def main() -> int:
    settings = config.load()
    var_dir = Path(settings["VAR_DIR"])
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    servers: list[EmbeddedPostgres | EmbeddedRedis] = []
    children: list[subprocess.Popen[str]] = []
    try:
        if not settings["DATABASE_URL"]:
            pg = EmbeddedPostgres(var_dir / "postgres", PG_PORT)
            pg.start()
            servers.append(pg)
            pg.create_database(DATABASE)
            # The app connects as a role under row-level security, cross-tenant work as the system role,
            # migrations as the owner: the same split as production (saas/rls.py).
            env.update(pg.role_urls(DATABASE))
            print(f"PostgreSQL  {env['DATABASE_URL']}  (data in {pg.data_dir})")
        if not settings["REDIS_URL"]:
            redis_server = EmbeddedRedis(var_dir / "redis", REDIS_PORT)
            redis_server.start()
            servers.append(redis_server)
            env["REDIS_URL"] = redis_server.url
            print(f"Redis       {env['REDIS_URL']}  (data in {redis_server.data_dir})")
        python = sys.executable
        children.extend(_start_local_networks(python, env))
        children.extend(_start_local_stripe(python, env, settings["PUBLIC_BASE_URL"]))
        subprocess.run([python, "-m", "alembic", "upgrade", "head"], check=True, env=env)
        subprocess.run([python, "-m", "flask", "--app", "wsgi", "seed-demo"], check=True, env=env)

        port = settings["PORT"]
        processes = {
            "web": [
                python,
                "-m",
                "gunicorn",
                "wsgi:app",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(settings["WEB_CONCURRENCY"]),
                "--threads",
                str(settings["WEB_THREADS"]),
                "--access-logfile",
                "-",
            ],
            **{
                f"worker-{n}" if n > 1 else "worker": [python, "-m", "flask", "--app", "wsgi", "worker"]
                for n in range(1, settings["WORKER_PROCESSES"] + 1)
            },
            "clock": [python, "-m", "flask", "--app", "wsgi", "clock"],
        }
        for name, command in processes.items():
            child = subprocess.Popen(
                command,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
            children.append(child)
            threading.Thread(target=_pump, args=(name, child.stdout), daemon=True).start()
        print(f"\nMultipost is running on http://127.0.0.1:{port}  (Ctrl-C stops everything)\n", flush=True)

        stopping = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stopping.set())
        while not stopping.wait(0.5):
            if any(child.poll() is not None for child in children):
                print("A process exited; stopping the others.", flush=True)
                return 1
        return 0
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
        for server in reversed(servers):
            server.stop()
        print("Stopped. Data is kept in var/.", flush=True)


if __name__ == "__main__":
    sys.exit(main())
