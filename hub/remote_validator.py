"""A validator run by an organisation outside the hub: `islands validator run --config FILE`.

It holds its own key and its own configuration (the HUB_VALIDATOR_CONFIG format: per chain its
RPC URLs, a quorum of them, the gateway it trusts, the finality policy). It asks the hub's API
which messages are final, checks each one against the source chain through its own endpoints
(the same checks as the hub's own validators), signs it for the destination gateway of its own
file, and hands the signature over `POST /v1/messages/{id}/attestations`. It never touches
the hub's database; the hub keeps a signature only if it recovers to the current set.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from eth_account import Account

from adapters.base import ChainAdapter, GatewayConfig
from adapters.registry import create_adapter
from hub import metrics
from hub.api.schemas import MessageOut
from hub.client import HubApiError, HubClient
from hub.domain.attestation import attestation_digest, sign_digest
from hub.services.netpolicy import redact_url
from hub.services.relay.validator import OwnView
from hub.services.relay.validator_config import ValidatorConfig

log = logging.getLogger("hub.validator.remote")
MAX_PER_ROUND = 500
BACKOFF_MAX = 300.0


class OwnAdapters:
    """Adapters on this validator's own endpoints, kept for the process."""

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._adapters: dict[tuple[str, tuple[str, ...], int], ChainAdapter] = {}

    def own_adapter(self, family: str, rpc_urls: tuple[str, ...], quorum: int) -> ChainAdapter:
        key = (family, rpc_urls, quorum)
        if key not in self._adapters:
            self._adapters[key] = create_adapter(
                family,
                rpc_urls,
                timeout=self._timeout,
                quorum=quorum,
                shown_urls=[redact_url(u) for u in rpc_urls],  # errors never show a key
            )
        return self._adapters[key]


@dataclass
class RoundReport:
    looked: int = 0
    signed: int = 0
    refused: dict[str, str] = field(default_factory=dict)


@dataclass
class _Backoff:
    until: float
    count: int


class RemoteValidator:
    def __init__(
        self, hub: HubClient, private_key: str, config: ValidatorConfig, timeout: float = 5.0
    ) -> None:
        self._hub, self._key, self.config = hub, private_key, config
        self.address = str(Account.from_key(private_key).address)
        self._adapters = OwnAdapters(timeout)
        self._backoff: dict[str, _Backoff] = {}

    def run(self, stop: threading.Event, every: float = 1.0) -> None:
        """Rounds until `stop` is set; a round that fails is logged and the next one runs."""
        while not stop.is_set():
            try:
                report = self.round()
                if report.signed or report.refused:
                    log.info("round", extra={"signed": report.signed, "refused": report.refused})
            except Exception as exc:  # the hub or a chain did not answer: try again
                log.warning("round failed", extra={"error": f"{type(exc).__name__}: {exc}"})
            stop.wait(every)

    def round(self) -> RoundReport:
        """Sign every final message between chains this validator watches that it has not
        signed for the destination's current epoch."""
        report, view = RoundReport(), OwnView(self._adapters, self.config)
        for message in self._work():
            report.looked += 1
            try:
                problem = self._sign(view, message)
            except HubApiError as exc:
                problem = f"the hub refused the signature: {exc.message}"
            except Exception as exc:  # this message alone: a chain that did not answer
                problem = f"could not check: {type(exc).__name__}: {exc}"
            if problem is None:
                report.signed += 1
            elif problem:
                report.refused[message.id] = problem
                self._refuse(message.id, problem)
        return report

    def _work(self) -> Iterator[MessageOut]:
        """Final messages the hub lists (oldest first), between watched chains, not paused,
        not set aside by this validator for now."""
        watched, now, found = self.config.chains, time.monotonic(), []
        for message in self._hub.iter_messages(state="finalized", limit=200):
            if message.src_chain_id not in watched or message.dst_chain_id not in watched:
                continue
            if message.paused or self._backoff.get(message.id, _Backoff(0, 0)).until > now:
                continue
            found.append(message)
            if len(found) >= MAX_PER_ROUND:
                break
        return reversed(found)

    def _sign(self, view: OwnView, message: MessageOut) -> str | None:
        """None when signed now; "" when there is nothing to do; else why not."""
        gateway = view.destination(message.dst_chain_id)
        if self.address not in gateway.validators:
            return f"not in the validator set of chain {message.dst_chain_id}"
        mine = (a for a in message.attestations if a.validator == self.address)
        if any(a.epoch == gateway.epoch for a in mine):
            return ""
        problem = view.problem(message)
        if problem is not None:
            return problem
        signature = self._signature(message.id, gateway)
        self._hub.post_attestation(message.id, "0x" + signature.hex())
        metrics.ATTESTATIONS_SIGNED.labels(self.address).inc()
        self._backoff.pop(message.id, None)
        log.info("attested", extra={"message_id": message.id, "validator": self.address})
        return None

    def _signature(self, message_id: str, gateway: GatewayConfig) -> bytes:
        digest = attestation_digest(
            bytes.fromhex(message_id[2:]), gateway.epoch, gateway.chain_id, gateway.address
        )
        return sign_digest(digest, self._key)

    def _refuse(self, message_id: str, reason: str) -> None:
        """Look at it again later: within a second for a block not final yet, else after a
        backoff that doubles up to BACKOFF_MAX."""
        entry = self._backoff.get(message_id, _Backoff(0, 0))
        entry.count += 1
        delay = 1.0 if "not final" in reason else min(BACKOFF_MAX, 2.0**entry.count)
        entry.until = time.monotonic() + delay
        self._backoff[message_id] = entry
        log.warning(
            "not attested",
            extra={"message_id": message_id, "validator": self.address, "reason": reason},
        )
