"""The hub as a benchmark runs it: the distributed form (API, relay worker, three validators,
beat: each its own process group, as tests/integration/relay/stack.py starts them) on a fresh
Postgres database and Redis db, or the embedded form (`islands up`, SQLite); and what each
process costs (peak resident memory, CPU seconds) while a scenario runs."""

from __future__ import annotations

import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from hub.db.engine import make_engine, make_sessionmaker, transaction
from hub.db.migrate import upgrade
from hub.services.bootstrap import register_devnet
from hub.services.netpolicy import NetworkPolicy
from hub.services.relay import validator_config

ROOT = Path(__file__).resolve().parents[1]
PG_SERVER = os.environ.get(
    "BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_SERVER = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")
ADMIN_TOKEN = "bench-admin-" + uuid.uuid4().hex
PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")
VALIDATORS = ("validator-1", "validator-2", "validator-3")
ISLANDS = str(Path(sys.executable).parent / "islands")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def fresh_database(prefix: str = "bench") -> Iterator[str]:
    """A database of its own on the bench's Postgres server, dropped afterwards."""
    base = make_url(PG_SERVER)
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def fresh_redis() -> Iterator[str]:
    """A Redis db number nobody else is likely to use right now, flushed before and after."""
    url = f"{REDIS_SERVER}/{random.randrange(1, 16)}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


def hub_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env.update(
        {
            "HUB_DATABASE_URL": database_url,
            "HUB_ADMIN_TOKEN": ADMIN_TOKEN,
            "HUB_RPC_ALLOW_PRIVATE": "true",  # the bench's chains are on loopback
            # BENCH_LOG_LEVEL=INFO logs every step's report (with times), to see where a
            # scenario's time goes; it costs throughput
            "HUB_LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
        }
    )
    env.update(extra)
    return env


def register(db_url: str, doc: dict[str, Any]) -> None:
    """Migrate a fresh database and register the devnet's chains, routes and asset."""
    upgrade(db_url)
    engine = make_engine(db_url)
    with transaction(make_sessionmaker(engine)) as session:
        register_devnet(session, doc, "bench", NetworkPolicy(allow_private=True), 10.0)
    engine.dispose()


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited early: {log.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer in {timeout:g} s")


@dataclass
class Procs:
    """Named process groups this bench started; stopped by group, never by name."""

    log_dir: Path
    env: dict[str, str]
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, argv: list[str], **extra_env: str) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**self.env, **extra_env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs[name] = proc
        return proc

    def kill(self, name: str, sig: signal.Signals = signal.SIGTERM) -> None:
        proc = self.procs.pop(name, None)
        if proc is None:
            return
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=30)
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.kill(name)


def celery_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "relayers", *args]


@dataclass
class Distributed:
    """The distributed hub over a devnet: start the API, then the workers when told."""

    doc: dict[str, Any]
    db_url: str
    redis_url: str
    procs: Procs
    api: str = ""

    def key(self, role: str, index: int = 0) -> str:
        keys = [a["private_key"] for a in self.doc["accounts"] if a["role"] == role]
        return str(keys[index])

    def start_api(self, workers: int = 1) -> None:
        port = free_port()
        argv = [ISLANDS, "api", "--port", str(port)]
        proc = self.procs.start("api", [*argv, "--workers", str(workers)])
        self.api = f"http://127.0.0.1:{port}"
        wait_http(self.api + "/healthz", proc, self.procs.log_dir / "api.log")

    def start_workers(self) -> None:
        for i, queue in enumerate(VALIDATORS):
            self.start_validator(i, queue)
        self.start_relay()
        self.start_beat()

    def start_beat(self) -> None:
        self.procs.start("beat", celery_argv("beat", "-s", str(self.procs.log_dir / "beat-s")))

    def start_relay(self) -> None:
        # BENCH_RELAY_POOL="--pool solo" (or "--pool threads -c 4") measures another pool
        pool = os.environ.get("BENCH_RELAY_POOL", "-c 2").split()
        argv = celery_argv(
            "worker", "-Q", "relay,deliver", *pool, "-n", f"relay-{uuid.uuid4().hex[:6]}@%h"
        )
        self.procs.start(
            "relay",
            [*argv, "--without-gossip", "--without-mingle"],
            HUB_RELAYER_KEY=self.key("relayer"),
            HUB_GUARDIAN_KEY=self.key("deployer"),
        )

    def start_validator(self, index: int, queue: str) -> None:
        config = self.procs.log_dir / "validator.json"
        config.write_text(json.dumps(validator_config.from_devnet(self.doc), indent=2))
        argv = celery_argv("worker", "-Q", queue, "-c", "1", "--pool", "solo", "-n")
        self.procs.start(
            queue,
            [*argv, f"{queue}-{uuid.uuid4().hex[:6]}@%h", "--without-gossip", "--without-mingle"],
            HUB_VALIDATOR_KEY=self.key("validator", index),
            HUB_VALIDATOR_CONFIG=str(config),
        )

    def stop_workers(self, sig: signal.Signals = signal.SIGKILL) -> None:
        for name in [*VALIDATORS, "relay", "beat"]:
            self.procs.kill(name, sig)

    def scanned(self) -> int:
        """Chains whose validator set a scan has read: the relay worker is working."""
        engine = make_engine(self.db_url)
        with engine.connect() as conn:
            n = conn.execute(text("SELECT count(*) FROM validator_sets")).scalar_one()
        engine.dispose()
        return int(n)


