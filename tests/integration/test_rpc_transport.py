"""The EVM adapter's transport on its own (no hub): it connects to the URL it is given and
shows only the form it may show, asks its address guard at every connection, and never
follows a redirect. Real anvil, real HTTP servers on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from adapters.base import EndpointUnavailableError
from adapters.evm.adapter import EvmAdapter
from tests.integration.helpers import plain_anvil
from tests.integration.provider import keyed_provider, redirecting

pytestmark = pytest.mark.integration
KEY = "k3y-0f-the-provider-1234567890"


@pytest.fixture(scope="module")
def node() -> Iterator[str]:
    with plain_anvil(4646) as url:
        yield url


def test_errors_name_only_the_shown_url(node: str) -> None:
    with keyed_provider(node, KEY) as provider:
        real = f"http://{KEY}:{KEY}@{provider.removeprefix('http://')}/v3/{KEY}?key={KEY}"
        shown = f"http://***:***@{provider.removeprefix('http://')}/v3/***?key=***"
        adapter = EvmAdapter([real], shown_urls=[shown], timeout=5)
        assert adapter.chain_id() == 4646
        assert list(adapter.rpc_urls) == [shown] and KEY not in repr(adapter)
    with pytest.raises(EndpointUnavailableError) as raised:
        adapter.head()
    assert shown in str(raised.value) and KEY not in str(raised.value)
    report = adapter.probe_endpoints()[0]
    assert report.url == shown and KEY not in report.error


def test_a_refused_key_is_not_repeated_in_the_error(node: str) -> None:
    """A provider's 401 names the URL it refused (requests puts it in the message)."""
    with keyed_provider(node, KEY) as provider:
        wrong = f"{provider}/v3/wr0ng-{KEY}"
        adapter = EvmAdapter([wrong], shown_urls=[f"{provider}/v3/***"], timeout=5)
        with pytest.raises(EndpointUnavailableError) as raised:
            adapter.chain_id()
    assert "401" in str(raised.value) and "wr0ng" not in str(raised.value)


def test_the_guard_is_asked_and_a_refusal_fails_over(node: str) -> None:
    asked: list[tuple[str, str]] = []

    def guard(host: str, address: str) -> str | None:
        asked.append((host, address))
        return "no loopback for you" if host == "localhost" else None

    port = node.rsplit(":", 1)[1]
    refused, allowed = f"http://localhost:{port}", f"http://127.0.0.1:{port}"
    adapter = EvmAdapter([refused, allowed], address_guard=guard, timeout=5)
    assert adapter.chain_id() == 4646  # the refused endpoint failed over to the allowed one
    assert ("127.0.0.1", "127.0.0.1") in asked
    assert {a for h, a in asked if h == "localhost"} <= {"127.0.0.1", "::1"}
    only_refused = EvmAdapter([refused], address_guard=guard, timeout=5)
    with pytest.raises(EndpointUnavailableError, match="no loopback for you"):
        only_refused.head()


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirects_are_never_followed(node: str, status: int) -> None:
    with redirecting(node, status) as url:
        adapter = EvmAdapter([url], timeout=5)
        with pytest.raises(EndpointUnavailableError, match="never followed"):
            adapter.chain_id()
