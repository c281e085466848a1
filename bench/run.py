"""`make bench`: every scenario of issue 8's benchmark, a table, and the same figures as JSON
in bench/results/.

    .venv/bin/python -m bench [--quick] [--only raw,reads] [--n 5000] [--timeout-scale 1.0]

Each scenario has a time budget; when it runs out, the scenario reports what it measured so
far (status "partial") and the run goes on. Nothing here is part of `make test`."""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from bench import backfill, raw, reads, relay
from bench.result import Budget, Result, ScenarioTimeoutError
from bench.stack import ROOT

RESULTS = ROOT / "bench" / "results"
GRACE = 120.0  # past its budget, a scenario is stopped hard (its clean-up still runs)


@dataclass(frozen=True)
class Options:
    quick: bool
    n: int
    work: Path
    profile: bool


Scenario = Callable[[Result, Budget, Options], None]


def _raw(r: Result, b: Budget, o: Options) -> None:
    raw.run(r, b, o.work, o.quick)


def _dist(r: Result, b: Budget, o: Options) -> None:
    relay.streamed(r, b, o.work, o.n, None, profile=o.profile)


def _dist_1s(r: Result, b: Budget, o: Options) -> None:
    relay.streamed(r, b, o.work, o.n, 1.0)


def _embedded(r: Result, b: Budget, o: Options) -> None:
    relay.embedded_streamed(r, b, o.work, o.n)


def _drain(r: Result, b: Budget, o: Options) -> None:
    relay.drain(r, b, o.work, o.n, profile=o.profile)


def _low_load(r: Result, b: Budget, o: Options) -> None:
    relay.low_load(r, b, o.work, 10, 15 if o.quick else 60)


def _burst(r: Result, b: Budget, o: Options) -> None:
    relay.burst(r, b, o.work, *((200, 100) if o.quick else (2_000, 1_000)))


def _backfill(r: Result, b: Budget, o: Options) -> None:
    backfill.run(r, b, o.work, 10_000 if o.quick else 100_000)


def _reads(r: Result, b: Budget, o: Options) -> None:
    reads.run(r, b, o.work, 100_000 if o.quick else 1_000_000, 5 if o.quick else 20)


# name: (what it runs, its budget in seconds)
SCENARIOS: dict[str, tuple[Scenario, float]] = {
    "raw": (_raw, 300),
    "dist": (_dist, 300),
    "dist-1s": (_dist_1s, 300),
    "embedded": (_embedded, 300),
    "drain": (_drain, 300),
    "low-load": (_low_load, 180),
    "burst": (_burst, 360),
    "backfill": (_backfill, 420),  # ~100 s of it fills the chain
    "reads": (_reads, 420),
}

# Issue 8's targets, beside the rows they judge (matched on the start of a row's metric).
TARGETS = {
    ("dist", "throughput"): ">= 500 /s and >= 50 % of the raw limit",
    ("dist", "relay:"): "relay worker < 250 MB resident",
    ("dist-1s", "throughput"): ">= 200 /s",
    ("embedded", "throughput"): "as fast as the distributed form",
    ("drain", "throughput"): ">= 1,000 /s",
    ("low-load", "latency"): "p50 < 1 s (finality depth 0)",
    ("burst", "not delivered"): "0 lost",
    ("backfill", "ingested"): ">= 5,000 /s",
    ("reads", "GET"): ">= 50 % of the bare endpoint's rate, p99 < 20 ms",
}


def annotate(result: Result) -> None:
    for row in result.rows:
        for (scenario, word), target in TARGETS.items():
            if result.name == scenario and word in row.metric and not row.target:
                row.target = target


def _alarm(_signum: int, _frame: FrameType | None) -> None:
    raise ScenarioTimeoutError


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    """SIGTERM (and SIGINT, which a background job ignores) stop the run with its clean-up:
    every process group it started is stopped, every database it made dropped."""
    raise KeyboardInterrupt


def run_one(name: str, options: Options, scale: float) -> Result:
    scenario, seconds = SCENARIOS[name]
    result = Result(name)
    budget = Budget(seconds * scale)
    began = time.monotonic()
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(int(budget.seconds + GRACE))
    try:
        scenario(result, budget, options)
        if result.status == "running":
            result.status = "ok"
    except ScenarioTimeoutError:
        result.status = "partial"
        result.notes.append(f"stopped hard after {budget.seconds + GRACE:.0f} s")
    except Exception as exc:  # a failed scenario is reported; the others still run
        result.status = "error"
        result.notes.append(f"{type(exc).__name__}: {exc}")
        result.notes.append(traceback.format_exc(limit=5))
    finally:
        signal.alarm(0)
        result.seconds = time.monotonic() - began
    annotate(result)
    return result


def machine() -> dict[str, Any]:
    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], check=False, cwd=ROOT, capture_output=True, text=True)
        return out.stdout.strip()

    return {
        "commit": git("rev-parse", "HEAD"),
        "commit_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "branch": git("rev-parse", "--abbrev-ref", "HEAD"),
        "cores": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "python": platform.python_version(),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def table(results: list[Result]) -> str:
    lines = ["| scenario | measured | value | target |", "| --- | --- | --- | --- |"]
    for result in results:
        status = "" if result.status == "ok" else f" ({result.status})"
        for row in result.rows:
            lines.append(f"| {result.name}{status} | {row.metric} | {row.value} | {row.target} |")
        if not result.rows:
            lines.append(f"| {result.name}{status} | (nothing measured) | | |")
    return "\n".join(lines)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Islands Hub benchmark (issue 8)")
    parser.add_argument("--only", default="", help="comma-separated: " + ",".join(SCENARIOS))
    parser.add_argument("--quick", action="store_true", help="~500 transfers: a smoke run")
    parser.add_argument("--n", type=int, default=0, help="transfers per streamed scenario")
    parser.add_argument("--timeout-scale", type=float, default=1.0, help="scales budgets")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy on the workers of dist and drain"
    )
    parser.add_argument("--work", type=Path, default=None, help="logs and chain state")
    parser.add_argument("--out", type=Path, default=RESULTS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        sys.exit(f"unknown scenario(s) {unknown}; known: {', '.join(SCENARIOS)}")
    work = args.work or Path(tempfile.mkdtemp(prefix="islands-bench-"))
    n = args.n or (500 if args.quick else 5_000)
    options = Options(args.quick, n, work, args.profile)
    report: dict[str, Any] = {"machine": machine(), "options": vars(args) | {"n": n}}
    report["options"] = {k: str(v) for k, v in report["options"].items()}
    results = []
    for name in names:
        print(f"== {name} (budget {SCENARIOS[name][1] * args.timeout_scale:.0f} s)", flush=True)
        result = run_one(name, options, args.timeout_scale)
        results.append(result)
        print(f"   {result.status} in {result.seconds:.0f} s; logs in {work}", flush=True)
        for note in result.notes:
            print(f"   note: {note.strip()}", flush=True)
    report["machine"]["load_average_at_end"] = os.getloadavg()
    report["results"] = [r.as_dict() for r in results]
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = args.out / f"{stamp}-{report['machine']['commit'][:10]}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print()
    print(table(results))
    for result in results:
        for note in result.notes:
            print(f"note ({result.name}): {note.strip()}")
    m = report["machine"]
    print(f"\ncommit {m['commit']}, {m['cores']} cores")
    start, end = m["load_average_at_start"], m["load_average_at_end"]
    print(f"load average {start} at the start, {end} at the end")
    print(f"results: {path}")
    return 0
