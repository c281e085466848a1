"""Helpers the integration tests share: running the CLI, starting a plain anvil."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import ROOT, free_port, hub_env


def islands(
    *args: str, database_url: str = "sqlite:///:memory:", **env: str
) -> subprocess.CompletedProcess[str]:
    """Run the `islands` console script as a user would."""
    exe = Path(sys.executable).parent / "islands"
    return subprocess.run(
        [str(exe), *args],
        cwd=ROOT,
        env=hub_env(database_url, **env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@contextmanager
def plain_anvil(chain_id: int) -> Iterator[str]:
    """`anvil --port P --chain-id N`, started by hand as the issue's user does."""
    from adapters.evm.nodes import anvil_env, find_anvil

    port = free_port()
    home = Path(tempfile.mkdtemp(prefix="islands-anvil-"))
    proc = subprocess.Popen(
        [str(find_anvil()), "--port", str(port), "--chain-id", str(chain_id), "--silent"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **anvil_env(home)},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_rpc(url)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(home, ignore_errors=True)


def _wait_rpc(url: str) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.post(url, json=body, timeout=1).raise_for_status()
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"anvil at {url} did not answer")


def deploy(rpc_url: str) -> dict[str, Any]:
    """`islands devnet deploy --rpc URL --dev-keys`, its JSON output parsed."""
    result = islands("devnet", "deploy", "--rpc", rpc_url, "--dev-keys")
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))
