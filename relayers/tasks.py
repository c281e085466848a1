"""Thin, idempotent tasks named by namespace; each runs one relay stage through the runner."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from celery.signals import worker_ready
from redis import Redis
from redis.exceptions import RedisError

from hub.services.relay.runner import Runner, follow_ups
from hub.settings import Settings
from relayers import runtime

log = logging.getLogger("relayers")
SHORT = {"acks_late": True, "ignore_result": True}
# A step waits in its queue at most this long, and a pending mark outlives a lost task by at
# most this much.
PENDING_SECONDS = 30.0


@shared_task(name="relay.tick", **SHORT)
def tick() -> None:
    """Beat's heartbeat: fan out one step of every kind of work, each on its own queue, unless
    the same step is still waiting in its queue. Queues stay as short as the work, so a busy
    worker is never left with a backlog of stale steps (which expired unrun, forever)."""
    runner, ctx = _runner(), runtime.context()
    for chain in runner.active_chains():
        _once(scan, chain)
        _once(deliver, chain)
        _once(confirm, chain)
        _once(guard, chain)
    for symbol in runner.asset_symbols():
        _once(supply, symbol)
    for queue in ctx.settings.validator_queues:
        _once(attest, queue, queue=queue)


def _runner() -> Runner:
    """A runner on this process's context and keys (cheap: the context is kept per process)."""
    return Runner(runtime.context(), runtime.relayer_key(), runtime.guardian_key())


def _key(name: str, arg: str) -> str:
    return f"islands:pending:{name}:{arg}"


def _once(task: Any, arg: str, queue: str | None = None) -> None:
    if runtime.redis().set(_key(task.name, arg), "1", nx=True, ex=int(PENDING_SECONDS)):
        task.apply_async((arg,), queue=queue, expires=PENDING_SECONDS)


@worker_ready.connect
def _forget_pending(**_: Any) -> None:
    """A worker that died took the steps it had reserved with it, and their marks would keep
    beat from sending them again for up to PENDING_SECONDS. A worker that starts clears the
    marks: at worst a step is sent twice, which is harmless."""
    client = Redis.from_url(Settings().redis_url)
    try:
        marks = list(client.scan_iter(match=_key("*", "*")))
        if marks:
            client.delete(*marks)
    except RedisError as exc:
        log.warning("could not clear pending marks", extra={"error": str(exc)})
    finally:
        client.close()


def _step(stage: str, arg: str, target: Any = None, queue: str | None = None) -> None:
    """Run one step, then send at once what the runner says follows it (`follow_ups`)."""
    runner = _runner()
    report = runner.run(stage, arg if target is None else target)
    for step in follow_ups(stage, arg, report):
        if step.stage == stage:
            _once(TASKS[stage], arg, queue=queue)  # the same step again (queue: attest's)
        elif step.stage == "attest":
            for name in runtime.context().settings.validator_queues:
                _once(attest, name, queue=name)
        elif step.target is not None:
            _once(TASKS[step.stage], step.target)
        else:
            for chain in runner.active_chains():
                _once(TASKS[step.stage], chain)


def _started(name: str, arg: str) -> None:
    """The step runs now: the next tick may enqueue the next one."""
    runtime.redis().delete(_key(name, arg))


@shared_task(name="relay.scan", **SHORT)
def scan(chain: str) -> None:
    _started("relay.scan", chain)
    _step("scan", chain)


@shared_task(name="relay.deliver", **SHORT)
def deliver(chain: str) -> None:
    _started("relay.deliver", chain)
    runner = _runner()
    if not runner.can_run("deliver"):
        log.error("relay.deliver needs HUB_RELAYER_KEY in this worker's environment")
        return
    _step("deliver", chain)


@shared_task(name="relay.confirm", **SHORT)
def confirm(chain: str) -> None:
    _started("relay.confirm", chain)
    runner = _runner()
    if runner.can_run("confirm"):
        _step("confirm", chain)


@shared_task(name="relay.guardian", **SHORT)
def guard(chain: str) -> None:
    _started("relay.guardian", chain)
    runner = _runner()
    if runner.can_run("guardian"):  # else returns and rate limits wait for a worker with
        runner.run("guardian", chain)  # HUB_GUARDIAN_KEY


@shared_task(name="relay.supply", **SHORT)
def supply(symbol: str) -> None:
    _started("relay.supply", symbol)
    _runner().run("supply", symbol)


@shared_task(name="validator.attest", **SHORT)
def attest(queue: str = "") -> None:
    _started("validator.attest", queue)
    validator = runtime.validator()
    if validator is None:
        log.error("validator.attest needs HUB_VALIDATOR_KEY in this worker's environment")
        return
    _step("attest", queue, validator, queue=queue or None)


TASKS: dict[str, Any] = {"scan": scan, "deliver": deliver, "confirm": confirm, "attest": attest}
