"""The `islands` command: run the hub, manage the devnet, keys and the database."""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import sys
import time
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import SecretStr

from hub import cli_ops
from hub.settings import Settings, SettingsError, load_settings

app = typer.Typer(help="Islands Hub: a cross-chain interoperability hub.", no_args_is_help=True)
devnet_app = typer.Typer(help="Local anvil chains with the hub's contracts.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
app.add_typer(devnet_app, name="devnet")
app.add_typer(keys_app, name="keys")
app.add_typer(db_app, name="db")

StateDir = Annotated[Path, typer.Option(help="Where chain logs and devnet.json go")]


def fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code=1)


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        raise fail(str(exc)) from None


@app.command()
def up(
    chains: Annotated[int, typer.Option(min=0, max=9, help="Local anvil chains; 0 for none")] = 3,
    base_port: Annotated[int, typer.Option(min=1024, max=65000)] = 8545,
    state_dir: StateDir = Path(".state"),
    block_time: Annotated[float, typer.Option(help="Seconds between anvil blocks")] = 1.0,
    host: str = "127.0.0.1",
    port: int = 8000,
) -> None:
    """Run the hub in one process: local chains, the API on SQLite, registered and routed."""
    settings = _settings()
    from hub import embedded

    token = settings.admin_token or SecretStr(secrets.token_urlsafe(32))
    update: dict[str, Any] = {"admin_token": token, "state_dir": state_dir}
    if chains and "rpc_allow_private" not in settings.model_fields_set:
        update["rpc_allow_private"] = True  # the local chains are on loopback
    settings = settings.model_copy(update=update)
    try:
        embedded.run(
            settings,
            chains=chains,
            base_port=base_port,
            block_time=block_time,
            host=host,
            port=port,
        )
    except embedded.StartError as exc:
        raise fail(str(exc)) from None


