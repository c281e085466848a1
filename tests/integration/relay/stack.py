"""The distributed hub as real processes: API, a relay worker, three validator workers on
their own queues with their own keys, and beat, on Postgres and Redis, over a devnet."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from hub.services.relay import validator_config
from tests.conftest import ROOT, RPC_SECRET, hub_env

RELAY_ENV = {
    "HUB_RPC_SECRET_TEST": RPC_SECRET,  # a provider's key, for URLs that refer to it
    "HUB_TICK_SECONDS": "0.4",
    "HUB_LEASE_SECONDS": "10",
    "HUB_MAX_ATTEMPTS": "2",
    "HUB_RETRY_BASE_SECONDS": "0.5",
    "HUB_BATCH_SIZE": "50",
    "HUB_STUCK_AFTER_SECONDS": "2",
    "HUB_MAX_FEE_CAP_GWEI": "2",
    "HUB_LOG_LEVEL": "INFO",
}


@dataclass
class Stack:
    doc: dict[str, Any]
    api: str
    db_url: str
    redis_url: str
    log_dir: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def env(self, **extra: str) -> dict[str, str]:
        return hub_env(self.db_url, HUB_REDIS_URL=self.redis_url, **RELAY_ENV, **extra)

    def key(self, role: str, index: int = 0) -> str:
        keys = [a["private_key"] for a in self.doc["accounts"] if a["role"] == role]
        return str(keys[index])

    def celery(self, name: str, args: list[str], **extra_env: str) -> None:
        """Start `celery -A relayers ...` as its own process group."""
        log = (self.log_dir / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "relayers", *args],
            cwd=ROOT,
            env=self.env(**extra_env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def start_relay_worker(self) -> None:
        self.celery(
            "relay",
            [
                "worker",
                "-Q",
                "relay,deliver",
                "-c",
                "2",
                "-n",
                f"relay-{time.time_ns()}@%h",
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                "WARNING",
            ],
            HUB_RELAYER_KEY=self.key("relayer"),
            HUB_GUARDIAN_KEY=self.key("deployer"),  # the devnet's bridges' guardian
        )

    def validator_config(self) -> Path:
        """The validators' own view of the chains: written from the devnet, not the hub."""
        path = self.log_dir / "validator.json"
        path.write_text(json.dumps(validator_config.from_devnet(self.doc), indent=2))
        return path

    def start_validators(self) -> None:
        for i in range(3):
            self.start_validator(i)

    def start_validator(self, index: int) -> None:
        """The worker `validator-{index + 1}`, with the devnet's validator key `index` and the
        validators' own view of the chains."""
        name = f"validator-{index + 1}"
        self.celery(
            name,
            [
                "worker",
                "-Q",
                name,
                "-c",
                "1",
                "--pool",
                "solo",
                "-n",
                f"{name}@%h",
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                "WARNING",
            ],
            HUB_VALIDATOR_KEY=self.key("validator", index),
            HUB_VALIDATOR_CONFIG=str(self.validator_config()),
        )

    def start_beat(self) -> None:
        schedule = self.log_dir / "beat-schedule"
        self.celery("beat", ["beat", "-s", str(schedule), "--loglevel", "WARNING"])

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> None:
        """Signal a process and all its children (a prefork worker's pool too)."""
        proc = self.procs.pop(name)
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        proc.wait(timeout=30)

    def stop(self) -> None:
        for name in list(self.procs):
            self.kill(name, signal.SIGTERM)

    def get(self, path: str, **params: Any) -> Any:
        response = httpx.get(self.api + path, params=params, timeout=30)
        response.raise_for_status()
        return response.json()


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60, every: float = 0.2) -> Any:
    """Poll until `check` returns something truthy; fail naming what never happened."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
