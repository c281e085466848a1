"""The embedded form: local chains, the API and the relay loop in one process."""

from __future__ import annotations

import json
import logging
import signal
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import uvicorn
from pydantic import SecretStr
from sqlalchemy.engine import make_url

from hub.api.app import create_app
from hub.db.engine import transaction
from hub.db.migrate import upgrade
from hub.domain.errors import HubError
from hub.logs import configure
from hub.relay_loop import RelayLoop
from hub.services.bootstrap import register_devnet
from hub.services.netpolicy import NetworkPolicy
from hub.services.relay import validator_config
from hub.services.relay.context import RelayContext
from hub.services.relay.validator import Validator
from hub.services.relay.validator_config import ValidatorConfig
from hub.settings import Settings

log = logging.getLogger("hub.embedded")


class StartError(Exception):
    """The embedded hub could not start; the message says why."""


def run(
    settings: Settings, *, chains: int, base_port: int, block_time: float, host: str, port: int
) -> None:
    """Start everything, print how to reach it, serve until Ctrl-C, then stop what it started."""
    configure(settings.log_level)
    # SIGTERM (kill, timeout, a service manager) stops as cleanly as Ctrl-C: without this,
    # uvicorn re-raises it into the default handler, which exits without cleaning up.
    signal.signal(signal.SIGTERM, _terminate)
    with ExitStack() as stack:
        devnet = _start_devnet(stack, settings, chains, base_port, block_time)
        upgrade(settings.database_url)
        app = create_app(settings)
        if devnet is not None:
            _register(app.state.sessionmaker, settings, devnet)
        loop = _start_relay(settings, devnet)
        stack.callback(loop.stop)
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=3,  # an open dashboard's feed never ends by itself
        )
        # Listening before the announcement: the URL it prints answers at once (connections
        # wait in the backlog until the server accepts them).
        sock = config.bind_socket()
        sock.listen(2048)
        _announce(settings, host, port, devnet is not None)
        try:
            uvicorn.Server(config).run(sockets=[sock])
        except KeyboardInterrupt:
            pass  # Ctrl-C is how this mode stops; the ExitStack stops the rest
        finally:
            app.state.engine.dispose()
        print("Stopped.", flush=True)


def _terminate(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _start_devnet(
    stack: ExitStack, settings: Settings, chains: int, base_port: int, block_time: float
) -> dict[str, Any] | None:
    if chains == 0:
        return None
    from adapters.evm.devnet import up

    _fresh_database(settings)
    try:
        net = up(chains, base_port, settings.state_dir, block_time=block_time)
    except Exception as exc:  # the devnet says what went wrong in plain words
        raise StartError(f"could not start the local chains: {exc}") from None
    stack.callback(net.stop)
    return dict(json.loads(net.json_path.read_text()))


def _fresh_database(settings: Settings) -> None:
    """New local chains start from block 0: a SQLite file left by an earlier run describes
    chains that no longer exist, so it goes (a database you named yourself is kept)."""
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database:
        path = Path(url.database)
        if path.parent.resolve() == settings.state_dir.resolve():
            for stale in path.parent.glob(path.name + "*"):
                stale.unlink()


def _register(factory: Any, settings: Settings, devnet: dict[str, Any]) -> None:
    policy = NetworkPolicy.from_settings(settings)
    try:
        with transaction(factory) as session:
            added = register_devnet(session, devnet, "embedded", policy, settings.rpc_timeout)
    except HubError as exc:
        raise StartError(f"could not register the local chains: {exc.message}") from None
    log.info("registered local chains", extra={"chains": added})


def _start_relay(settings: Settings, devnet: dict[str, Any] | None) -> RelayLoop:
    """Keys from the environment, else the devnet's dev accounts (its deployer is the bridges'
    guardian); the validators' own view of the chains from HUB_VALIDATOR_CONFIG, else the
    devnet's (the local chains are theirs)."""
    accounts = devnet["accounts"] if devnet else []
    relayer = _key(settings.relayer_key, accounts, "relayer")
    guardian = _key(settings.guardian_key, accounts, "deployer")
    if settings.validator_key is not None:
        keys = [settings.validator_key.get_secret_value()]
    else:
        keys = [a["private_key"] for a in accounts if a["role"] == "validator"]
    validators = [Validator(k, _validator_config(settings, devnet)) for k in keys]
    loop = RelayLoop(RelayContext.start(settings), relayer, validators, guardian)
    loop.start()
    return loop


def _key(setting: SecretStr | None, accounts: list[dict[str, Any]], role: str) -> str | None:
    if setting is not None:
        return setting.get_secret_value()
    return next((a["private_key"] for a in accounts if a["role"] == role), None)


def _validator_config(settings: Settings, devnet: dict[str, Any] | None) -> ValidatorConfig:
    if settings.validator_config is not None or devnet is None:
        try:
            return validator_config.load(settings.validator_config)
        except validator_config.ValidatorConfigError as exc:
            raise StartError(str(exc)) from None
    return validator_config.parse(validator_config.from_devnet(devnet), "the devnet")


def _announce(settings: Settings, host: str, port: int, with_devnet: bool) -> None:
    token = settings.admin_token.get_secret_value() if settings.admin_token else "(none)"
    lines = [
        "",
        "Islands Hub is running.",
        f"  API:          http://{host}:{port}   (OpenAPI: http://{host}:{port}/docs)",
        f"  admin token:  {token}",
        f"  database:     {settings.database_url}",
    ]
    if settings.rpc_allow_private:
        lines.append("  RPC policy:   loopback and private addresses allowed (local chains)")
    if with_devnet:
        lines.append(f"  devnet:       {(settings.state_dir / 'devnet.json').resolve()}")
    lines.append("Press Ctrl-C to stop everything.")
    print("\n".join(lines), flush=True)
