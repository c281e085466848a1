"""A validator's own view of the chains it watches: its RPC endpoints (optionally a quorum of
several providers), the gateway address it trusts and the finality policy of each chain, read
from a file its operator keeps.

Nothing here comes from the hub's database, so no admin of the hub can point a validator at
another endpoint or contract: the t-of-n threshold stays t keys, not one."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, model_validator

from adapters.base import FinalityPolicy


class ValidatorConfigError(ValueError):
    """The configuration file is missing or wrong; the message says where and why."""


class _ChainEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    chain_id: StrictInt = Field(gt=0)
    family: str = "evm"
    rpc_urls: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1, max_length=8)
    quorum: StrictInt = Field(default=1, ge=1)
    gateway: str = Field(min_length=1)
    finality: StrictInt | str

    @model_validator(mode="after")
    def _check(self) -> _ChainEntry:
        if self.quorum > len(self.rpc_urls):
            raise ValueError(f"quorum {self.quorum} is more than the {len(self.rpc_urls)} URLs")
        FinalityPolicy.parse(self.finality)
        return self


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    chains: list[_ChainEntry] = Field(min_length=1)


@dataclass(frozen=True)
class WatchedChain:
    """One chain as this validator reads it."""

    chain_id: int
    name: str
    family: str
    rpc_urls: tuple[str, ...]
    quorum: int
    gateway: str
    finality: FinalityPolicy


@dataclass(frozen=True)
class ValidatorConfig:
    chains: Mapping[int, WatchedChain]

    def chain(self, chain_id: int) -> WatchedChain | None:
        return self.chains.get(chain_id)


def parse(data: Any, where: str = "the validator configuration") -> ValidatorConfig:
    try:
        parsed = _File.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ValidatorConfigError(f"{where}: {problems}") from None
    chains = {}
    for entry in parsed.chains:
        if entry.chain_id in chains:
            raise ValidatorConfigError(f"{where}: chain id {entry.chain_id} appears twice")
        chains[entry.chain_id] = WatchedChain(
            chain_id=entry.chain_id,
            name=entry.name,
            family=entry.family,
            rpc_urls=tuple(entry.rpc_urls),
            quorum=entry.quorum,
            gateway=entry.gateway,
            finality=FinalityPolicy.parse(entry.finality),
        )
    return ValidatorConfig(chains)


def load(path: Path | None) -> ValidatorConfig:
    """Read a JSON or TOML file (by its suffix); refuse to go on without one."""
    if path is None:
        raise ValidatorConfigError(
            "a validator needs its own configuration: set HUB_VALIDATOR_CONFIG to a JSON or "
            "TOML file naming, per chain it watches, its RPC URLs, gateway and finality"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValidatorConfigError(f"cannot read validator configuration {path}: {exc}") from None
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ValidatorConfigError(f"{path} is not valid {path.suffix[1:]}: {exc}") from None
    return parse(data, str(path))


def from_devnet(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration a validator of a local devnet uses: the devnet is its own."""
    return {
        "chains": [
            {
                "name": c["name"],
                "chain_id": c["chain_id"],
                "rpc_urls": [c["rpc_url"]],
                "gateway": c["gateway"],
                "finality": c["finality"],
            }
            for c in doc["chains"]
        ]
    }
