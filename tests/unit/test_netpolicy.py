"""The RPC network policy, the secret-reference rule and URL redaction."""

from __future__ import annotations

import ipaddress

import pytest

from hub.domain.errors import InvalidInputError
from hub.services.netpolicy import NetworkPolicy, expand_env, is_public, redact_url

PRIVATE_OK = NetworkPolicy(allow_private=True)


def test_default_policy_refuses_loopback_and_allows_public_literals() -> None:
    NetworkPolicy().check("https://93.184.215.14/rpc")
    PRIVATE_OK.check("http://127.0.0.1:8545")
    with pytest.raises(InvalidInputError, match="HUB_RPC_ALLOW_PRIVATE=false"):
        NetworkPolicy().check("http://127.0.0.1:8545")


@pytest.mark.parametrize(
    ("policy", "url", "needle"),
    [
        (PRIVATE_OK, "ftp://127.0.0.1:8545", "scheme"),
        (PRIVATE_OK, "http://", "no host"),
        (NetworkPolicy(), "http://127.0.0.1:8545", "loopback or private"),
        (NetworkPolicy(), "http://10.1.2.3:8545", "loopback or private"),
        (NetworkPolicy(), "http://[::1]:8545", "loopback or private"),
        (NetworkPolicy(), "http://[::ffff:127.0.0.1]:8545", "loopback or private"),
        (NetworkPolicy(), "http://[64:ff9b::7f00:1]:8545", "loopback or private"),
        (NetworkPolicy(), "http://[2002:a00:1::]:8545", "loopback or private"),
        (NetworkPolicy(allowed_hosts=("*.example.org",)), "http://rpc.other.net", "not in"),
        (NetworkPolicy(denied_hosts=("bad.example.org",)), "http://bad.example.org", "denied"),
    ],
)
def test_policy_refuses(policy: NetworkPolicy, url: str, needle: str) -> None:
    with pytest.raises(InvalidInputError, match=needle):
        policy.check(url)


def test_allowed_host_suffix() -> None:
    policy = NetworkPolicy(allowed_hosts=("*.example.org",))
    assert policy.refusal("rpc.eu.example.org", "93.184.215.14") is None
    assert policy.refusal("rpc.eu.example.net", "93.184.215.14") is not None


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("100.64.0.1", False),  # carrier-grade NAT
        ("169.254.169.254", False),  # cloud metadata
        ("224.0.0.1", False),  # multicast
        ("0.0.0.0", False),  # noqa: S104 - an address judged, not bound
        ("2606:4700::1111", True),
        ("::1", False),
        ("fe80::1", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),  # IPv4-mapped
        ("::ffff:8.8.8.8", True),
        ("::127.0.0.1", False),  # IPv4-compatible
        ("64:ff9b::7f00:1", False),  # NAT64 of 127.0.0.1
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 of 169.254.169.254
        ("64:ff9b::808:808", True),  # NAT64 of 8.8.8.8
        ("64:ff9b:1::7f00:1", False),  # local-use NAT64
        ("2002:7f00:1::", False),  # 6to4 of 127.0.0.1
        ("2002:c0a8:101::", False),  # 6to4 of 192.168.1.1
        ("2002:808:808::", True),  # 6to4 of 8.8.8.8
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", False),  # Teredo, client 127.0.0.1
        ("2001:0:808:808::f7f7:f7f7", True),  # Teredo, server and client 8.8.8.8
    ],
)
def test_addresses_are_judged_by_the_ipv4_they_carry(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public
    refusal = NetworkPolicy().refusal("rpc.example.org", address)
    assert (refusal is None) is public


def test_private_allowed_lets_everything_through_but_the_host_lists() -> None:
    assert PRIVATE_OK.refusal("localhost", "127.0.0.1") is None
    denied = NetworkPolicy(allow_private=True, denied_hosts=("localhost",))
    assert denied.refusal("localhost", "127.0.0.1") is not None


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "https://user:s3cret@rpc.example.org/v1?apikey=abc&x=1&bare",
            "https://***:***@rpc.example.org/v1?apikey=***&x=***&***",
        ),
        ("https://tok3n@rpc.example.org/", "https://***@rpc.example.org/"),
        (
            "https://mainnet.infura.io/v3/9aa3d95b3bc440fa88ea12eaa4456161",
            "https://mainnet.infura.io/v3/***",
        ),
        ("https://eth-mainnet.g.alchemy.com/v2/demo", "https://eth-mainnet.g.alchemy.com/v2/***"),
        ("https://rpc.ankr.com/eth/" + "ab12" * 16, "https://rpc.ankr.com/eth/***"),
        (
            "https://node.example.org/5f1c2f27-4b1e-4b8c-9e2a-0123456789ab/",
            "https://node.example.org/***/",
        ),
        (
            "https://rpc.example.org/${HUB_RPC_SECRET_KEY}/x",
            "https://rpc.example.org/***/x",
        ),
        ("https://rpc.example.org/x#frag", "https://rpc.example.org/x#***"),
        (
            "https://api.avax.network/ext/bc/C/rpc",
            "https://api.avax.network/ext/bc/C/rpc",
        ),
        ("http://127.0.0.1:8545", "http://127.0.0.1:8545"),
    ],
)
def test_redaction_hides_secrets(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_env_reference_needs_the_prefix_and_a_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_RPC_SECRET_INFURA", "k123")
    url = "https://rpc.example.org/v3/${HUB_RPC_SECRET_INFURA}"
    assert expand_env(url) == "https://rpc.example.org/v3/k123"
    monkeypatch.delenv("HUB_RPC_SECRET_INFURA")
    with pytest.raises(InvalidInputError, match="HUB_RPC_SECRET_INFURA"):
        expand_env(url)


@pytest.mark.parametrize("name", ["HUB_DATABASE_URL", "HUB_RELAYER_KEY", "PATH", "HUB_RPC_SECRET_"])
def test_env_reference_outside_the_prefix_is_refused(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv(name, "value-that-must-not-travel")
    with pytest.raises(
        InvalidInputError, match="only to environment variables named HUB_RPC_SECRET_"
    ):
        PRIVATE_OK.check("http://127.0.0.1:8545/?k=${" + name + "}")