@app.command()
def api(host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> None:
    """Serve the REST API (distributed form: run several, behind a balancer). With several
    workers, set PROMETHEUS_MULTIPROC_DIR to an empty directory: /metrics adds them up."""
    import uvicorn

    from hub.logs import configure

    settings = _settings()  # refuse to start with bad settings, before any worker starts
    configure(settings.log_level)  # uvicorn's own events as JSON too
    uvicorn.run(
        "hub.api.main:app",
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        log_config=None,
        access_log=False,  # the API logs each write and refusal itself, as JSON
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
        timeout_worker_healthcheck=HEALTHCHECK_SECONDS,
    )


# Open feed streams end within this when the server stops (they never end by themselves).
GRACEFUL_SECONDS = 5
# A worker busy at full load on a loaded machine may answer its parent's ping late; uvicorn's
# 5 s default had it killed and restarted mid-benchmark.
HEALTHCHECK_SECONDS = 30


@devnet_app.command("up")
def devnet_up(
    chains: Annotated[int, typer.Option(min=1, max=9)] = 3,
    base_port: Annotated[int, typer.Option(min=1024, max=65000)] = 8545,
    state_dir: StateDir = Path(".state"),
    block_time: float = 1.0,
    node: Annotated[
        list[str] | None,
        typer.Option(
            help="The node of each chain: anvil, hardhat, ganache or geth; repeat (replaces "
            "--chains); geth takes whole seconds of block time"
        ),
    ] = None,
) -> None:
    """Start N chains (anvil, or the --node given for each), deploy and wire the contracts,
    write DIR/devnet.json; Ctrl-C stops."""
    from adapters.evm import devnet
    from adapters.evm.nodes import NodeKind

    kinds = [NodeKind.ANVIL] * chains
    try:
        kinds = [NodeKind(n) for n in node] if node else kinds
    except ValueError:
        raise fail(f"--node must be one of {', '.join(k.value for k in NodeKind)}") from None
    specs = [devnet.IslandSpec(kind, block_time) for kind in kinds]
    try:
        net = devnet.up_islands(specs, base_port, state_dir)
    except Exception as exc:  # the devnet reports failures as plain messages
        raise fail(str(exc)) from None
    config = write_validator_config(net.to_json(), state_dir)
    typer.echo(f"devnet of {len(specs)} chains is up; description: {net.json_path}")
    typer.echo(f"validators' own view of these chains (HUB_VALIDATOR_CONFIG): {config}")
    try:
        while all(c.node is None or c.node.running() for c in net.chains):
            time.sleep(0.5)
        typer.secho("an anvil process exited; stopping the devnet", err=True)
    except KeyboardInterrupt:
        pass
    finally:
        net.stop()


def write_validator_config(doc: dict[str, Any], state_dir: Path) -> Path:
    """The configuration a validator of the devnet runs from: its own RPC URLs, gateways and
    finality per chain (a validator never takes them from the hub's database)."""
    from hub.services.relay.validator_config import from_devnet

    path = state_dir / "validator.json"
    path.write_text(json.dumps(from_devnet(doc), indent=2) + "\n", encoding="utf-8")
    return path


@devnet_app.command("deploy")
def devnet_deploy(
    rpc: Annotated[str, typer.Option(help="RPC URL of the chain to deploy to")],
    validator: Annotated[
        list[str] | None, typer.Option(help="Validator address of the Gateway; repeat")
    ] = None,
    threshold: Annotated[
        int | None, typer.Option(min=1, help="Signatures a delivery needs; default a majority")
    ] = None,
    owner: Annotated[
        str | None,
        typer.Option(help="Owner of Gateway and TokenBridge (accepts in a second step)"),
    ] = None,
    guardian: Annotated[
        str | None, typer.Option(help="May pause the bridge and set rate limits")
    ] = None,
    dev_keys: Annotated[
        bool, typer.Option(help="Allow anvil's public dev keys (a throwaway chain only)")
    ] = False,
) -> None:
    """Deploy Gateway, TokenBridge and a TestToken to a chain someone else runs; print JSON
    with the addresses and who holds each role.

    The deployer key comes from ISLANDS_DEPLOYER_KEY; owner and guardian default to the
    deployer. Without --dev-keys, anvil's public dev accounts (whose keys anyone has) may hold
    no role."""
    from adapters.evm import devnet

    key, validators = _deploy_keys(validator, dev_keys)
    if threshold is None:
        threshold = devnet.VALIDATOR_THRESHOLD if validator is None else len(validators) // 2 + 1
    roles = [("owner", owner), ("guardian", guardian)] + [("validator", v) for v in validators]
    _check_addresses(roles)
    if not dev_keys:
        _refuse_public_roles(key, roles)
    try:
        with cli_ops.steps("deploy", 4 if owner else 3) as step:
            deployment = devnet.deploy_contracts(
                rpc, key, validators, threshold, guardian=guardian, on_step=step
            )
            if owner is not None and owner.lower() != deployment.owner.lower():
                step("transfer ownership (two steps)")
                deployment = devnet.transfer_ownership(rpc, key, deployment, owner)
    except Exception as exc:  # shown as a message, never a traceback
        raise fail(f"could not deploy to {rpc}: {exc}") from None
    validator_set = {"validators": list(validators), "threshold": threshold}
    typer.echo(json.dumps({**dataclasses.asdict(deployment), **validator_set}, indent=2))
    if deployment.pending_owner:
        typer.echo(
            f"{deployment.pending_owner} becomes owner once it calls acceptOwnership() on the "
            f"Gateway ({deployment.gateway}) and the TokenBridge ({deployment.bridge}); until "
            f"then {deployment.owner} stays owner.",
            err=True,
        )


def _deploy_keys(validator: list[str] | None, dev_keys: bool) -> tuple[str, list[str]]:
    """The deployer key and validator addresses; without --dev-keys both must be given."""
    from adapters.evm.devnet import DEPLOYER, VALIDATORS

    key = os.environ.get("ISLANDS_DEPLOYER_KEY", "")
    if dev_keys:
        return key or DEPLOYER.private_key, validator or [a.address for a in VALIDATORS]
    if not validator:
        raise fail(
            "no validators: pass --validator ADDRESS (repeat it) and --threshold N, or "
            "--dev-keys to make anvil's public test accounts validators of a throwaway chain "
            "(anyone holds their keys and could forge messages)"
        )
    if not key:
        raise fail(
            "set ISLANDS_DEPLOYER_KEY to the deployer's private key, or pass --dev-keys to "
            "deploy with anvil's public test key (a throwaway chain only)"
        )
    return key, validator


def _check_addresses(roles: list[tuple[str, str | None]]) -> None:
    from eth_utils.address import is_address

    for role, address in roles:
        if address is not None and not is_address(address):
            raise fail(f"--{role} {address!r} is not an EVM address")


def _refuse_public_roles(key: str, roles: list[tuple[str, str | None]]) -> None:
    """No role (deployer included) may go to an account whose key anvil publishes."""
    from eth_account import Account

    from adapters.evm.devnet import is_dev_account

    try:
        deployer = str(Account.from_key(key).address)
    except Exception:  # the message never echoes the key
        raise fail("ISLANDS_DEPLOYER_KEY is not a valid private key") from None
    public = [
        f"{role} {address}"
        for role, address in [("deployer", deployer), *roles]
        if address and is_dev_account(address)
    ]
    if public:
        raise fail(
            f"{', '.join(public)}: anvil's public dev account(s), whose keys anyone has; "
            "pass --dev-keys to use them anyway (a throwaway chain only)"
        )


DevnetFile = Annotated[Path, typer.Option(help="The devnet description `islands up` wrote")]


def _devnet_doc(path: Path) -> dict[str, object]:
    if not path.is_file():
        raise fail(f"{path} not found: start the hub with `make run` (or `islands devnet up`)")
    return dict(json.loads(path.read_text()))


def _base_units(amount: str) -> int:
    try:
        value = Decimal(amount) * 10**18
    except InvalidOperation:
        raise fail(f"amount {amount!r} is not a number") from None
    if value <= 0 or value != value.to_integral_value():
        raise fail("amount must be positive, with at most 18 decimals")
    return int(value)


def _as_user(devnet_file: Path, act: Callable[[dict[str, Any], str], Any]) -> None:
    """Act as the devnet's user on its chains; print the transaction and message as JSON."""
    from adapters.evm.demo import user_key

    doc = _devnet_doc(devnet_file)
    try:
        sent = act(doc, user_key(doc))
    except Exception as exc:  # a chain's refusal, shown as a message
        raise fail(str(exc)) from None
    typer.echo(json.dumps({"src_tx_hash": sent.tx_hash, "message_id": sent.message_id}))


@devnet_app.command("bridge")
def devnet_bridge(
    src: Annotated[str, typer.Option("--from", help="Source chain name")],
    dst: Annotated[str, typer.Option("--to", help="Destination chain name")],
    amount: Annotated[str, typer.Option(help="Whole ITT, e.g. 100 or 0.5")],
    devnet_file: DevnetFile = Path(".state/devnet.json"),
) -> None:
    """Bridge ITT with TokenBridge.bridgeOut as the devnet's user; prints the tx and message."""
    from adapters.evm.demo import bridge

    units = _base_units(amount)
    _as_user(devnet_file, lambda doc, key: bridge(doc, src, dst, units, key))


@devnet_app.command("send")
def devnet_send(
    src: Annotated[str, typer.Option("--from", help="Source chain name")],
    dst: Annotated[str, typer.Option("--to", help="Destination chain name")],
    text: Annotated[str, typer.Option(help="The payload, as text")],
    devnet_file: DevnetFile = Path(".state/devnet.json"),
) -> None:
    """Send a plain message from the Inbox app on one chain to the Inbox on another."""
    from adapters.evm.demo import send_message

    _as_user(devnet_file, lambda doc, key: send_message(doc, src, dst, text.encode(), key))


@app.command()
def connect(
    chain: Annotated[str, typer.Option(help="A registered chain to join to the asset")],
    asset: Annotated[str, typer.Option(help="The asset's symbol, e.g. ITT")],
) -> None:
    """Join a registered chain to an asset in one step, as POST /v1/assets/{symbol}/deployments
    does: wrapped token, bridges trusting each other, routes, the deployment recorded. Uses
    HUB_DATABASE_URL and the bridges' owner key HUB_DEPLOYER_KEY; run it again to finish a
    join that stopped halfway."""
    from hub.db.engine import make_engine, make_sessionmaker, transaction
    from hub.domain.errors import HubError
    from hub.services.chains import chain_adapter
    from hub.services.joining import join_asset
    from hub.services.netpolicy import NetworkPolicy

    settings = Settings()
    policy = NetworkPolicy.from_settings(settings)
    if settings.deployer_key is None:
        raise fail("set HUB_DEPLOYER_KEY to the key that owns the chains' token bridges")
    key = settings.deployer_key.get_secret_value()
    factory = make_sessionmaker(make_engine(settings.database_url))
    try:
        with transaction(factory) as session:
            report = join_asset(
                session,
                asset,
                chain,
                key,
                "cli",
                lambda c: chain_adapter(c, settings.rpc_timeout, policy),
            )
    except HubError as exc:
        raise fail(exc.message) from None
    typer.echo(json.dumps(dataclasses.asdict(report), indent=2))


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help="admin or operator")],
    label: Annotated[str | None, typer.Option(help="A note on who holds it")] = None,
) -> None:
    """Create an API key; it is printed once and only its hash is stored."""
    from hub.db.engine import make_engine, make_sessionmaker, transaction
    from hub.domain.errors import HubError
    from hub.services.keys import create_key

    settings = _settings()
    factory = make_sessionmaker(make_engine(settings.database_url))
    try:
        with transaction(factory) as session:
            key = create_key(session, role, actor="cli", label=label)
    except HubError as exc:
        raise fail(exc.message) from None
    typer.echo(key)
    typer.echo(f"(role {role}; shown once, store it now)", err=True)


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply migrations to HUB_DATABASE_URL."""
    from hub.db.migrate import upgrade

    upgrade(_settings().database_url, revision)
    typer.echo("database is at " + revision, err=True)


# Operators' and users' commands, all through the API (hub.client).
app.command()(cli_ops.status)
app.command()(cli_ops.transfer)
app.add_typer(cli_ops.messages_app, name="messages")
app.add_typer(cli_ops.validator_app, name="validator")
devnet_app.command("attach")(cli_ops.devnet_attach)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
