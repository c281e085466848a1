"""The `islands` commands of operators and users, all through the hub's API (HubClient):
`status`, `transfer`, `messages watch`, `validator run`."""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hub.api.schemas import AssetOut, ChainOut
from hub.api.views import FeedEventOut, StatusOut
from hub.client import SETTLED, HubApiError, HubClient

messages_app = typer.Typer(help="Messages as they move.", no_args_is_help=True)
validator_app = typer.Typer(
    help="Run a validator from its own configuration.", no_args_is_help=True
)

Api = Annotated[str, typer.Option(envvar="ISLANDS_API", help="The hub's API URL")]
DEFAULT_API = "http://127.0.0.1:8000"
# The path a transfer takes; a progress bar counts these.
PATH = ["observed", "finalized", "attested", "submitted", "delivered"]
COLORS = {
    "delivered": "green",
    "failed": "red",
    "rejected": "red",
    "orphaned": "yellow",
    "returned": "magenta",
}


def out() -> Console:
    # soft_wrap: one event, one line, whatever the terminal's width (scripts read it).
    return Console(soft_wrap=True, highlight=False)


def err() -> Console:
    return Console(stderr=True, soft_wrap=True, highlight=False)


def fail(message: str, code: int = 1) -> typer.Exit:
    err().print(f"[red]error:[/red] {message}")
    return typer.Exit(code=code)


@contextmanager
def hub_client(api: str, token: str | None = None) -> Iterator[HubClient]:
    """A client whose refusals and unreachable hub end the command with a message."""
    client = HubClient(api, token)
    try:
        yield client
    except HubApiError as exc:
        raise fail(f"the hub refused: {exc.message} ({exc.status} {exc.code})") from None
    except OSError as exc:  # httpx's transport errors are OSErrors
        raise fail(f"cannot reach the hub at {api}: {exc}") from None
    finally:
        client.close()


# -- islands status --------------------------------------------------------------------------


def status(
    api: Api = DEFAULT_API,
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's answer as JSON")] = False,
) -> None:
    """Chains, routes, assets and the backlog per state, as the hub sees them now."""
    with hub_client(api) as hub:
        found = hub.status()
    if as_json:
        typer.echo(found.model_dump_json(indent=2))
        return
    console = out()
    for table in (_chains_table(found), _routes_table(found), _assets_table(found)):
        console.print(table)
    backlog = "  ".join(f"{state} {count}" for state, count in found.backlog.items())
    console.print(f"[bold]backlog[/bold]  {backlog}")
    if found.open_alerts:
        console.print(f"[red]{found.open_alerts} open alert(s)[/red]: see GET /v1/alerts")


def _chains_table(found: StatusOut) -> Table:
    table = Table(title="chains", title_justify="left")
    for column in ("name", "chain id", "status", "head", "finalized", "finality lag", "scan lag"):
        table.add_column(column)
    for c in found.chains:
        state = c.status if c.reachable else f"{c.status}, unreachable"
        table.add_row(
            c.name,
            str(c.chain_id),
            _colored(state, "green" if c.status == "active" and c.reachable else "red"),
            _text(c.head),
            _text(c.finalized),
            _text(c.finality_lag),
            _text(c.cursor_lag),
        )
    return table


def _routes_table(found: StatusOut) -> Table:
    window = found.throughput_window_seconds // 60
    table = Table(title="routes", title_justify="left")
    for column in ("id", "route", "status", f"delivered ({window} min)", "in flight", "max gas"):
        table.add_column(column)
    for r in found.routes:
        table.add_row(
            str(r.id),
            f"{r.src} -> {r.dst}",
            _colored(r.status, "green" if r.status == "active" else "yellow"),
            str(r.delivered_recently),
            str(r.in_flight),
            str(r.max_gas),
        )
    return table


