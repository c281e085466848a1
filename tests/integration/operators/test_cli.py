"""Every operator and user command against a running hub: `islands status`, `islands transfer
--wait`, `islands messages watch`, `islands validator run` (validator 2 of the stack runs so,
and no delivery happens without it)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from adapters.evm.adapter import EvmAdapter
from adapters.evm.demo import bridge, itt_on
from hub.api.views import FeedEventOut, StatusOut
from tests.conftest import ROOT
from tests.integration.operators.conftest import Ops, user_key
from tests.integration.relay.stack import wait_for

ITT = 10**18


def test_transfer_follows_a_transfer_live_until_delivered(ops: Ops) -> None:
    user = ops.account("user")["address"]
    beta = EvmAdapter([ops.chain("beta")["rpc_url"]])
    wrapped = itt_on(ops.doc, "beta")
    before = beta.token_balance(wrapped, user)
    started = time.monotonic()
    result = ops.islands(
        "transfer",
        "--from",
        "alpha",
        "--to",
        "beta",
        "--asset",
        "ITT",
        "--amount",
        "2.5",
        "--wait",
        "--timeout",
        "120",
        ISLANDS_PRIVATE_KEY=user_key(ops),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    message_id = next(line.split()[-1] for line in lines if line.startswith("message_id"))
    states = [line.split()[1] for line in lines if line[:2].isdigit()]
    assert states == ["observed", "finalized", "attested", "submitted", "delivered"], lines
    assert beta.token_balance(wrapped, user) == before + 25 * ITT // 10
    # The outside validator's signature was one of the two the gateway required.
    v2 = ops.account("validator", 1)["address"]
    signers = {
        row[0]
        for row in ops.sql(
            "SELECT validator FROM attestations WHERE message_id = :id", id=message_id
        )
    }
    assert v2 in signers, signers
    assert time.monotonic() - started < 120


def test_transfer_refuses_without_a_key_or_with_a_bad_amount(ops: Ops) -> None:
    no_key = ops.islands(
        "transfer", "--from", "alpha", "--to", "beta", "--asset", "ITT", "--amount", "1"
    )
    assert no_key.returncode == 1
    assert "ISLANDS_PRIVATE_KEY" in no_key.stderr
    bad = ops.islands(
        "transfer",
        "--from",
        "alpha",
        "--to",
        "beta",
        "--asset",
        "ITT",
        "--amount",
        "-3",
        ISLANDS_PRIVATE_KEY=user_key(ops),
    )
    assert bad.returncode == 1 and "positive" in bad.stderr, bad.stderr
    unknown = ops.islands(
        "transfer",
        "--from",
        "alpha",
        "--to",
        "nowhere",
        "--asset",
        "ITT",
        "--amount",
        "1",
        ISLANDS_PRIVATE_KEY=user_key(ops),
    )
    assert unknown.returncode == 1 and "no chain named 'nowhere'" in unknown.stderr


def test_messages_watch_prints_each_state_as_it_happens(ops: Ops, tmp_path: Path) -> None:
    out = (tmp_path / "watch.jsonl").open("w")
    watcher = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "islands"),
            "messages",
            "watch",
            "--json",
            "--backlog",
            "50",
        ],
        cwd=ROOT,
        env=ops.cli_env(),
        stdout=out,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        # The command starts in a few seconds; --backlog shows what happened meanwhile.
        time.sleep(1)
        sent = bridge(ops.doc, "alpha", "gamma", 3 * ITT, user_key(ops))

        def states() -> list[str]:
            lines = (tmp_path / "watch.jsonl").read_text().splitlines()
            events = [FeedEventOut.model_validate_json(line) for line in lines if line]
            return [e.state for e in events if e.message_id == sent.message_id]

        seen = wait_for(
            "the watch to show the transfer delivered",
            lambda: "delivered" in states() and states(),
            timeout=90,
        )
    finally:
        watcher.send_signal(signal.SIGINT)
        watcher.wait(timeout=15)
    assert seen[0] == "observed" and seen[-1] == "delivered"
    assert seen == ["observed", "finalized", "attested", "submitted", "delivered"]
    event = next(
        FeedEventOut.model_validate_json(line)
        for line in (tmp_path / "watch.jsonl").read_text().splitlines()
        if sent.message_id in line
    )
    assert (event.asset, event.amount, event.src_chain, event.dst_chain) == (
        "ITT",
        str(3 * ITT),
        "alpha",
        "gamma",
    )


def test_status_shows_chains_routes_assets_and_the_backlog(ops: Ops) -> None:
    table = ops.islands("status")
    assert table.returncode == 0, table.stderr
    for word in (
        "alpha",
        "beta",
        "gamma",
        "alpha -> beta",
        "gamma -> alpha",
        "ITT",
        "backlog",
        "delivered",
    ):
        assert word in table.stdout, word
    answer = ops.islands("status", "--json")
    found = StatusOut.model_validate_json(answer.stdout)
    assert {c.name for c in found.chains} == {"alpha", "beta", "gamma"}
    assert all(c.reachable and c.head is not None and c.status == "active" for c in found.chains)
    assert len(found.routes) == 6 and found.assets[0].symbol == "ITT"
    by_state = dict(ops.sql("SELECT state, count(*) FROM messages GROUP BY state"))
    assert found.backlog["delivered"] == by_state.get("delivered", 0) >= 1


def test_the_outside_validator_signs_over_the_api_and_never_touches_the_database(ops: Ops) -> None:
    v2 = ops.account("validator", 1)["address"]
    signed = ops.sql("SELECT count(*) FROM attestations WHERE validator = :v", v=v2)[0][0]
    assert signed >= 2  # the two transfers above
    log = (ops.stack.log_dir / "validator-2.log").read_text()
    assert '"event": "attested"' in log and v2 in log
    assert "nobody@127.0.0.1:1" not in log and "psycopg" not in log  # it never tried
    # It refuses to start without its own configuration, or without its key.
    missing = ops.islands(
        "validator",
        "run",
        "--config",
        "/nonexistent.json",
        HUB_VALIDATOR_KEY=ops.account("validator", 2)["private_key"],
    )
    assert missing.returncode == 1 and "cannot read validator configuration" in missing.stderr
    config = ops.stack.log_dir / "validator.json"
    no_key = ops.islands("validator", "run", "--config", str(config), "--once")
    assert no_key.returncode == 1 and "HUB_VALIDATOR_KEY" in no_key.stderr


def test_validator_run_once_has_nothing_left_to_sign(ops: Ops) -> None:
    """A third validator's round over a quiet hub: every message is attested already, so
    there is no final message left to look at (the hub lists only what needs signatures)."""
    config = ops.stack.log_dir / "validator.json"
    result = ops.islands(
        "validator",
        "run",
        "--config",
        str(config),
        "--once",
        HUB_VALIDATOR_KEY=ops.account("validator", 2)["private_key"],
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == {"looked": 0, "signed": 0}
