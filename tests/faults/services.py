"""A private Postgres and a private Redis for the fault tests: their own data directory and
port, so a test may kill and restart them without touching the machine's shared ones (which
other test runs use)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import redis
from sqlalchemy import create_engine, text

from tests.conftest import free_port


def _pg_bin() -> Path:
    """Debian's server binaries (newest version installed), or $ISLANDS_PG_BIN."""
    if "ISLANDS_PG_BIN" in os.environ:
        return Path(os.environ["ISLANDS_PG_BIN"])
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
    )
    return found[-1].parent if found else Path("/usr/lib/postgresql/15/bin")


PG_BIN = _pg_bin()
PG_USER = "postgres"  # initdb and postgres refuse to run as root: run them as this user


def _as_pg_user() -> dict[str, object]:
    """subprocess arguments that run a command as the postgres user when we are root."""
    return {"user": PG_USER, "group": PG_USER} if os.geteuid() == 0 else {}


def _chown(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, PG_USER, PG_USER)


class PrivatePostgres:
    """`initdb` into a directory of its own, `postgres` on a port of its own."""

    def __init__(self, root: Path) -> None:
        self.data = root / "pgdata"
        self.socket_dir = root / "pgsock"
        self.log = root / "postgres.log"
        self.port = free_port()

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://{PG_USER}@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{PG_USER}@127.0.0.1:{self.port}/{database}"

    def init(self) -> None:
        for path in (self.data.parent, self.socket_dir):
            path.mkdir(parents=True, exist_ok=True)
            _chown(path)
        self.log.touch()
        _chown(self.log)
        subprocess.run(
            [str(PG_BIN / "initdb"), "-D", str(self.data), "-U", PG_USER, "--auth=trust", "-N"],
            check=True,
            capture_output=True,
            **_as_pg_user(),  # type: ignore[arg-type]
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 "
            "-c max_connections=200 -c fsync=off -c full_page_writes=off"
        )
        subprocess.run(
            [
                *(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log)),
                *("-w", "-t", "60", "-o", options, "start"),
            ],
            check=True,
            capture_output=True,
            **_as_pg_user(),  # type: ignore[arg-type]
        )
        self.wait_ready()

    def crash(self) -> None:
        """Stop at once, as a crash does: no checkpoint, every connection cut; the next start
        recovers from the write-ahead log."""
        subprocess.run(
            [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"],
            check=True,
            capture_output=True,
            **_as_pg_user(),  # type: ignore[arg-type]
        )

    def stop(self) -> None:
        subprocess.run(
            [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"],
            check=False,
            capture_output=True,
            **_as_pg_user(),  # type: ignore[arg-type]
        )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            probe = subprocess.run(
                [str(PG_BIN / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)],
                check=False,
            )
            if probe.returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError(f"private postgres not ready: {self.log.read_text()[-2000:]}")

    def create_database(self, name: str) -> str:
        engine = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        return self.url(name)


class PrivateRedis:
    """`redis-server` on a port of its own, no persistence: a restart empties it, as a
    broker lost with its queues."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = (self.root / "redis.log").open("ab")
        self.proc = subprocess.Popen(
            [
                *("redis-server", "--bind", "127.0.0.1", "--port", str(self.port)),
                *("--save", "", "--appendonly", "no", "--dir", str(self.root)),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if redis.Redis.from_url(self.url, socket_timeout=1).ping():
                    return
            except redis.RedisError:
                time.sleep(0.1)
        raise RuntimeError("private redis did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.proc = None