def _assets_table(found: StatusOut) -> Table:
    table = Table(title="assets", title_justify="left")
    for column in ("symbol", "home", "chains", "status"):
        table.add_column(column)
    for a in found.assets:
        color = "green" if a.status == "active" else "yellow"
        table.add_row(a.symbol, a.home_chain, ", ".join(a.chains), _colored(a.status, color))
    return table


def _colored(text: str, color: str) -> str:
    return f"[{color}]{text}[/{color}]"


def _text(value: int | None) -> str:
    return "-" if value is None else str(value)


# -- islands transfer ------------------------------------------------------------------------


def transfer(
    src: Annotated[str, typer.Option("--from", help="Source chain name")],
    dst: Annotated[str, typer.Option("--to", help="Destination chain name")],
    asset: Annotated[str, typer.Option(help="Asset symbol, e.g. ITT")],
    amount: Annotated[str, typer.Option(help="In whole tokens, e.g. 100 or 0.5")],
    recipient: Annotated[
        str | None, typer.Option(help="Who receives it (default: the sender)", show_default=False)
    ] = None,
    wait: Annotated[bool, typer.Option(help="Follow it live until it settles")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds --wait waits")] = 300.0,
    rpc: Annotated[
        str | None,
        typer.Option(help="RPC URL of the source chain (default: the hub's)", show_default=False),
    ] = None,
    api: Api = DEFAULT_API,
) -> None:
    """Bridge an asset with the source chain's TokenBridge, signed with the key in
    ISLANDS_PRIVATE_KEY; with --wait, follow the transfer on the hub's feed until delivered."""
    key = os.environ.get("ISLANDS_PRIVATE_KEY", "").strip()
    if not key:
        raise fail("set ISLANDS_PRIVATE_KEY to the sender's private key")
    with hub_client(api) as hub:
        source, target, found = hub.chain(src), hub.chain(dst), hub.asset(asset)
        sent = _send(source, target, found, amount, key, recipient, rpc)
        console = out()
        console.print(f"src_tx_hash  {sent.tx_hash}")
        console.print(f"message_id   {sent.message_id}")
        if not wait:
            return
        final = _follow(hub, sent.message_id, timeout, console)
    if final != "delivered":
        raise typer.Exit(code=1)


def _send(
    source: ChainOut,
    target: ChainOut,
    asset: AssetOut,
    amount: str,
    key: str,
    recipient: str | None,
    rpc: str | None,
) -> Any:
    from adapters.evm.adapter import EvmAdapter
    from adapters.evm.demo import bridge_out

    if source.family != "evm":
        raise fail(f"transfers from a {source.family} chain are not supported by this command")
    at_home = asset.home_chain == source.name
    token = asset.home_token if at_home else asset.deployments.get(source.name)
    if token is None:
        raise fail(f"{asset.symbol} has no token on {source.name}")
    url = rpc or source.rpc_urls[0]
    if "***" in url:
        raise fail(f"the hub shows {source.name}'s RPC URL redacted: pass --rpc")
    try:
        units = _units(amount, EvmAdapter([url]).token_decimals(token))
        return bridge_out(
            url,
            source.bridge_address,
            token,
            target.chain_id,
            units,
            key,
            to=recipient,
            approve=at_home,
        )
    except typer.Exit:
        raise
    except Exception as exc:  # the chain's refusal (a revert, no funds), never a traceback
        raise fail(f"the transfer was not sent: {exc}") from None


def _units(amount: str, decimals: int) -> int:
    try:
        value = Decimal(amount) * 10**decimals
    except InvalidOperation:
        raise fail(f"amount {amount!r} is not a number") from None
    if value <= 0 or value != value.to_integral_value():
        raise fail(f"amount must be positive, with at most {decimals} decimals")
    return int(value)


def _follow(hub: HubClient, message_id: str, timeout: float, console: Console) -> str:
    """The transfer's states as they happen, with a bar along its path; its last state."""
    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    last = "observed"
    with Progress(*columns, console=err(), transient=True) as progress:
        task = progress.add_task("waiting for the hub to see it", total=len(PATH))

        def show(event: FeedEventOut) -> None:
            nonlocal last
            last = event.state
            detail = f"  {event.detail}" if event.detail else ""
            color = COLORS.get(event.state, "cyan")
            console.print(f"{event.at:%H:%M:%S}  {_colored(event.state, color)}{detail}")
            done = PATH.index(event.state) + 1 if event.state in PATH else 0
            progress.update(task, completed=done, description=event.state)

        try:
            hub.wait_for(message_id, SETTLED, timeout, on_event=show)
        except TimeoutError:
            raise fail(f"not settled after {timeout:g}s (last state: {last})", code=2) from None
    return last


# -- islands messages watch ------------------------------------------------------------------


@messages_app.command("watch")
def watch(
    chain: Annotated[
        str | None, typer.Option(help="Only messages from or to this chain", show_default=False)
    ] = None,
    message: Annotated[
        str | None, typer.Option(help="Only this message id", show_default=False)
    ] = None,
    backlog: Annotated[int, typer.Option(min=0, max=500, help="Start with the last N")] = 0,
    count: Annotated[
        int | None, typer.Option(min=1, help="Stop after N events", show_default=False)
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object a line")] = False,
    api: Api = DEFAULT_API,
) -> None:
    """Print each message entering a state, live, until Ctrl-C (or --count events)."""
    console, seen = out(), 0
    with hub_client(api) as hub:
        for event in hub.watch(message_id=message, chain=chain, backlog=backlog):
            if as_json:
                typer.echo(event.model_dump_json())
            else:
                console.print(_line(event))
            seen += 1
            if count is not None and seen >= count:
                return


def _line(e: FeedEventOut) -> str:
    what = f"{e.amount} {e.asset}" if e.asset else "message"
    state = _colored(f"{e.state:<9}", COLORS.get(e.state, "cyan"))
    return f"{e.at:%H:%M:%S}  {state}  {e.message_id}  {e.src_chain} -> {e.dst_chain}  {what}"


# -- islands validator run -------------------------------------------------------------------


@validator_app.command("run")
def validator_run(
    config: Annotated[Path, typer.Option(help="This validator's own chains (JSON or TOML)")],
    api: Api = DEFAULT_API,
    every: Annotated[float, typer.Option(help="Seconds between rounds")] = 1.0,
    once: Annotated[bool, typer.Option(help="One round, then exit")] = False,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve /metrics on this port", show_default=False)
    ] = None,
    metrics_host: Annotated[str, typer.Option(help="Address /metrics listens on")] = "127.0.0.1",
    rpc_timeout: Annotated[float, typer.Option(help="Seconds per RPC call")] = 5.0,
) -> None:
    """A validator outside the hub: its key from HUB_VALIDATOR_KEY, its chains from its own
    file (never the hub's database); it checks final messages on their source chain and hands
    its signatures to the hub's API."""
    from hub import metrics
    from hub.logs import configure
    from hub.remote_validator import RemoteValidator
    from hub.services.relay import validator_config

    key = os.environ.get("HUB_VALIDATOR_KEY", "").strip()
    if not key:
        raise fail("set HUB_VALIDATOR_KEY to this validator's private key")
    try:
        chains = validator_config.load(config)
    except validator_config.ValidatorConfigError as exc:
        raise fail(str(exc)) from None
    configure(os.environ.get("HUB_LOG_LEVEL", "INFO"))
    metrics.install()
    if metrics_port is not None:
        metrics.serve(metrics_port, metrics_host)
    with hub_client(api) as hub:
        validator = RemoteValidator(hub, key, chains, timeout=rpc_timeout)
        err().print(f"validator {validator.address} watching {len(chains.chains)} chain(s)")
        if once:
            report = validator.round()
            typer.echo(json.dumps({"looked": report.looked, "signed": report.signed}))
            return
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        with suppress(KeyboardInterrupt):
            validator.run(stop, every)


# -- progress on long work -------------------------------------------------------------------


@contextmanager
def steps(title: str, total: int | None) -> Iterator[Any]:
    """A progress bar on stderr (stdout stays for the command's answer); yields a function
    that marks the start of each step."""
    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err(), transient=False) as progress:
        task = progress.add_task(title, total=total)
        started = False

        def step(what: str) -> None:
            nonlocal started
            if started:
                progress.advance(task)
            started = True
            progress.update(task, description=f"{title}: {what}")

        yield step
        progress.update(task, completed=total, description=f"{title}: done")


