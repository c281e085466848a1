"""Settings the hub refuses to start with, and the defaults of the RPC network policy."""

from __future__ import annotations

import pytest

from hub.settings import SettingsError, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir("/")  # no .env file of a checkout
    for name in ("HUB_ADMIN_TOKEN", "HUB_RPC_ALLOW_PRIVATE", "HUB_TICK_SECONDS"):
        monkeypatch.delenv(name, raising=False)


def test_private_addresses_are_refused_by_default() -> None:
    assert load_settings().rpc_allow_private is False


def test_a_short_admin_token_is_refused_by_name_not_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_ADMIN_TOKEN", "x" * 23)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert str(raised.value).startswith("HUB_ADMIN_TOKEN: must be at least 24 characters, not 23")
    assert "x" * 23 not in str(raised.value)


def test_a_long_admin_token_and_every_problem_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_ADMIN_TOKEN", "y" * 24)
    assert load_settings().admin_token is not None
    monkeypatch.setenv("HUB_ADMIN_TOKEN", "short")
    monkeypatch.setenv("HUB_TICK_SECONDS", "soon")
    with pytest.raises(SettingsError, match=r"HUB_ADMIN_TOKEN: .*; HUB_TICK_SECONDS: "):
        load_settings()
