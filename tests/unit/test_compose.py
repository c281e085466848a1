"""docker-compose.yml parses, runs the parts ARCHITECTURE.md names, and every command it runs
exists: `islands ...` in the hub's CLI (parsed by the CLI itself), `celery ...` with the
relayers app, real Celery options and the hub's queues; its HUB_ variables are settings."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from celery.bin.base import CLIContext
from celery.bin.celery import celery as celery_cli

from hub.cli import app
from hub.settings import Settings
from relayers.app import QUEUE_DELIVER, QUEUE_RELAY
from relayers.app import app as celery_app

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
ONE_SHOT = {"migrate", "devnet"}
OURS = [name for name, s in SERVICES.items() if s.get("build") == "."]


def parse(cli: Any, args: list[str], obj: Any = None) -> Any:
    """Resolve subcommands and parse every option as the command would (nothing runs).
    Typer ships its own copy of click, so groups are told by what they can do."""
    ctx = cli.make_context(cli.name or "cli", list(args), obj=obj)
    while hasattr(ctx.command, "resolve_command"):
        with warnings.catch_warnings():  # click 8.2 deprecates protected_args
            warnings.simplefilter("ignore", DeprecationWarning)
            protected = getattr(ctx, "_protected_args", None) or ctx.protected_args
        rest = [*protected, *ctx.args]
        if not rest:
            break
        name, sub, remaining = ctx.command.resolve_command(ctx, rest)
        assert sub is not None, f"no command {name!r} in {rest}"
        ctx = sub.make_context(name or "", remaining, parent=ctx, obj=obj)
    return ctx


def test_the_parts_are_all_there() -> None:
    expected = {"postgres", "redis", "migrate", "api", "worker", "beat", "devnet"}
    expected |= {"validator-1", "validator-2", "validator-3", "anvil-alpha", "anvil-beta"}
    assert expected <= set(SERVICES)


def test_long_running_services_have_health_checks() -> None:
    for name, service in SERVICES.items():
        if name in ONE_SHOT or name == "beat":
            continue  # beat serves nothing to ask; one-shots end
        assert "healthcheck" in service, name


def test_dependencies_exist_and_wait_for_the_right_condition() -> None:
    for name, service in SERVICES.items():
        for other, rule in service.get("depends_on", {}).items():
            assert other in SERVICES, f"{name} depends on a missing {other}"
            expected = "service_completed_successfully" if other in ONE_SHOT else "service_healthy"
            assert rule["condition"] == expected, (name, other)


@pytest.mark.parametrize("name", [n for n in OURS if SERVICES[n]["command"][0] == "islands"])
def test_every_islands_command_exists(name: str) -> None:
    command = SERVICES[name]["command"]
    ctx = parse(typer.main.get_command(app), command[1:])
    assert ctx.command.callback is not None, f"{name}: {command} is not a command"


@pytest.mark.parametrize("name", [n for n in OURS if SERVICES[n]["command"][0] == "celery"])
def test_every_celery_command_runs_the_relayers_app_on_known_queues(name: str) -> None:
    command = SERVICES[name]["command"]
    assert command[1:3] == ["-A", "relayers"], command
    obj = CLIContext(app=celery_app, no_color=True, workdir=None, quiet=True)
    ctx = parse(celery_cli, command[1:], obj)
    assert ctx.info_name in ("worker", "beat"), command
    validator_queues = json.loads(SERVICES[name]["environment"]["HUB_VALIDATOR_QUEUES"])
    known = {QUEUE_RELAY, QUEUE_DELIVER, *validator_queues, "validator-3"}
    if ctx.info_name == "worker":
        queues = ctx.params["queues"]
        assert queues and set(",".join(queues).split(",")) <= known, queues


def test_each_validator_has_its_own_key_and_its_own_configuration() -> None:
    keys = set()
    for index in (1, 2, 3):
        env = SERVICES[f"validator-{index}"]["environment"]
        keys.add(env["HUB_VALIDATOR_KEY"])
        command = SERVICES[f"validator-{index}"]["command"]
        assert env.get("HUB_VALIDATOR_CONFIG") or "--config" in command
    assert len(keys) == 3
    # The outside validator reaches the hub only through its API.
    outside = SERVICES["validator-3"]["environment"]
    assert "HUB_DATABASE_URL" not in outside and "HUB_REDIS_URL" not in outside


def test_every_hub_variable_is_a_setting() -> None:
    fields = {f"HUB_{name.upper()}" for name in Settings.model_fields}
    for name, service in SERVICES.items():
        for key in service.get("environment", {}):
            if key.startswith("HUB_"):
                assert key in fields, f"{name}: {key} is not a hub setting"
