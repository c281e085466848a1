"""A short admin token is refused at start; `islands up` makes a long one when none is set."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, free_port, hub_env
from tests.integration.helpers import islands
from tests.integration.relay.stack import wait_for

pytestmark = pytest.mark.integration
SHORT = "tok-9Zq"


def test_api_refuses_a_short_admin_token(migrated_pg: str) -> None:
    cmd = [sys.executable, "-m", "uvicorn", "hub.api.main:app", "--port", str(free_port())]
    env = hub_env(migrated_pg, HUB_ADMIN_TOKEN=SHORT)
    ran = subprocess.run(
        cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert ran.returncode != 0
    assert "HUB_ADMIN_TOKEN: must be at least 24 characters" in ran.stderr
    assert "Traceback" not in ran.stderr and SHORT not in ran.stderr


@pytest.mark.parametrize("command", [["up", "--chains", "0"], ["api"]])
def test_cli_refuses_a_short_admin_token(command: list[str]) -> None:
    ran = islands(*command, "--port", str(free_port()), HUB_ADMIN_TOKEN="short-token")
    assert ran.returncode == 1
    assert "HUB_ADMIN_TOKEN: must be at least 24 characters, not 11" in ran.stderr
    assert "Traceback" not in ran.stderr and "short-token" not in ran.stderr


def test_up_makes_a_long_token_when_none_is_set(tmp_path: Path) -> None:
    port = free_port()
    env = hub_env(f"sqlite:///{tmp_path / 'hub.db'}")
    del env["HUB_ADMIN_TOKEN"]
    log = tmp_path / "up.log"
    exe = Path(sys.executable).parent / "islands"
    cmd = [str(exe), "up", "--chains", "0", "--port", str(port), "--state-dir", str(tmp_path)]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for("the hub to start", lambda: b"Press Ctrl-C" in log.read_bytes(), timeout=60)
        line = next(x for x in log.read_text().splitlines() if "admin token" in x)
        token = line.split()[-1]
        assert len(token) >= 24
        url = f"http://127.0.0.1:{port}/v1/chains"
        assert httpx.post(url, json={}, timeout=10).status_code == 401
        answer = httpx.post(url, json={}, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert answer.status_code == 422  # past authentication: only the body is wrong
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
