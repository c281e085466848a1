"""The RPC network policy and URL redaction."""

from __future__ import annotations

import pytest

from hub.domain.errors import InvalidInputError
from hub.services.netpolicy import NetworkPolicy, expand_env, redact_url


def test_default_policy_allows_local_http() -> None:
    NetworkPolicy().check("http://127.0.0.1:8545")
    NetworkPolicy().check("https://rpc.example.org/v1")


@pytest.mark.parametrize(
    ("policy", "url", "needle"),
    [
        (NetworkPolicy(), "ftp://127.0.0.1:8545", "scheme"),
        (NetworkPolicy(), "http://", "no host"),
        (NetworkPolicy(allow_private=False), "http://127.0.0.1:8545", "loopback or private"),
        (NetworkPolicy(allow_private=False), "http://10.1.2.3:8545", "loopback or private"),
        (NetworkPolicy(allow_private=False), "http://[::1]:8545", "loopback or private"),
        (NetworkPolicy(allowed_hosts=("*.example.org",)), "http://rpc.other.net", "not in"),
        (NetworkPolicy(denied_hosts=("bad.example.org",)), "http://bad.example.org", "denied"),
    ],
)
def test_policy_refuses(policy: NetworkPolicy, url: str, needle: str) -> None:
    with pytest.raises(InvalidInputError, match=needle):
        policy.check(url)


def test_allowed_host_suffix() -> None:
    NetworkPolicy(allowed_hosts=("*.example.org",)).check("https://rpc.eu.example.org")


def test_redaction_hides_secrets() -> None:
    shown = redact_url("https://user:s3cret@rpc.example.org/v1?apikey=abc&x=1")
    assert "s3cret" not in shown and "abc" not in shown
    assert shown == "https://user:***@rpc.example.org/v1?apikey=***&x=***"


def test_env_reference_expands_and_missing_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RPC_KEY", "k123")
    assert expand_env("https://rpc.example.org/${RPC_KEY}") == "https://rpc.example.org/k123"
    monkeypatch.delenv("RPC_KEY")
    with pytest.raises(InvalidInputError, match="RPC_KEY"):
        expand_env("https://rpc.example.org/${RPC_KEY}")
