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
    """ "fn (path/to/file.py:12)" -> "fn (path/to/file.py)": lines apart, one function."""
    name, _, where = text.partition(" (")
    path = where.split(":")[0].rstrip(")")
    for own in OWN:
        if own in path:
            path = own + path.split(own, 1)[1]
            break
    else:
        path = Path(path).name
    return f"{name} ({path})"


def summarize(path: Path, top: int = 12) -> dict[str, Any]:
    """Self and inclusive sample shares of one raw (collapsed stacks) profile."""
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame(f) for f in stack.split(";")[1:]]  # the first is the process/thread
        if not frames:
            continue
        total += count
        self_time[frames[-1]] += count
        for frame in set(frames):
            if any(own in frame for own in OWN):
                inclusive[frame] += count

    def share(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(k, round(100 * v / total, 1)) for k, v in counter.most_common(top)]

    return {
        "samples": total,
        "self_percent": share(self_time),
        "own_code_inclusive_percent": share(inclusive),
    }