@contextmanager
def distributed(doc: dict[str, Any], log_dir: Path, **env: str) -> Iterator[Distributed]:
    """A fresh database and Redis db, the devnet registered, the API up (workers not yet)."""
    with fresh_database() as db_url, fresh_redis() as redis_url:
        register(db_url, doc)
        procs = Procs(log_dir, hub_env(db_url, HUB_REDIS_URL=redis_url, **env))
        hub = Distributed(doc, db_url, redis_url, procs)
        try:
            hub.start_api()
            yield hub
        finally:
            procs.stop_all()


@dataclass
class Embedded:
    """`islands up` (the form `make run` starts): its own chains, API and relay, SQLite."""

    doc: dict[str, Any]
    api: str
    state_dir: Path


@contextmanager
def embedded(
    state_dir: Path, block_time: float, chains: int = 2
) -> Iterator[tuple[Embedded, Procs]]:
    from bench.chain import free_base_port

    state_dir.mkdir(parents=True, exist_ok=True)
    db_url = f"sqlite:///{state_dir / 'hub.db'}"
    procs = Procs(state_dir, hub_env(db_url, HUB_ADMIN_TOKEN=secrets.token_urlsafe(32)))
    port = free_port()
    argv = [ISLANDS, "up", "--chains", str(chains)]
    argv += ["--base-port", str(free_base_port(chains)), "--state-dir", str(state_dir)]
    argv += ["--block-time", f"{block_time:g}", "--port", str(port)]
    try:
        proc = procs.start("embedded", argv)
        api = f"http://127.0.0.1:{port}"
        wait_http(api + "/healthz", proc, state_dir / "embedded.log", timeout=120)
        doc = json.loads((state_dir / "devnet.json").read_text())
        yield Embedded(doc, api, state_dir), procs
    finally:
        procs.stop_all()


# -- what each process costs ---------------------------------------------------------------


def _groups() -> dict[int, list[int]]:
    """{process group id: pids} for every process on the machine."""
    groups: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        groups.setdefault(int(fields[2]), []).append(int(entry))
    return groups


def children(pid: int) -> list[int]:
    """The direct children of `pid` (e.g. the anvil nodes `islands up` started)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
            found.append(int(entry))
    return sorted(found)


def _cpu_rss(pid: int) -> tuple[float, int] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        statm = Path(f"/proc/{pid}/statm").read_text().split()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICKS
    return cpu, int(statm[1]) * PAGE


@dataclass
class Usage:
    """Per role: peak resident memory of its whole process group (summed over the group's
    processes at one sample) and of its largest process; CPU seconds used while sampled."""

    peak_rss: dict[str, int] = field(default_factory=dict)
    peak_rss_one: dict[str, int] = field(default_factory=dict)
    cpu_start: dict[int, float] = field(default_factory=dict)
    cpu_last: dict[int, float] = field(default_factory=dict)
    role_of: dict[int, str] = field(default_factory=dict)

    def cpu_seconds(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for pid, last in self.cpu_last.items():
            role = self.role_of[pid]
            out[role] = out.get(role, 0.0) + last - self.cpu_start.get(pid, 0.0)
        return out

    def as_dict(self) -> dict[str, dict[str, float]]:
        cpu = self.cpu_seconds()
        return {
            role: {
                "peak_rss_mb": round(self.peak_rss[role] / 2**20, 1),
                "peak_rss_largest_process_mb": round(self.peak_rss_one[role] / 2**20, 1),
                "cpu_seconds": round(cpu.get(role, 0.0), 1),
            }
            for role in sorted(self.peak_rss)
        }


class Sampler(threading.Thread):
    """Samples the process groups of `roles` ({role: group leader pid}) once a second."""

    def __init__(self, roles: dict[str, int], every: float = 1.0) -> None:
        super().__init__(name="sampler", daemon=True)
        self.roles = dict(roles)
        self.every = every
        self.usage = Usage()
        self._stop_event = threading.Event()
        self.sample(first=True)

    def add(self, role: str, pgid: int) -> None:
        self.roles[role] = pgid

    def sample(self, first: bool = False) -> None:
        groups = _groups()
        for role, pgid in list(self.roles.items()):
            total, largest = 0, 0
            for pid in groups.get(pgid, []):
                got = _cpu_rss(pid)
                if got is None:
                    continue
                cpu, rss = got
                self.usage.role_of[pid] = role
                if first or pid not in self.usage.cpu_last:
                    self.usage.cpu_start.setdefault(pid, cpu if first else 0.0)
                self.usage.cpu_last[pid] = cpu
                total, largest = total + rss, max(largest, rss)
            self.usage.peak_rss[role] = max(self.usage.peak_rss.get(role, 0), total)
            self.usage.peak_rss_one[role] = max(self.usage.peak_rss_one.get(role, 0), largest)

    def run(self) -> None:
        while not self._stop_event.wait(self.every):
            self.sample()

    def finish(self) -> dict[str, dict[str, float]]:
        self._stop_event.set()
        self.join(timeout=5)
        self.sample()
        return self.usage.as_dict()


def roles_of(procs: Procs, extra: dict[str, int] | None = None) -> dict[str, int]:
    return {**{name: p.pid for name, p in procs.procs.items()}, **(extra or {})}
