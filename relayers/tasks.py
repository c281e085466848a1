"""Thin, idempotent tasks named by namespace; each calls one relay step."""

from __future__ import annotations

import logging

from celery import shared_task

from hub.services.relay import steps
from relayers import runtime

log = logging.getLogger("relayers")
SHORT = {"acks_late": True, "ignore_result": True}


@shared_task(name="relay.tick", **SHORT)
def tick() -> None:
    """Beat's heartbeat: fan out one step of every kind of work, each on its own queue."""
    ctx = runtime.context()
    expires = ctx.settings.tick_seconds * 4
    for chain in steps.active_chains(ctx):
        scan.apply_async((chain,), expires=expires)
        deliver.apply_async((chain,), expires=expires)
        confirm.apply_async((chain,), expires=expires)
    for symbol in steps.asset_symbols(ctx):
        supply.apply_async((symbol,), expires=expires)
    for queue in ctx.settings.validator_queues:
        attest.apply_async(queue=queue, expires=expires)


@shared_task(name="relay.scan", **SHORT)
def scan(chain: str) -> None:
    steps.guarded("scan", steps.scan, runtime.context(), chain)


@shared_task(name="relay.deliver", **SHORT)
def deliver(chain: str) -> None:
    key = runtime.relayer_key()
    if key is None:
        log.error("relay.deliver needs HUB_RELAYER_KEY in this worker's environment")
        return
    steps.guarded("deliver", steps.deliver, runtime.context(), chain, key)


@shared_task(name="relay.confirm", **SHORT)
def confirm(chain: str) -> None:
    key = runtime.relayer_key()
    if key is None:
        return
    steps.guarded("confirm", steps.confirm, runtime.context(), chain, key)


@shared_task(name="relay.supply", **SHORT)
def supply(symbol: str) -> None:
    steps.guarded("supply", steps.supply, runtime.context(), symbol)


@shared_task(name="validator.attest", **SHORT)
def attest() -> None:
    validator = runtime.validator()
    if validator is None:
        log.error("validator.attest needs HUB_VALIDATOR_KEY in this worker's environment")
        return
    steps.guarded("attest", steps.attest, runtime.context(), validator)
