"""hub.client against the running hub: the async client follows a transfer on the feed from
its first state, the sync one finds it by every way a user may ask, and refusals come back
as HubApiError with the API's error code."""

from __future__ import annotations

import asyncio

import pytest

from adapters.evm.demo import bridge, send_message
from hub.api.views import FeedEventOut
from hub.client import AsyncHubClient, HubApiError, HubClient
from tests.integration.operators.conftest import Ops, user_key

ITT = 10**18


def test_the_async_client_follows_a_message_to_delivered(ops: Ops) -> None:
    sent = send_message(ops.doc, "beta", "alpha", b"ping from the client", user_key(ops))

    async def follow() -> tuple[list[FeedEventOut], str]:
        seen: list[FeedEventOut] = []
        async with AsyncHubClient(ops.api) as hub:
            final = await hub.wait_for(sent.message_id, timeout=90, on_event=seen.append)
            status = await hub.status()
            assert {c.name for c in status.chains} == {"alpha", "beta", "gamma"}
            return seen, final.state

    seen, state = asyncio.run(follow())
    assert state == "delivered"
    assert [e.state for e in seen] == [
        "observed",
        "finalized",
        "attested",
        "submitted",
        "delivered",
    ]
    assert all(e.message_id == sent.message_id for e in seen)
    assert seen[0].src_chain == "beta" and seen[0].asset is None


def test_the_sync_client_finds_a_transfer_every_way(ops: Ops) -> None:
    sent = bridge(ops.doc, "alpha", "beta", 4 * ITT, user_key(ops))
    user = ops.account("user")["address"]
    with HubClient(ops.api) as hub:
        message = hub.wait_for(sent.message_id, timeout=90)
        assert message.state == "delivered" and message.transfer is not None
        assert hub.search(sent.message_id).messages[0].id == sent.message_id
        by_tx = hub.search(sent.tx_hash)
        assert by_tx.kind == "transaction" and [m.id for m in by_tx.messages] == [sent.message_id]
        assert message.dst_tx_hash is not None
        assert sent.message_id in [m.id for m in hub.search(message.dst_tx_hash).messages]
        by_user = hub.search(user.lower())
        assert by_user.kind == "address" and sent.message_id in [m.id for m in by_user.messages]
        assert [t.message_id for t in hub.transfers(sent.tx_hash)] == [sent.message_id]
        listed = list(hub.iter_messages(state="delivered", limit=1))
        assert sent.message_id in [m.id for m in listed]
        assert "islands_messages{" in hub.metrics()


def test_refusals_are_hub_api_errors(ops: Ops) -> None:
    with HubClient(ops.api) as hub:
        with pytest.raises(HubApiError) as missing:
            hub.message("0x" + "00" * 32)
        assert (missing.value.status, missing.value.code) == (404, "not_found")
        with pytest.raises(HubApiError) as unauthorized:
            hub.retry("0x" + "00" * 32)
        assert unauthorized.value.status == 401
        with pytest.raises(HubApiError) as bad:
            next(iter(hub.watch(chain="nowhere")))
        assert bad.value.code == "invalid_input" and "nowhere" in bad.value.message
