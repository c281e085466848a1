"""Write the fault table of docs/reliability.md from the figures the fault tests recorded.

    .venv/bin/pytest tests/faults            # writes results/faults/<fault>.json
    .venv/bin/python scripts/reliability_table.py [--results DIR] [--doc docs/reliability.md]

The table goes between the markers `<!-- faults:begin -->` and `<!-- faults:end -->`; the rest of
the page is left as it is. Without --doc, the table is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- faults:begin -->", "<!-- faults:end -->"

# The order and the words a reader sees; a fault the tests recorded but not listed here
# comes last under its own name.
FAULTS = {
    "kill-relay-worker": "SIGKILL of the relay worker (restarted after 1-3 s)",
    "kill-validator": "SIGKILL of one validator of three (restarted after 2-4 s)",
    "kill-beat": "SIGKILL of beat (restarted after 1-3 s)",
    "kill-api": "SIGKILL of the API (restarted after 1-3 s)",
    "restart-redis": "Redis killed and started empty (2-4 s down)",
    "restart-postgres": "Postgres crashed (immediate stop) and started (2-4 s down)",
    "rpc-timeout": "first RPC endpoint of every chain times out",
    "rpc-5xx": "first RPC endpoint of every chain answers 503",
    "rpc-drop": "first RPC endpoint of every chain drops connections",
    "rpc-lag": "first RPC endpoint of every chain lags 40 blocks",
    "deep-reorg": "source chain reorgs 20 blocks (finality 2)",
    "relayer-out-of-funds": "relayer key's balance on beta set to 0, then refunded",
    "destination-rejects": "gamma's bridge refuses alpha and beta: every delivery to it fails",
    "clock-jumps": "hub's clock +1 h live, then crash and restart 1 h behind",
    "two-relayers-one-key": "a second relay worker with the same key; someone spends its nonces",
    "soak": "soak: process, service, RPC, funds and nonce faults drawn at random",
}


def load(results: Path) -> list[dict[str, object]]:
    rows = [json.loads(p.read_text()) for p in sorted(results.glob("*.json"))]
    order = {name: i for i, name in enumerate(FAULTS)}
    return sorted(rows, key=lambda r: (order.get(str(r["fault"]), len(order)), str(r["fault"])))


def table(rows: list[dict[str, object]]) -> str:
    head = (
        "| fault | transfers sent | delivered once | lost | duplicated | fault lasted (s) "
        "| recovered after (s) | worst latency (s) | notes |\n"
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n"
    )
    lines = []
    for r in rows:
        name = str(r["fault"])
        notes = "; ".join(str(n) for n in r.get("notes", []) or [])  # type: ignore[union-attr]
        lines.append(
            f"| {FAULTS.get(name, name)} | {r['sent']} | {r['delivered']} | {r['lost']} "
            f"| {r['duplicated']} | {r['outage_s']} | {r['recovery_s']} "
            f"| {r['worst_latency_s']} | {notes} |"
        )
    return head + "\n".join(lines) + "\n"


def provenance(results: Path) -> str:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    newest = max((p.stat().st_mtime for p in results.glob("*.json")), default=0)
    when = datetime.fromtimestamp(newest, UTC).strftime("%Y-%m-%d %H:%M UTC")
    runs = [json.loads(p.read_text()) for p in results.glob("*.json")]
    loads = [float(r.get("load", 0)) for r in runs]
    commit = ", ".join(sorted({str(r["commit"]) for r in runs if r.get("commit")})) or commit
    return (
        f"Run of {when} at commit {commit or 'unknown'} on {platform.machine()}, "
        f"{os.cpu_count()} cores, load average {min(loads):g} to {max(loads):g} "
        "(other test runs shared the machine).\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", type=Path, default=ROOT / "results" / "faults")
    parser.add_argument("--doc", type=Path, default=None)
    args = parser.parse_args()
    rows = load(args.results)
    if not rows:
        raise SystemExit(f"no figures in {args.results}: run the fault tests first")
    block = f"{BEGIN}\n{provenance(args.results)}\n{table(rows)}{END}"
    if args.doc is None:
        print(block)
        return
    text = args.doc.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{args.doc} has no {BEGIN} ... {END} markers")
    before, rest = text.split(BEGIN, 1)
    after = rest.split(END, 1)[1]
    args.doc.write_text(before + block + after)
    print(f"wrote {len(rows)} rows into {args.doc}")


if __name__ == "__main__":
    main()
