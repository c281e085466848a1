"""Reads: `GET /v1/messages/{id}` and `GET /v1/transfers?src_tx_hash=` with many delivered
transfers in Postgres (each with its five timeline events and two attestations), at 64
concurrent clients (wrk, from Debian's packages), beside a bare FastAPI endpoint that returns
a same-sized JSON from memory (bench/bare_app.py) under the same server settings (uvicorn,
2 workers, as `islands api --workers 2`).

The rows are made by Postgres itself (INSERT ... SELECT over generate_series) into a database
of their own, dropped after the run (1,000,000 messages: about a minute, 3.3 GB). When the
Postgres server's disk lacks the room and the server runs on this machine, that database goes
in a tablespace in RAM (/dev/shm); the table says so."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError

from bench.result import Budget, Result, rate
from bench.stack import ISLANDS, PG_SERVER, Procs, free_port, hub_env, wait_http
from hub.db.migrate import upgrade

CLIENTS = 64
SAMPLE = 20_000  # ids and tx hashes the load generator picks from at random
ROOT = Path(__file__).resolve().parents[1]
WRK_SCRIPT = ROOT / "bench" / "wrk_paths.lua"

CHAINS_SQL = """
INSERT INTO chains (name, chain_id, family, rpc_urls, finality, gateway_address,
                    bridge_address, status, created_at, updated_at)
VALUES ('alpha', 31337, 'evm', '["http://127.0.0.1:1"]', '0', :gw, :br, 'active', now(), now()),
       ('beta', 31338, 'evm', '["http://127.0.0.1:2"]', '0', :gw, :br, 'active', now(), now());
INSERT INTO assets (symbol, home_chain_key, home_token, status, created_at)
SELECT 'ITT', id, :token, 'active', now() FROM chains WHERE name = 'alpha';
"""
MESSAGES_SQL = """
INSERT INTO messages (id, version, src_chain_id, src_gateway, dst_chain_id, nonce, sender,
    recipient, gas_limit, payload, state, src_block_number, src_block_hash, src_tx_hash,
    src_log_index, dst_tx_hash, dst_block_number, attempts, created_at, updated_at)
SELECT '0x' || encode(sha256(('m' || i)::bytea), 'hex'), 2, 31337, :gw, 31338, i, :br, :br,
       200000, decode(repeat('ab', 160), 'hex'), 'delivered', i / 10,
       '0x' || encode(sha256(('b' || (i / 10))::bytea), 'hex'),
       '0x' || encode(sha256(('t' || i)::bytea), 'hex'), 0,
       '0x' || encode(sha256(('d' || i)::bytea), 'hex'), i / 10, 1, now(), now()
FROM generate_series(1, :n) AS i;
INSERT INTO transfers (message_id, asset_id, home_chain_id, home_token, sender, recipient, amount)
SELECT id, (SELECT id FROM assets LIMIT 1), 31337, :token, :user, :user, '1000000000000'
FROM messages;
INSERT INTO message_events (message_id, state, at)
SELECT m.id, s.state, now() FROM messages m
CROSS JOIN (VALUES ('observed'), ('finalized'), ('attested'), ('submitted'), ('delivered'))
    AS s(state);
