"""py-spy (from PyPI, installed into .venv when missing) against the hub's processes while a
scenario runs: `py-spy record --idle --format raw` per process group, so waiting on the
chain or the database shows as well as computing. The summary is, per process, the share of
samples under each of the hub's own functions (inclusive) and each leaf frame (self)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from bench.stack import ROOT

PY_SPY = Path(sys.executable).parent / "py-spy"
OWN = ("hub/", "adapters/", "relayers/")


def ensure_py_spy() -> str:
    if PY_SPY.exists():
        return str(PY_SPY)
    uv = ROOT / ".tools" / "uv" / "bin" / "uv"
    installer = [str(uv), "pip", "install", "--python", sys.executable, "py-spy"]
    if not uv.exists():
        installer = [sys.executable, "-m", "pip", "install", "py-spy"]
    subprocess.run(installer, check=True, capture_output=True)
    found = shutil.which("py-spy", path=str(PY_SPY.parent))
    if found is None:
        raise RuntimeError("py-spy did not install")
    return found


def record(roles: dict[str, int], out: Path, seconds: int) -> list[subprocess.Popen[bytes]]:
    """Start one recorder per role (its group leader and its subprocesses)."""
    py_spy = ensure_py_spy()
    out.mkdir(parents=True, exist_ok=True)
    recorders = []
    for role, pid in roles.items():
        argv = [py_spy, "record", "--pid", str(pid), "--subprocesses", "--idle", "--rate", "50"]
        argv += ["--duration", str(seconds), "--format", "raw", "--output", str(out / role)]
        log = (out / f"{role}.log").open("wb")
        recorders.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT))
    return recorders


def finish(recorders: list[subprocess.Popen[bytes]]) -> None:
    for proc in recorders:
        proc.send_signal(2)  # SIGINT: py-spy writes what it has and exits
    for proc in recorders:
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


def _frame(text: str) -> str:
    """ "fn (.../site-packages/psycopg/cursor.py:12)" -> "fn (psycopg/cursor.py)"."""
    name, _, where = text.partition(" (")
    path = where.rsplit(":", 1)[0].rstrip(")")
    for marker in ("site-packages/", "/python3.11/", "/wt/bench/", "/bench/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{name} ({path})"


# What a stack is doing, judged by the first matching frame from the leaf up.
ACTIVITY = (
    ("database (psycopg)", ("psycopg/",)),
    ("chain RPC (http)", ("urllib3/", "http/client.py", "httpx/", "httpcore/", "requests/")),
    ("broker (redis/kombu)", ("redis/", "kombu/")),
    ("signing/hashing", ("coincurve/", "eth_keys/", "eth_hash/", "Crypto/", "eth_account/")),
    ("ABI/web3 encoding", ("eth_abi/", "web3/", "eth_utils/", "hexbytes/")),
    ("SQLAlchemy ORM/core", ("sqlalchemy/",)),
    ("celery/billiard", ("celery/", "billiard/")),
)


def activity(frames: list[str]) -> str:
    for frame in reversed(frames):
        for label, markers in ACTIVITY:
            if any(m in frame for m in markers):
                return label
    return "other Python"


def _process(root: str) -> str:
    """'process 123:"python -m celery ..."' -> 'pid 123'."""
    return "pid " + root.split(":", 1)[0].removeprefix("process ").strip()


def summarize(path: Path, top: int = 10) -> dict[str, Any]:
    """Per process of one raw profile (collapsed stacks, idle included): samples, the share
    of each activity, the leaf frames (self) and the hub's own functions (inclusive)."""
    procs: dict[str, dict[str, Counter[str]]] = {}
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        root, *rest = stack.split(";")
        frames = [_frame(f) for f in rest]
        if not frames:
            continue
        count = int(count_text)
        found = procs.setdefault(
            _process(root), {"self": Counter(), "own": Counter(), "activity": Counter()}
        )
        found["self"][frames[-1]] += count
        found["activity"][activity(frames)] += count
        for frame in set(frames):
            if any(own in frame for own in OWN):
                found["own"][frame] += count
    return {pid: _shares(counters, top) for pid, counters in procs.items()}


def _shares(counters: dict[str, Counter[str]], top: int) -> dict[str, Any]:
    total = sum(counters["self"].values())

    def share(counter: Counter[str], k: int) -> list[tuple[str, float]]:
        return [(name, round(100 * v / total, 1)) for name, v in counter.most_common(k)]

    return {
        "samples": total,
        "activity_percent": share(counters["activity"], 20),
        "self_percent": share(counters["self"], top),
        "own_code_inclusive_percent": share(counters["own"], top),
    }