# -- islands devnet attach -------------------------------------------------------------------


def devnet_attach(
    rpc: Annotated[list[str], typer.Option(help="RPC URL of a chain; repeat (anvil, dev keys)")],
    name: Annotated[
        list[str] | None, typer.Option(help="Its name; repeat, in the same order")
    ] = None,
    state_dir: Annotated[Path, typer.Option(help="Where devnet.json and validator.json go")] = Path(
        ".state"
    ),
    register: Annotated[
        bool, typer.Option(help="Register chains, routes and ITT with the hub (admin token)")
    ] = False,
    api: Api = DEFAULT_API,
) -> None:
    """Deploy and wire the hub's contracts on chains someone else runs (anvil with its public
    dev accounts: throwaway chains only), write DIR/devnet.json and the validators' own
    DIR/validator.json; with --register, register them with the hub over its API (the admin
    token from HUB_ADMIN_TOKEN). Run again, it deploys and registers nothing twice."""
    from adapters.evm import devnet
    from hub.cli import write_validator_config

    state_dir.mkdir(parents=True, exist_ok=True)
    total = 3 * len(rpc) + 1
    try:
        with steps("devnet", total) as step:
            doc = devnet.attach(rpc, state_dir, names=name, on_step=step)
    except Exception as exc:  # a chain's refusal, shown as a message
        raise fail(f"could not deploy: {exc}") from None
    config = write_validator_config(doc, state_dir)
    err().print(f"devnet: {state_dir / 'devnet.json'}; validators' own view: {config}")
    if register:
        token = os.environ.get("HUB_ADMIN_TOKEN", "").strip()
        if not token:
            raise fail("--register needs the admin token in HUB_ADMIN_TOKEN")
        with hub_client(api, token) as hub:
            added = register_devnet(hub, doc)
        err().print(f"registered with {api}: {', '.join(added) or 'nothing new'}")


