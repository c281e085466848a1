"""`islands devnet attach --register`, the command docker-compose's devnet service runs: two
chains someone else started, the contracts deployed and wired with a progress bar, the hub
told over its API; run again, it deploys and registers nothing twice."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN, fresh_database, start_api
from tests.integration.helpers import islands, plain_anvil


@pytest.fixture
def empty_hub(tmp_path: Path) -> Iterator[str]:
    from hub.db.migrate import upgrade

    with fresh_database() as db_url:
        upgrade(db_url)
        api, url = start_api(db_url, tmp_path / "api.log")
        try:
            yield url
        finally:
            api.terminate()
            api.wait(timeout=15)


def test_attach_deploys_wires_and_registers_once(empty_hub: str, tmp_path: Path) -> None:
    state = tmp_path / "state"
    with plain_anvil(4242) as red, plain_anvil(4243) as blue:
        args = [
            "devnet",
            "attach",
            "--rpc",
            red,
            "--name",
            "red",
            "--rpc",
            blue,
            "--name",
            "blue",
            "--state-dir",
            str(state),
            "--register",
            "--api",
            empty_hub,
        ]
        first = islands(*args, HUB_ADMIN_TOKEN=ADMIN_TOKEN)
        assert first.returncode == 0, first.stderr
        assert "devnet: done" in first.stderr  # the progress bar ran to its end
        doc = json.loads((state / "devnet.json").read_text())
        assert [c["name"] for c in doc["chains"]] == ["red", "blue"]
        own = json.loads((state / "validator.json").read_text())
        assert [c["rpc_urls"] for c in own["chains"]] == [[red], [blue]]

        chains = httpx.get(f"{empty_hub}/v1/chains").json()
        assert {(c["name"], c["chain_id"]) for c in chains} == {("red", 4242), ("blue", 4243)}
        routes = httpx.get(f"{empty_hub}/v1/routes").json()
        assert {(r["src"], r["dst"]) for r in routes} == {("red", "blue"), ("blue", "red")}
        asset = httpx.get(f"{empty_hub}/v1/assets/ITT").json()
        assert asset["home_chain"] == "red" and set(asset["deployments"]) == {"blue"}

        again = islands(*args, HUB_ADMIN_TOKEN=ADMIN_TOKEN)
        assert again.returncode == 0, again.stderr
        assert "nothing new" in again.stderr  # and the same contracts (below): none deployed
        assert json.loads((state / "devnet.json").read_text()) == doc


def test_attach_needs_the_admin_token_to_register(tmp_path: Path) -> None:
    with plain_anvil(4244) as red:
        result = islands(
            "devnet", "attach", "--rpc", red, "--state-dir", str(tmp_path), "--register"
        )
    assert result.returncode == 1
    assert "HUB_ADMIN_TOKEN" in result.stderr