INSERT INTO attestations (message_id, validator, epoch, signature, created_at)
SELECT m.id, v.address, 1, '0x' || repeat('ab', 65), now() FROM messages m
CROSS JOIN (VALUES (:v1), (:v2)) AS v(address);
"""
ADDRESSES = {
    "gw": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
    "br": "0xCf7Ed3AccA5a467e9e704C703E8D87F634fB0Fc9",
    "token": "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512",
    "user": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
    "v1": "0x14dC79964da2C08b23698B3D3cc7Ca32193d9955",
    "v2": "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f",
}


# made afresh by mkdir, mode 700, which fails if anyone made the name first
RAM_DIR = Path("/dev/shm/islands-bench-pg")  # noqa: S108
RAM_TABLESPACE = "islands_bench_ram"
# A message with its transfer, five timeline entries, two signatures and their indexes takes
# about 3.3 KB in Postgres (1,000,000 of them: 3.3 GB).
BYTES_PER_MESSAGE = 3_400
HEADROOM = 512 * 2**20  # a full disk stops Postgres


@contextmanager
def reads_database(n: int) -> Iterator[tuple[str, dict[str, Any]]]:
    """A database of `n` delivered messages, loaded now and dropped afterwards (the reads only
    read it): its URL, and how it was made. On the Postgres server's disk when that has room;
    else in a tablespace in RAM (/dev/shm), when the server is on this machine."""
    admin = create_engine(make_url(PG_SERVER), isolation_level="AUTOCOMMIT")
    name = f"bench_reads_{n}"
    try:
        with admin.connect() as conn:
            _drop_old(conn)
            tablespace = _place(conn, n)
            where = f" TABLESPACE {tablespace}" if tablespace else ""
            conn.execute(text(f'CREATE DATABASE "{name}"{where}'))
        url = make_url(PG_SERVER).set(database=name).render_as_string(hide_password=False)
        began = time.time()
        load(url, n)
        made = {"load_seconds": round(time.time() - began, 1), "in_ram": bool(tablespace)}
        yield url, made
    finally:
        with admin.connect() as conn:
            _drop_old(conn)
        admin.dispose()


def _drop_old(conn: Connection) -> None:
    """Reads databases left by an earlier run (templates of older bench versions included),
    and the RAM tablespace: one of 1,000,000 messages takes 3.3 GB."""
    old = conn.execute(
        text("SELECT datname FROM pg_database WHERE datname LIKE 'bench\\_reads\\_%'")
    ).scalars()
    for name in list(old):
        conn.execute(text(f'ALTER DATABASE "{name}" WITH IS_TEMPLATE false'))
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    conn.execute(text(f"DROP TABLESPACE IF EXISTS {RAM_TABLESPACE}"))
    shutil.rmtree(RAM_DIR, ignore_errors=True)


def _place(conn: Connection, n: int) -> str | None:
    """None for the server's own disk, or the RAM tablespace's name; refuses, saying what it
    needs, a load that fits neither."""
    need = n * BYTES_PER_MESSAGE + HEADROOM
    try:
        data_dir = Path(conn.execute(text("SHOW data_directory")).scalar_one())
    except DBAPIError:  # not a superuser: nothing to check, and no tablespace to make
        return None
    if not data_dir.is_dir():  # a server elsewhere: its disk is its operator's to watch
        return None
    free = shutil.disk_usage(data_dir).free
    if free >= need:
        return None
    if shutil.disk_usage(RAM_DIR.parent).free < need + 2 * HEADROOM:
        raise RuntimeError(
            f"reads of {n:,} messages needs about {need / 2**30:.1f} GB free on the Postgres "
            f"server's disk ({data_dir} has {free / 2**30:.1f} GB) or in {RAM_DIR.parent}: "
            "free some, or run --quick"
        )
    owner = data_dir.stat()
    RAM_DIR.mkdir(mode=0o700)
    os.chown(RAM_DIR, owner.st_uid, owner.st_gid)  # the server's own user writes there
    conn.execute(text(f"CREATE TABLESPACE {RAM_TABLESPACE} LOCATION '{RAM_DIR}'"))
    print(
        f"reads: {data_dir} has {free / 2**30:.1f} GB free, {n:,} messages need "
        f"{need / 2**30:.1f} GB: their database goes in RAM ({RAM_DIR})",
        file=sys.stderr,
    )
    return RAM_TABLESPACE


def load(url: str, n: int) -> None:
    """The schema, then the rows, with foreign-key triggers off and the secondary indexes
    dropped during the inserts and built afterwards (much faster than row by row)."""
    upgrade(url)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("SET session_replication_role = replica"))
        indexes = conn.execute(
            text(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
                "AND tablename IN ('messages', 'transfers', 'message_events', 'attestations') "
                "AND indexname NOT IN (SELECT conname FROM pg_constraint)"
            )
        ).all()
        for index_name, _ in indexes:
            conn.execute(text(f'DROP INDEX "{index_name}"'))
        for statement in (CHAINS_SQL + MESSAGES_SQL).split(";\n"):
            if statement.strip():
                conn.execute(text(statement), {**ADDRESSES, "n": n})
        for _, definition in indexes:
            conn.execute(text(definition))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    engine.dispose()


def sample_paths(db_url: str, out: Path) -> tuple[Path, Path]:
    """Files of request paths: random message ids, and random source tx hashes."""
    engine = create_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT id, src_tx_hash FROM messages ORDER BY random() LIMIT :k"), {"k": SAMPLE}
        ).all()
    engine.dispose()
    messages, transfers = out / "paths-messages.txt", out / "paths-transfers.txt"
    messages.write_text("".join(f"/v1/messages/{r[0]}\n" for r in rows))
    transfers.write_text("".join(f"/v1/transfers?src_tx_hash={r[1]}\n" for r in rows))
    return messages, transfers


def wrk(url: str, paths: Path, seconds: int) -> dict[str, Any]:
    """64 connections for `seconds`; requests/s and latency percentiles in ms."""
    argv = ["wrk", "-t2", f"-c{CLIENTS}", f"-d{seconds}s", "--timeout", "10s"]
    argv += ["-s", str(WRK_SCRIPT), url]
    env = {"BENCH_PATHS": str(paths), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        argv, check=False, capture_output=True, text=True, env=env, timeout=seconds + 60
    )
    line = next(x for x in out.stdout.splitlines() if x.startswith("{"))
    got = json.loads(line)
    return {
        "requests": got["requests"],
        "requests_per_s": rate(got["requests"], got["duration_us"] / 1e6),
        "errors": got["errors"],
        "non_2xx": got["non2xx"],
        "latency_ms": {k: round(got[f"{k}_us"] / 1000, 2) for k in ("p50", "p95", "p99", "max")},
    }


def ensure_wrk() -> None:
    """wrk from Debian's packages, installed when missing."""
    if shutil.which("wrk"):
        return
    install = ["apt-get", "install", "-y", "-qq", "wrk"]
    if subprocess.run(install, check=False, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True)
        subprocess.run(install, check=True, capture_output=True)


