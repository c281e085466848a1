"""Transfer latency against a running hub: from the bridgeOut receipt to the transfer being
visible over REST, and to its delivery. Prints a table.

    .venv/bin/python bench/transfer_latency.py [--devnet .state/devnet.json] [--api URL] [-n 10]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import httpx

from adapters.evm.demo import bridge, user_key


def one(doc: dict[str, Any], api: str, src: str, dst: str) -> tuple[float, float]:
    sent = bridge(doc, src, dst, 10**18, user_key(doc))
    start, visible = time.monotonic(), None
    while time.monotonic() - start < 120:
        found = httpx.get(f"{api}/v1/transfers", params={"src_tx_hash": sent.tx_hash}).json()
        if found and visible is None:
            visible = time.monotonic() - start
        if found and found[0]["state"] == "delivered":
            return visible or 0.0, time.monotonic() - start
        time.sleep(0.02)
    raise SystemExit(f"transfer {sent.tx_hash} not delivered in 120 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devnet", type=Path, default=Path(".state/devnet.json"))
    parser.add_argument("--api", default="http://127.0.0.1:8000")
    parser.add_argument("-n", type=int, default=10)
    args = parser.parse_args()
    doc = json.loads(args.devnet.read_text())
    names = [c["name"] for c in doc["chains"]]
    rows = [one(doc, args.api, names[i % 2], names[(i + 1) % 2]) for i in range(args.n)]
    visible, delivered = [r[0] for r in rows], [r[1] for r in rows]
    print(f"{'transfers':>10} {'':>8} {'median s':>9} {'max s':>7}")
    print(f"{args.n:>10} {'visible':>8} {statistics.median(visible):>9.2f} {max(visible):>7.2f}")
    print(
        f"{args.n:>10} {'deliver':>8} {statistics.median(delivered):>9.2f} {max(delivered):>7.2f}"
    )


if __name__ == "__main__":
    main()
