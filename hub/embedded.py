"""The embedded form: local chains, the API and (later) the task loops in one process."""

from __future__ import annotations

import json
import logging
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import uvicorn

from hub.api.app import create_app
from hub.db.engine import transaction
from hub.db.migrate import upgrade
from hub.domain.errors import HubError
from hub.logs import configure
from hub.services.bootstrap import register_devnet
from hub.services.netpolicy import NetworkPolicy
from hub.settings import Settings

log = logging.getLogger("hub.embedded")


class StartError(Exception):
    """The embedded hub could not start; the message says why."""


def run(
    settings: Settings, *, chains: int, base_port: int, block_time: float, host: str, port: int
) -> None:
    """Start everything, print how to reach it, serve until Ctrl-C, then stop what it started."""
    configure(settings.log_level)
    with ExitStack() as stack:
        devnet_file = _start_devnet(stack, settings.state_dir, chains, base_port, block_time)
        upgrade(settings.database_url)
        app = create_app(settings)
        if devnet_file is not None:
            _register(app.state.sessionmaker, settings, json.loads(devnet_file.read_text()))
        _announce(settings, host, port, devnet_file)
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
        try:
            uvicorn.Server(config).run()
        except KeyboardInterrupt:
            pass  # Ctrl-C is how this mode stops; the ExitStack stops the chains
        finally:
            app.state.engine.dispose()
        print("Stopped.", flush=True)


def _start_devnet(
    stack: ExitStack, state_dir: Path, chains: int, base_port: int, block_time: float
) -> Path | None:
    if chains == 0:
        return None
    from adapters.evm.devnet import up

    try:
        net = up(chains, base_port, state_dir, block_time=block_time)
    except Exception as exc:  # the devnet says what went wrong in plain words
        raise StartError(f"could not start the local chains: {exc}") from None
    stack.callback(net.stop)
    return state_dir / "devnet.json"


def _register(factory: Any, settings: Settings, devnet: dict[str, Any]) -> None:
    policy = NetworkPolicy.from_settings(settings)
    try:
        with transaction(factory) as session:
            added = register_devnet(session, devnet, "embedded", policy, settings.rpc_timeout)
    except HubError as exc:
        raise StartError(f"could not register the local chains: {exc.message}") from None
    log.info("registered local chains", extra={"chains": added})


def _announce(settings: Settings, host: str, port: int, devnet_file: Path | None) -> None:
    token = settings.admin_token.get_secret_value() if settings.admin_token else "(none)"
    lines = [
        "",
        "Islands Hub is running.",
        f"  API:          http://{host}:{port}   (OpenAPI: http://{host}:{port}/docs)",
        f"  admin token:  {token}",
        f"  database:     {settings.database_url}",
    ]
    if devnet_file is not None:
        lines.append(f"  devnet:       {devnet_file.resolve()}")
    lines.append("Press Ctrl-C to stop everything.")
    print("\n".join(lines), flush=True)