def bodies(api: str, paths: tuple[Path, Path], out: Path) -> tuple[Path, Path]:
    """One real answer of each endpoint, for the bare app to return from memory."""
    files = []
    for name, path_file in zip(("message", "transfers"), paths, strict=True):
        first = path_file.read_text().splitlines()[0]
        body = httpx.get(api + first, timeout=30).raise_for_status().json()
        target = out / f"bare-{name}.json"
        target.write_text(json.dumps(body))
        files.append(target)
    return files[0], files[1]


def serve(procs: Procs, name: str, argv: list[str], port: int, **env: str) -> str:
    proc = procs.start(name, argv, **env)
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/healthz", proc, procs.log_dir / f"{name}.log")
    return url


def run(result: Result, budget: Budget, work: Path, n: int, seconds: int) -> None:
    ensure_wrk()
    out = work / "reads"
    out.mkdir(parents=True, exist_ok=True)
    result.figures["messages"] = n
    with reads_database(n) as (db_url, made):
        result.figures.update(made)
        place = "in RAM, for want of disk" if made["in_ram"] else "on disk"
        result.row("reads database", f"{n:,} messages loaded in {made['load_seconds']} s, {place}")
        paths = sample_paths(db_url, out)
        procs = Procs(out, hub_env(db_url))
        try:
            api_port, bare_port = free_port(), free_port()
            hub_argv = [ISLANDS, "api", "--port", str(api_port), "--workers", "2"]
            api = serve(procs, "api", hub_argv, api_port)
            message_body, transfers_body = bodies(api, paths, out)
            bare_argv = [sys.executable, "-m", "uvicorn", "bench.bare_app:app"]
            bare_argv += ["--port", str(bare_port), "--workers", "2", "--log-level", "info"]
            bare = serve(
                procs,
                "bare",
                bare_argv,
                bare_port,
                BENCH_BARE_MESSAGE=str(message_body),
                BENCH_BARE_TRANSFERS=str(transfers_body),
            )
            measure(result, budget, api, bare, paths, seconds, out)
        finally:
            procs.stop_all()


def measure(
    result: Result,
    budget: Budget,
    api: str,
    bare: str,
    paths: tuple[Path, Path],
    seconds: int,
    out: Path,
) -> None:
    bare_paths = out / "paths-bare-messages.txt", out / "paths-bare-transfers.txt"
    for hub_file, bare_file, prefix in zip(paths, bare_paths, ("/bare", "/bare"), strict=True):
        lines = hub_file.read_text().splitlines()
        random.shuffle(lines)
        bare_file.write_text("".join(prefix + line + "\n" for line in lines))
    runs = [
        ("GET /v1/messages/{id}", api, paths[0]),
        ("bare, same JSON as a message", bare, bare_paths[0]),
        ("GET /v1/transfers?src_tx_hash=", api, paths[1]),
        ("bare, same JSON as a transfer list", bare, bare_paths[1]),
    ]
    for label, base, path_file in runs:
        if budget.left() < seconds + 10:
            result.partial(f"time ran out before {label}")
            return
        got = wrk(base, path_file, seconds)
        result.figures[label] = got
        lat = got["latency_ms"]
        result.row(
            f"{label}, {CLIENTS} clients",
            f"{got['requests_per_s']:,.0f} req/s, p50 {lat['p50']} / p99 {lat['p99']} ms"
            + (
                f", {got['errors'] + got['non_2xx']} errors"
                if got["errors"] or got["non_2xx"]
                else ""
            ),
        )