def register_devnet(hub: HubClient, doc: dict[str, Any]) -> list[str]:
    """Chains, a route between every pair and the ITT asset, over the API; what the hub has
    already (409) is left alone. Returns what this call added."""
    from hub.api.schemas import AssetCreate, ChainCreate

    added: list[str] = []
    for chain in doc["chains"]:
        body = ChainCreate(
            name=chain["name"],
            chain_id=chain["chain_id"],
            rpc_urls=[chain["rpc_url"]],
            finality=chain["finality"],
            gateway_address=chain["gateway"],
            bridge_address=chain["bridge"],
        )
        _unless_there(added, f"chain {chain['name']}", lambda b=body: hub.register_chain(b))
    names = [c["name"] for c in doc["chains"]]
    for src in names:
        for dst in (n for n in names if n != src):
            _unless_there(added, f"route {src}->{dst}", lambda s=src, d=dst: hub.create_route(s, d))
    asset = doc["asset"]
    body_a = AssetCreate(
        symbol=asset["symbol"],
        home_chain=asset["home_chain"],
        home_token=asset["home_token"],
        deployments=dict(asset["deployments"]),
    )
    _unless_there(added, f"asset {asset['symbol']}", lambda: hub.register_asset(body_a))
    return added


def _unless_there(added: list[str], what: str, create: Any) -> None:
    try:
        create()
    except HubApiError as exc:
        if exc.status != 409:
            raise
        return
    added.append(what)
